"""The review queue: turn automatic verdicts into reviewed ones, one image at a time, fast.

A :class:`ReviewSession` walks ``Store.review_queue`` (automatic verdict sets, paged in the
query) for one analyst: it keeps a small buffer of the next entries, so a step usually costs
one write and no queue query; it remembers what was shown (for *back*) and what was decided
(for *undo*), and counts the pace. Nothing here calls a tagging backend: the suggestions come
from the store (the automatic verdicts) and, for the union of two taggers, from the result cache.

* Order: ``nearest`` (the default: sets whose tag nearest the threshold is closest to it first,
  the verdicts that teach the threshold most), ``newest`` or ``oldest`` saved first.
* A *card* is what one step shows: the queue entry and its suggestions (a ``Suggestions`` side
  per tagger). With ``union`` on, the card also holds the same image's other taggers in the same
  language: their automatic sets, and answers in the result cache of taggers without verdicts on
  the image. One judgement covers every side; ``split_verdicts`` writes it back per backend.
* The rule's selection (``auto_select`` at the session's rule) is pre-filled; only suggested tags
  can be accepted (``SelectionError``).
* Undo puts back exactly what was stored before the decision (automatic verdicts with
  ``replace_reviewed``, an earlier review, or no set at all for a side judged from the cache) and
  withdraws the Imagga feedback message the decision queued, if it is not sent yet.
* Offsets: a decided entry leaves the queue, a skipped one stays. The session keeps the offset of
  its next page in step with that and reads each page with a small overlap, dropping entries it
  has shown already, so another analyst's saves cost at most a repeat, never a gap.

Memory is bounded: the history and the undo stack keep the last ``HISTORY`` steps.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tagging.backends import IMAGGA
from tagging.compare import Suggestions, UnionTag, split_verdicts, union_suggestions
from tagging.errors import StoreError, TaggingError
from tagging.models import Tag
from tagging.parse import parse_tags, response_languages
from tagging.rules import auto_select
from tagging.store import (
    AUTOMATIC,
    BLIND,
    NEAREST,
    NEWEST,
    OLDEST,
    PREFILLED,
    REVIEWED,
    FeedbackItem,
    ResultCache,
    ReviewFilters,
    ReviewItem,
    Store,
    queue_feedback,
)

log = logging.getLogger("tagging.review")

ORDERS = (NEAREST, NEWEST, OLDEST)
PAGE = 25  # entries read per queue query
LOW_WATER = 5  # read the next page when fewer than this many entries wait in the buffer
OVERLAP = 5  # each page starts this many entries early; repeats are dropped
HISTORY = 200  # steps kept for back and undo
RATE_WINDOW = 300.0  # seconds: the pace is measured over the last five minutes of work
CACHE_BATCH = "answers in the result cache"  # the batch label of sets made from cached answers
# A verdict on a card that became current less than this long ago cannot have been looked at: it is
# a key held down (auto-repeat), pressed twice, or pressed while the browser still showed the card
# before. A glance at a new image takes a person at least 200 ms; a remote browser adds its round trip.
MIN_LOOK_SECONDS = 0.2

QUEUE, STORED, CACHED = "queue", "stored", "cache"  # where a side of a card comes from

SetKey = tuple[str, str, str]  # (image key, backend, language)


@dataclass(frozen=True)
class Rule:
    """The auto-select rule the queue pre-fills with and orders by (``nearest``)."""

    threshold: float
    min_tags: int
    overrides: tuple[tuple[str, float], ...] = ()

    def select(self, tags: Sequence[Tag]) -> tuple[str, ...]:
        return tuple(auto_select(tags, self.threshold, self.min_tags, dict(self.overrides)))


def set_key(item: ReviewItem) -> SetKey:
    return (item.image_key, item.backend, item.language)


def tags_of(items: Iterable[FeedbackItem]) -> tuple[Tag, ...]:
    """Stored verdicts as the tags that were suggested (confidence and parent)."""
    return tuple(Tag(it.tag, it.confidence, parent=it.parent) for it in items)


@dataclass(frozen=True)
class Card:
    """One step of the review: a queue entry and every side's suggestions, merged into one list.

    ``origins[i]`` says where ``sides[i]`` came from: the queue entry itself, another automatic
    set of the image (``stored``, its entry in ``entries[i]``) or an answer in the result cache
    (``cache``, no entry).
    """

    item: ReviewItem
    sides: tuple[Suggestions, ...]
    origins: tuple[str, ...]
    entries: tuple[ReviewItem | None, ...]
    tags: tuple[UnionTag, ...]

    @property
    def key(self) -> SetKey:
        return set_key(self.item)

    @property
    def names(self) -> list[str]:
        """Every suggested tag, best first: the only tags that can be accepted."""
        return [t.name for t in self.tags]

    @property
    def prefill(self) -> tuple[str, ...]:
        """The rule's selection: tags any side's rule selects, best first."""
        return tuple(t.name for t in self.tags if t.preselected)

    @property
    def chart_tags(self) -> list[Tag]:
        """One tag per name at its best confidence, for the confidence chart."""
        return [Tag(t.name, t.confidence) for t in self.tags]

    def confidences(self, name: str) -> list[float | None]:
        """The tag's confidence on every side (None where that side did not suggest it)."""
        return [next((t.confidence for t in side.tags if t.name == name), None) for side in self.sides]

    def entry(self, key: SetKey) -> ReviewItem | None:
        """The queue entry of one of the card's sets (None for a side from the cache)."""
        return next((e for e in self.entries if e is not None and set_key(e) == key), None)


Other = tuple[Suggestions, str, ReviewItem | None]  # a side, its origin, its queue entry


def card_for(item: ReviewItem, rule: Rule, others: Sequence[Other] = ()) -> Card:
    """The card of a queue entry (its own side first), with the image's other sides if any."""
    tags = tags_of(item.items)
    own = Suggestions(item.backend, item.language, tags, rule.select(tags))
    sides = (own, *(o[0] for o in others))
    return Card(item, sides, (QUEUE, *(o[1] for o in others)), (item, *(o[2] for o in others)),
                tuple(union_suggestions(sides)))


def other_sides(store: Store, cache: ResultCache | None, item: ReviewItem, rule: Rule) -> list[Other]:
    """The image's other taggers in the entry's language that wait for a verdict, for the union.

    Its other automatic sets first; then, for every tagger without any verdict set on the image
    in this language, the newest answer in the result cache that reads in this language. Read
    from the database only: no backend is called. Raises StoreError.
    """
    sides: list[Other] = []
    present = {item.backend}
    for other in store.unreviewed_sets(item.image_key, item.language):
        if other.backend not in present:
            tags = tags_of(other.items)
            sides.append((Suggestions(other.backend, other.language, tags, rule.select(tags)), STORED, other))
            present.add(other.backend)
    if cache is None:
        return sides
    judged = {v.backend for v in store.verdict_sets_of(item.image_key) if v.language == item.language}
    for answer in cache.answers_for(item.image_key):  # newest first
        if answer.backend in present or answer.backend in judged:
            continue
        try:
            tags = tuple(parse_tags(answer.payload, item.language))
        except TaggingError:  # another language, or an answer that cannot be read: not a side
            continue
        if tags:
            sides.append((Suggestions(answer.backend, item.language, tags, rule.select(tags)), CACHED, None))
            present.add(answer.backend)
    return sides


def matches(filters: ReviewFilters, item: ReviewItem) -> bool:
    """Whether the queue entry ``item`` is one ``filters`` keep (as ``Store.review_queue`` decides)."""
    return ((filters.backend is None or item.backend == filters.backend)
            and (filters.language is None or item.language == filters.language)
            and (filters.batch is None or item.batch == filters.batch)
            and (filters.tag is None or any(it.tag == filters.tag for it in item.items)))


@dataclass(frozen=True)
class Snapshot:
    """One verdict set as it was before a decision (``provenance`` None: there was none)."""

    image_key: str
    backend: str
    language: str
    provenance: str | None
    items: tuple[FeedbackItem, ...] = ()
    threshold: float = 0.0
    min_tags: int = 0
    batch: str | None = None
    saved_by: str | None = None
    review_mode: str | None = None
    missing_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One step the analyst took: the card, what they accepted (None: skipped) and noted as missing."""

    card: Card
    accepted: tuple[str, ...] | None
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class Undo:
    """What one decision changed: the sets it replaced and the feedback messages it queued."""

    card: Card
    snapshots: tuple[Snapshot, ...]
    outbox_keys: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    """What a decision or an undo did, for the page to say: sets saved, and whose review was replaced."""

    sets: int
    accepted: int
    replaced_others: tuple[str, ...] = ()
    not_withdrawn: int = 0


@dataclass(frozen=True)
class Pace:
    """Reviews per minute over the last ``RATE_WINDOW`` seconds of the session (None before the first)."""

    images_per_minute: float | None
    verdicts_per_minute: float | None


@dataclass
class ReviewSession:
    """One analyst's walk through the review queue; see the module docstring.

    ``clock`` (seconds, monotonic) is injectable for tests. Every method that reads or writes the
    store raises StoreError; a decision also raises SelectionError for a tag no side suggested.
    """

    store: Store
    rule: Rule
    filters: ReviewFilters = field(default_factory=ReviewFilters)
    order: str = NEAREST
    union: bool = False
    analyst: str | None = None
    cache: ResultCache | None = None
    clock: Callable[[], float] = time.monotonic
    page_size: int = PAGE
    blind: bool = False  # nothing pre-filled: the rule's selection cannot sway the verdict

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, not {self.order!r}")
        self.history: deque[Step] = deque(maxlen=HISTORY)
        self.undo_stack: deque[Undo] = deque(maxlen=HISTORY)
        self.reviewed: dict[SetKey, tuple[str, ...]] = {}  # decided in this session and not undone
        self.notes: dict[SetKey, tuple[str, ...]] = {}  # the missing-tags note of each decided entry
        self._times: deque[tuple[float, int]] = deque()  # (when, tag verdicts) of each decision
        self.started = self.clock()
        self.queries = 0  # queue pages read: a step reads one only when the buffer runs low
        self.shown = 0  # bumped whenever another card (or the same card again) is shown
        self.shown_at = self.started
        self._reset_cursor()

    # --- the cursor over the queue ---------------------------------------------------------
    def _reset_cursor(self) -> None:
        self.shown += 1
        self.current: Card | None = None
        self.selection: tuple[str, ...] = ()  # what the page pre-fills for the current card
        self.missing: tuple[str, ...] = ()  # the missing-tags note the page shows for the current card
        self.skipped: set[SetKey] = set()  # skipped since the queue was read from its top, not decided since
        self._ahead: deque[ReviewItem] = deque()
        self._seen: set[SetKey] = set()
        self._scan = 0
        self._exhausted = False
        self._total = 0  # the queue's length at the last page read
        self._left_since = 0  # entries that left the queue since then (decided here)
        self._loaded = False

    def reconfigure(self, *, rule: Rule | None = None, filters: ReviewFilters | None = None,
                    order: str | None = None, union: bool | None = None, blind: bool | None = None) -> None:
        """Change the rule, filters, order or union and start again from the queue's top.

        What was decided stays decided (and undoable); the count and the pace go on.
        """
        if order is not None and order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
        self.rule = rule or self.rule
        self.filters = filters or self.filters
        self.order = order or self.order
        self.union = self.union if union is None else union
        self.blind = self.blind if blind is None else blind
        self._reset_cursor()

    def _fill(self) -> None:
        overlap = min(OVERLAP, self.page_size // 3)
        while len(self._ahead) < LOW_WATER and not self._exhausted:
            offset = max(0, self._scan - overlap)
            page = self.store.review_queue(offset, self.page_size, self.order, self.filters,
                                           threshold=self.rule.threshold)
            self.queries += 1
            self._total, self._left_since = page.total, 0
            self._scan = offset + len(page.items)
            self._exhausted = len(page.items) < self.page_size
            new = 0
            for item in page.items:
                key = set_key(item)
                if key not in self._seen and key not in self.reviewed:
                    self._seen.add(key)
                    self._ahead.append(item)
                    new += 1
            if not new:
                overlap = 0  # a page of repeats: read on from its end

    def _card(self, item: ReviewItem) -> Card:
        others = other_sides(self.store, self.cache, item, self.rule) if self.union else ()
        return card_for(item, self.rule, others)

    def _show(self, card: Card | None, selection: Sequence[str] | None = None, missing: Sequence[str] = ()) -> None:
        self.shown += 1
        self.shown_at = self.clock()
        self.current = card
        if selection is not None:
            self.selection = tuple(selection)
        else:
            self.selection = card.prefill if card is not None and not self.blind else ()
        self.missing = tuple(missing)

    @property
    def mode(self) -> str:
        """How this session's verdicts are made: ``blind`` (nothing pre-filled) or ``prefilled``."""
        return BLIND if self.blind else PREFILLED

    @property
    def current_decided(self) -> tuple[str, ...] | None:
        """What this session accepted on the card on screen, if it decided it already (None: not decided)."""
        return None if self.current is None else self.reviewed.get(self.current.key)

    @property
    def skipped_count(self) -> int:
        """Entries skipped since the queue was last read from its top and not decided since."""
        return len(self.skipped - self.reviewed.keys())

    def _advance(self) -> None:
        self._fill()
        while self._ahead:
            item = self._ahead.popleft()
            if set_key(item) in self.reviewed:  # judged with another image's union meanwhile
                continue
            self._show(self._card(item))
            if len(self._ahead) < LOW_WATER:
                self._fill()
            return
        self._show(None)

    def looked_at(self, min_look: float = MIN_LOOK_SECONDS) -> bool:
        """Whether the current card has been current for at least ``min_look`` seconds (see ``MIN_LOOK_SECONDS``)."""
        return self.clock() - self.shown_at >= min_look

    def upcoming(self) -> ReviewItem | None:
        """The entry a decision or a skip shows next (None when the buffer is empty), e.g. to load its image early."""
        return self._ahead[0] if self._ahead else None

    def start(self) -> Card | None:
        """Load the first card (once); return the current card (None: the queue is empty)."""
        if not self._loaded:
            self._loaded = True
            self._advance()
        return self.current

    # --- progress ---------------------------------------------------------------------------
    @property
    def reviewed_count(self) -> int:
        """Queue entries reviewed in this session (a decision judging two taggers counts once)."""
        return len(self.reviewed)

    @property
    def remaining(self) -> int:
        """Entries still in the queue (as of the last page read, less those decided since)."""
        return max(0, self._total - self._left_since)

    @property
    def total(self) -> int:
        """Reviewed in this session plus remaining: the ``m`` of "reviewed n of m"."""
        return self.reviewed_count + self.remaining

    def pace(self) -> Pace:
        now = self.clock()
        while self._times and self._times[0][0] < now - RATE_WINDOW:
            self._times.popleft()
        if not self._times:
            return Pace(None, None)
        minutes = max(now - max(self.started, now - RATE_WINDOW), 1.0) / 60
        return Pace(len(self._times) / minutes, sum(n for _, n in self._times) / minutes)

    # --- steps ------------------------------------------------------------------------------
    def _snapshot(self, image_key: str, backend: str, language: str) -> Snapshot:
        stored = self.store.verdict_set(image_key, backend, language)
        if stored is None:
            return Snapshot(image_key, backend, language, None)
        items = tuple(self.store.feedback_for(image_key, backend, language))
        return Snapshot(image_key, backend, language, stored.provenance, items, stored.threshold, stored.min_tags,
                        stored.batch, stored.saved_by, stored.review_mode, stored.missing_tags)

    def _restore(self, snap: Snapshot, item: ReviewItem) -> None:
        if snap.provenance is None:
            self.store.delete_verdict_set(snap.image_key, snap.backend, snap.language)
            return
        self.store.save_feedback(
            image_key=snap.image_key, filename=item.filename, source=item.source, backend=snap.backend,
            language=snap.language, threshold=snap.threshold, min_tags=snap.min_tags, items=list(snap.items),
            provenance=snap.provenance, saved_by=snap.saved_by, batch=snap.batch, replace_reviewed=True,
            review_mode=snap.review_mode, missing_tags=snap.missing_tags,
        )

    def decide(self, accepted: Iterable[str], missing: Iterable[str] = ()) -> Outcome:
        """Save the analyst's verdict on the current card (accepted tags; every other suggestion rejected), then
        show the next card. Every side is saved as reviewed under its own backend and language, with the
        session's mode (blind or pre-filled) and ``missing``, the tags the analyst noted the taggers missed.

        Raises SelectionError (a tag no side suggested: nothing is saved) or StoreError (sides saved
        before the failure are put back; the card stays, so the analyst can press again).
        """
        card = self.current
        if card is None:
            raise ValueError("the queue is empty: there is nothing to decide")
        chosen = tuple(dict.fromkeys(accepted))
        note = tuple(dict.fromkeys(" ".join(t.split()) for t in missing if t.strip()))
        verdicts = split_verdicts(card.sides, chosen)  # SelectionError before anything is written
        item = card.item
        snapshots: list[Snapshot] = []
        outbox: list[str] = []
        others: list[str] = []
        try:
            for (backend, language), items in verdicts.items():
                snap = self._snapshot(item.image_key, backend, language)
                result = self.store.save_feedback(
                    image_key=item.image_key, filename=item.filename, source=item.source, backend=backend,
                    language=language, threshold=float(self.rule.threshold), min_tags=int(self.rule.min_tags),
                    items=items, provenance=REVIEWED, saved_by=self.analyst, batch=snap.batch,
                    review_mode=self.mode, missing_tags=note,
                )
                snapshots.append(snap)
                if result.replaced_other and result.previous_provenance == REVIEWED:
                    others.append(result.previous_saved_by or "someone")
                if backend == IMAGGA:
                    outbox.append(self._queue_feedback(item, language, items))
        except StoreError:
            self._roll_back(snapshots, outbox, item)
            raise
        self.undo_stack.append(Undo(card, tuple(snapshots), tuple(outbox)))
        self.history.append(Step(card, chosen, note))
        for snap in snapshots:
            key = (snap.image_key, snap.backend, snap.language)
            if snap.provenance == AUTOMATIC:  # a queue entry: it leaves the queue
                if key in self._seen:
                    self._scan = max(0, self._scan - 1)  # from the part already read
                entry = card.entry(key)
                if entry is not None and matches(self.filters, entry):
                    self._left_since += 1
            if snap.provenance == AUTOMATIC or key in self.reviewed:
                self.reviewed[key] = chosen
                self.notes[key] = note
        self._times.append((self.clock(), sum(len(v) for v in verdicts.values())))
        self._advance()
        accepted_n = sum(1 for items in verdicts.values() for it in items if it.accepted)
        return Outcome(len(verdicts), accepted_n, tuple(others))

    def _queue_feedback(self, item: ReviewItem, language: str, items: Sequence[FeedbackItem]) -> str:
        """Queue (never send: no backend call during review) the reviewed verdict for Imagga."""
        url = item.source if item.source.startswith(("http://", "https://")) else None
        return queue_feedback(
            self.store, backend=IMAGGA, image_key=item.image_key, tags=tags_of(items),
            accepted={it.tag for it in items if it.accepted}, language=language, image_url=url,
        )

    def _roll_back(self, snapshots: Sequence[Snapshot], outbox: Sequence[str], item: ReviewItem) -> None:
        """Best effort: put back the sides a failed decision saved (the database may be away for this too)."""
        try:
            for key in outbox:
                self.store.withdraw(key)
            for snap in reversed(snapshots):
                self._restore(snap, item)
        except StoreError as exc:
            log.warning("could not put back a half-saved review of %s (%s)", item.image_key, exc)

    def skip(self) -> None:
        """Leave the current card in the queue and show the next."""
        if self.current is None:
            return
        self.history.append(Step(self.current, None))
        self.skipped.add(self.current.key)
        self._advance()

    def back(self) -> bool:
        """Show the previous card again, with what was accepted on it (or the rule's selection if skipped)."""
        if not self.history:
            return False
        step = self.history.pop()
        if self.current is not None:
            self._ahead.appendleft(self.current.item)
        self._show(step.card, step.accepted, step.missing)
        return True

    def undo(self) -> Outcome | None:
        """Put back what the last decision replaced and show its card again; None when nothing is left to undo."""
        if not self.undo_stack:
            return None
        record = self.undo_stack.pop()
        card = record.card
        not_withdrawn = sum(1 for key in record.outbox_keys if not self.store.withdraw(key))
        for snap in reversed(record.snapshots):
            self._restore(snap, card.item)
        for index in range(len(self.history) - 1, -1, -1):  # its step leaves the history
            if self.history[index].card.key == card.key:
                del self.history[index]
                break
        decided_before = {(s.image_key, s.backend, s.language) for u in self.undo_stack for s in u.snapshots}
        for snap in record.snapshots:
            key = (snap.image_key, snap.backend, snap.language)
            if key in decided_before and snap.provenance == REVIEWED:  # back to this session's earlier verdict
                self.reviewed[key] = tuple(it.tag for it in snap.items if it.accepted)
                self.notes[key] = snap.missing_tags
            else:
                self.reviewed.pop(key, None)
                self.notes.pop(key, None)
            if snap.provenance == AUTOMATIC:  # back in the queue
                entry = card.entry(key)
                if entry is not None and matches(self.filters, entry):
                    self._left_since -= 1
                if key in self._seen and self.order != OLDEST:  # nearest: its old place; newest: the top
                    self._scan += 1
        if self.current is not None and self.current.key != card.key:
            self._ahead.appendleft(self.current.item)
        self._show(card, self.reviewed.get(card.key), self.notes.get(card.key, ()))
        return Outcome(len(record.snapshots), 0, (), not_withdrawn)


# --- answers in the result cache for images the store knows, into the queue -------------------------
def queue_cached_answers(
    store: Store,
    cache: ResultCache,
    rule: Rule,
    *,
    saved_by: str | None = None,
    limit: int = 200,
    batch: str = CACHE_BATCH,
) -> int:
    """Save up to ``limit`` unjudged cached answers (``ResultCache.unjudged``) as automatic verdict sets.

    The rule's selection becomes the automatic verdicts, exactly as a batch saves them, so they
    enter the review queue (batch ``batch``). An answer's language: the one the image's other
    verdicts use if the answer has it, else English if it has it, else its first language. An
    answer that cannot be read is left out (and stays in the cache). Returns the sets saved; no
    backend is called. Raises StoreError.
    """
    saved = 0
    for entry in cache.unjudged(limit):
        answer = entry.answer
        try:
            languages = response_languages(answer.payload)
        except TaggingError:
            continue
        used = [v.language for v in store.verdict_sets_of(answer.image_key)]
        language = next((lang for lang in used if lang in languages), "en" if "en" in languages else None)
        language = language or (languages[0] if languages else "en")
        try:
            tags = parse_tags(answer.payload, language)
        except TaggingError:
            continue
        chosen = set(rule.select(tags))
        result = store.save_feedback(
            image_key=answer.image_key, filename=entry.filename, source=entry.source, backend=answer.backend,
            language=language, threshold=float(rule.threshold), min_tags=int(rule.min_tags),
            items=[FeedbackItem(t.name, t.confidence, t.name in chosen, t.parent) for t in tags],
            provenance=AUTOMATIC, saved_by=saved_by, batch=batch,
        )
        saved += int(not result.kept)
    return saved


def batch_label(images: int, now: datetime | None = None, suffix: str = "") -> str:
    """A readable, practically unique batch id: ``2025-06-01 14:03:07 UTC · 12 images`` (plus ``suffix``)."""
    when = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{when} · {images} images" + (f" · {suffix}" if suffix else "")


def overrides_key(overrides: Mapping[str, float] | None) -> tuple[tuple[str, float], ...]:
    """Per-tag overrides as a hashable, ordered tuple (for ``Rule``)."""
    return tuple(sorted((str(k), float(v)) for k, v in (overrides or {}).items()))
