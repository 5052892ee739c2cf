"""The store: images and verdicts, settings and the remote-feedback outbox, on SQLite or PostgreSQL.

One schema and one query layer (SQLAlchemy Core) for both databases. Every operation takes a
pooled connection for one short transaction. Writes are serialised where they must be:

* SQLite: every write transaction starts with ``BEGIN IMMEDIATE`` (one writer at a time, the
  others wait up to the busy timeout), in WAL mode so readers never wait.
* PostgreSQL: a save locks its image's row first, so two servers saving the same image at
  once run one after the other (the later replaces the earlier and is told whose verdict it
  replaced); the outbox is claimed with ``FOR UPDATE SKIP LOCKED``.

Driver errors come out as :class:`~tagging.errors.StoreError` (never with a password).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection

from tagging.errors import SchemaVersionError, StoreUnavailableError
from tagging.store import _counters
from tagging.store import _schema as s
from tagging.store._analysis import AnalysisQueries
from tagging.store._db import (
    POSTGRESQL,
    SQLITE,
    database_url,
    db_epoch,
    display_url,
    guarded,
    make_engine,
)
from tagging.store._queries import LibraryQueries
from tagging.store._schema import AUTOMATIC, PENDING, PROVENANCES, REVIEWED, SCHEMA_VERSION, SENT
from tagging.store._tune import TuneRows, tune_rows

DEFAULT_DB_PATH = Path("data") / "tagging.db"
# How long a server may take to send one claimed outbox message before another may try it:
# well above the Imagga client's worst case for one request with its retries.
OUTBOX_LEASE_SECONDS = 120.0
NEWEST, OLDEST, NEAREST = "newest", "oldest", "nearest"
REVIEW_ORDERS = (NEWEST, OLDEST, NEAREST)
MAX_PAGE = 500  # one page of the review queue; more is a bug in the caller, not a bigger page
# "nearest" first reads the verdicts within this many points of the threshold (scaled down for queues
# longer than NEAREST_SMALL_QUEUE), widening 4x until a page is full: a few hundred rows for a first page
# of a long queue instead of all of them.
NEAREST_FIRST_WINDOW = 0.5
NEAREST_MIN_WINDOW = 0.01
CONFIDENCE_SPAN = 100.0
NEAREST_SMALL_QUEUE = 500  # sets; one pass over all their verdicts beats several windows


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- values ------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeedbackItem:
    """One suggested tag and whether the analyst accepted it."""

    tag: str
    confidence: float
    accepted: bool
    parent: str | None = None


@dataclass(frozen=True)
class SaveResult:
    """What ``save_feedback`` did.

    ``replaced`` is True when the image (same backend and language) had verdicts before;
    ``previous_*`` say whose, when and of which provenance. ``replaced_other`` is True when
    they were saved by someone other than this save's ``saved_by``. ``kept`` is True when an
    automatic save met reviewed verdicts and left them alone (nothing was written).
    """

    items: int
    accepted: int
    replaced: bool
    previous_saved_by: str | None = None
    previous_saved_at: str | None = None
    previous_provenance: str | None = None
    replaced_other: bool = False
    kept: bool = False


@dataclass(frozen=True)
class VerdictSet:
    """How one image's verdicts for one backend and language came to be."""

    image_key: str
    backend: str
    language: str
    provenance: str
    saved_at: str
    saved_by: str | None
    threshold: float
    min_tags: int
    batch: str | None = None
    review_mode: str | None = None  # reviewed sets: ``prefilled`` or ``blind``; None before it was recorded
    missing_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutboxEntry:
    """One remote-feedback message waiting to be sent (or sent)."""

    id: int
    idempotency_key: str
    image_key: str
    backend: str
    payload: dict[str, Any]
    status: str
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class FeedbackGroup:
    """How much feedback one backend and language has: images and tag verdicts."""

    backend: str
    language: str
    images: int
    verdicts: int


@dataclass(frozen=True)
class LibraryEntry:
    """One image's saved feedback for one backend and language, as the Library lists it.

    ``tags`` are the accepted tags, highest confidence first; ``verdicts`` counts every
    saved verdict (accepted or rejected); ``saved_at`` is an ISO-8601 UTC timestamp;
    ``provenance`` is ``reviewed`` or ``automatic``.
    """

    image_key: str
    filename: str
    source: str
    backend: str
    language: str
    tags: tuple[str, ...]
    verdicts: int
    saved_at: str
    width: int | None = None
    height: int | None = None
    provenance: str = REVIEWED
    saved_by: str | None = None
    review_mode: str | None = None
    missing_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReviewFilters:
    """Which automatic verdict sets the review queue shows; None means any.

    ``tag`` keeps images with that suggested tag (accepted or not), compared exactly.
    """

    backend: str | None = None
    language: str | None = None
    batch: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class ReviewItem:
    """One image waiting for review: its automatic verdicts and where they came from.

    ``items`` are every suggested tag, highest confidence first, ``accepted`` being the rule's
    selection. ``gap`` is the distance of its tag nearest the asked threshold (order ``nearest``).
    """

    image_key: str
    filename: str
    source: str
    backend: str
    language: str
    saved_at: str
    saved_by: str | None
    threshold: float
    min_tags: int
    batch: str | None
    width: int | None
    height: int | None
    items: tuple[FeedbackItem, ...]
    gap: float | None = None


@dataclass(frozen=True)
class ReviewFacets:
    """What the review queue can be filtered by: values of the sets awaiting review (batches newest first)."""

    backends: tuple[str, ...]
    languages: tuple[str, ...]
    batches: tuple[str, ...]


@dataclass(frozen=True)
class ReviewPage:
    """One page of the review queue: ``total`` matching sets, this page from ``offset``."""

    items: list[ReviewItem]
    total: int
    offset: int
    limit: int


def _insert(conn: Connection, table: sa.Table) -> Any:
    """INSERT with ON CONFLICT support in this connection's dialect (the same API on both)."""
    return (pg.insert if conn.dialect.name == POSTGRESQL else sqlite_dialect.insert)(table)


def _set_key(table: sa.Table, image_key: str, backend: str, language: str) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.image_key == image_key, table.c.backend == backend, table.c.language == language)


def _same_set(a: sa.Table | Any, b: sa.Table | Any) -> sa.ColumnElement[bool]:
    return sa.and_(a.c.image_key == b.c.image_key, a.c.backend == b.c.backend, a.c.language == b.c.language)


def _missing_json(tags: Sequence[str]) -> str | None:
    """A missing-tags note as stored: a JSON list (None when empty), blanks and repeats (any case) dropped."""
    clean: dict[str, str] = {}  # case-folded form -> the first spelling
    for tag in tags:
        text = " ".join(str(tag).split())
        if text:
            clean.setdefault(text.casefold(), text)
    return json.dumps(list(clean.values()), ensure_ascii=False) if clean else None


def _missing_tuple(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    try:
        value = json.loads(text)
    except ValueError:
        return ()
    return tuple(str(t) for t in value) if isinstance(value, list) else ()


def _verdict_set(row: Any) -> VerdictSet:
    return VerdictSet(row.image_key, row.backend, row.language, row.provenance, row.saved_at, row.saved_by,
                      float(row.threshold), int(row.min_tags), row.batch, row.review_mode,
                      _missing_tuple(row.missing_tags))
def _outbox_columns() -> list[sa.Column]:
    # What an OutboxEntry holds: not queued_by, so a database one migration behind still reads its outbox.
    return [c for c in s.outbox.c if c.name != "queued_by"]


def _item(row: Any) -> FeedbackItem:
    return FeedbackItem(row.tag, float(row.confidence), bool(row.accepted), row.parent)


class Store(LibraryQueries, AnalysisQueries):
    """The dashboard's database. Creating one runs pending migrations (unless ``migrate=False``).

    ``target`` is ``TAGGING_DB``'s value: a file path, ``sqlite:///PATH`` or
    ``postgresql://USER@HOST[:PORT]/DB``; ``password`` overrides the URL's. Raises
    StoreError (StoreConfigError, StoreUnavailableError, SchemaVersionError).
    """

    def __init__(self, target: str | Path = DEFAULT_DB_PATH, *, password: str | None = None,
                 migrate: bool = True) -> None:
        self._url = database_url(target, password)
        self.dialect = self._url.get_backend_name()
        self.path: Path | None = Path(str(self._url.database)) if self.dialect == SQLITE else None
        self.url = display_url(self._url)  # for people: never with the password
        try:
            self.engine = make_engine(self._url)
        except OSError as exc:  # the SQLite file's folder cannot be created
            raise StoreUnavailableError(f"The database {self.url} cannot be created ({exc.strerror}).") from exc
        if migrate:
            self.migrate()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def close(self) -> None:
        """Close every pooled connection (the store can still be used: it reconnects)."""
        self.engine.dispose()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with guarded(self._url), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with guarded(self._url), self.engine.connect() as conn:
            conn.execution_options(tagging_write=True)
            with conn.begin():
                yield conn

    def writing(self) -> AbstractContextManager[Connection]:
        """One write transaction (serialised as every save is), for the tables of another concern (``tagging.auth``)."""
        return self._write()

    def reading(self) -> AbstractContextManager[Connection]:
        """One read connection, for the tables of another concern (``tagging.auth``)."""
        return self._read()

    # --- schema ------------------------------------------------------------------
    def schema_version(self) -> int:
        """The database's current schema version."""
        with self._read() as conn:
            return s.read_version(conn)

    def migrate(self, target_version: int = SCHEMA_VERSION) -> int:
        """Apply every migration up to ``target_version`` (each in its own transaction); return the version.

        Two servers starting at once do not both migrate: SQLite's write lock or a PostgreSQL
        advisory lock makes the second wait and then find nothing left to do.
        """
        if not 0 <= target_version <= SCHEMA_VERSION:
            raise ValueError(f"target_version must be 0..{SCHEMA_VERSION}")
        context = s.Context(sqlite_path=self.path)
        with guarded(self._url):
            while True:
                with self.engine.connect() as conn:
                    conn.execution_options(tagging_write=True)
                    with conn.begin():
                        if self.dialect == POSTGRESQL:
                            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7403186912)")  # arbitrary, fixed
                        version = s.read_version(conn)
                        if version > SCHEMA_VERSION:
                            raise SchemaVersionError(
                                f"The database {self.url} has schema version {version}, newer than this app's "
                                f"{SCHEMA_VERSION}; update the app."
                            )
                        if version >= target_version:
                            return version
                        step = s.MIGRATIONS[version]
                        step.apply(conn, context)
                        s.write_version(conn, step.version)

    # --- feedback ----------------------------------------------------------------
    def save_feedback(
        self,
        *,
        image_key: str,
        filename: str,
        source: str,
        backend: str,
        language: str,
        threshold: float,
        min_tags: int,
        items: Sequence[FeedbackItem],
        width: int | None = None,
        height: int | None = None,
        thumbnail: bytes | None = None,
        preview: bytes | None = None,
        provenance: str = REVIEWED,
        saved_by: str | None = None,
        batch: str | None = None,
        replace_reviewed: bool = False,
        review_mode: str | None = None,
        missing_tags: Sequence[str] = (),
    ) -> SaveResult:
        """Record the verdict on every suggested tag of one image, atomically.

        ``thumbnail`` (256 px) and ``preview`` (``tagging.images.PREVIEW_SIDE``) are JPEGs of
        the image; a save without them keeps the stored ones.

        Saving the same image (same backend and language) again replaces its earlier
        verdicts; the result says whose verdicts were replaced and when. ``provenance`` is
        ``reviewed`` (an analyst decided) or ``automatic`` (the rule's selection, unreviewed);
        an automatic save never replaces reviewed verdicts (``kept`` then says so) unless
        ``replace_reviewed`` (an undo of a review putting the automatic verdicts back).

        ``review_mode`` says how a review was made (``prefilled`` with the rule's selection, or
        ``blind``); ``missing_tags`` are tags the reviewer noted the tagger missed (free text, kept
        apart from the verdicts, which only suggested tags can have).
        """
        if provenance not in PROVENANCES:
            raise ValueError(f"provenance must be one of {PROVENANCES}, not {provenance!r}")
        if review_mode is not None and review_mode not in s.REVIEW_MODES:
            raise ValueError(f"review_mode must be one of {s.REVIEW_MODES} or None, not {review_mode!r}")
        now = _now()
        i, v, f = s.images, s.verdict_sets, s.feedback
        with self._write() as conn:
            created = conn.execute(
                _insert(conn, i)
                .values(image_key=image_key, filename=filename, source=source, width=width, height=height,
                        thumbnail=thumbnail, preview=preview, created_at=now, updated_at=now)
                .on_conflict_do_nothing(index_elements=["image_key"])
            ).rowcount == 1
            if not created:
                # Concurrent saves of this image queue up here (a no-op on SQLite, which is serialised already).
                conn.execute(sa.select(i.c.image_key).where(i.c.image_key == image_key).with_for_update())
            previous = conn.execute(
                sa.select(v.c.provenance, v.c.saved_by, v.c.saved_at).where(_set_key(v, image_key, backend, language))
            ).first()
            if (previous is not None and provenance == AUTOMATIC and previous.provenance == REVIEWED
                    and not replace_reviewed):
                return SaveResult(0, 0, False, previous.saved_by, previous.saved_at, previous.provenance, kept=True)
            before = _counters.ImageState() if created else _counters.image_state(conn, image_key)
            _counters.bump_version(conn)
            if not created:
                known = {k: val for k, val in (("width", width), ("height", height), ("thumbnail", thumbnail),
                                               ("preview", preview))
                         if val is not None}  # a save without them keeps the stored ones
                conn.execute(i.update().where(i.c.image_key == image_key)
                             .values(filename=filename, source=source, updated_at=now, **known))
            values = dict(provenance=provenance, threshold=float(threshold), min_tags=int(min_tags), saved_at=now,
                          batch=batch, saved_by=saved_by, review_mode=review_mode,
                          missing_tags=_missing_json(missing_tags))
            conn.execute(
                _insert(conn, v).values(image_key=image_key, backend=backend, language=language, **values)
                .on_conflict_do_update(index_elements=["image_key", "backend", "language"], set_=values)
            )
            conn.execute(f.delete().where(_set_key(f, image_key, backend, language)))
            if items:
                conn.execute(f.insert(), [
                    dict(image_key=image_key, backend=backend, language=language, tag=it.tag, parent=it.parent,
                         confidence=float(it.confidence), accepted=bool(it.accepted), threshold=float(threshold),
                         min_tags=int(min_tags), saved_at=now)
                    for it in items
                ])
            _counters.apply_change(conn, before, _counters.image_state(conn, image_key))
        replaced = previous is not None
        other = replaced and previous.saved_by is not None and previous.saved_by != saved_by
        return SaveResult(
            items=len(items), accepted=sum(bool(it.accepted) for it in items), replaced=replaced,
            previous_saved_by=previous.saved_by if replaced else None,
            previous_saved_at=previous.saved_at if replaced else None,
            previous_provenance=previous.provenance if replaced else None,
            replaced_other=other,
        )

    def feedback_for(self, image_key: str, backend: str, language: str) -> list[FeedbackItem]:
        """The stored feedback of one image (any provenance), highest confidence first."""
        f = s.feedback
        with self._read() as conn:
            rows = conn.execute(
                sa.select(f.c.tag, f.c.confidence, f.c.accepted, f.c.parent)
                .where(_set_key(f, image_key, backend, language))
                .order_by(f.c.confidence.desc(), f.c.id)
            ).all()
        return [_item(r) for r in rows]

    def verdict_set(self, image_key: str, backend: str, language: str) -> VerdictSet | None:
        """Provenance, author and time of one image's verdicts, or None when it has none."""
        v = s.verdict_sets
        with self._read() as conn:
            row = conn.execute(sa.select(v).where(_set_key(v, image_key, backend, language))).first()
        return None if row is None else _verdict_set(row)

    def counts(self) -> tuple[int, int]:
        """(number of images with feedback, number of feedback items), any provenance: two kept totals."""
        totals = self.totals()
        return totals[s.IMAGES], totals[s.VERDICTS]

    def totals(self) -> dict[str, int]:
        """Every kept total by name (``data_counters``): one small read whatever the library's size."""
        with self._read() as conn:
            return _counters.read(conn)

    def data_version(self) -> int:
        """A counter every change of the verdicts moves on: results computed from them are cached by it."""
        c = s.data_counters
        with self._read() as conn:
            return int(conn.execute(sa.select(c.c.value).where(c.c.name == s.VERSION)).scalar_one())

    def rebuild_totals(self) -> None:
        """Recount the kept totals from the rows (after rows were written around the store, as a bulk load)."""
        with self._write() as conn:
            _counters.rebuild(conn, s.feedback, s.verdict_sets, s.data_counters, s.tag_images, s.tag_parent_links)

    def provenance_counts(self, backend: str | None = None, language: str | None = None) -> dict[str, int]:
        """How many verdict sets are reviewed and automatic (of one backend and language, if given)."""
        v = s.verdict_sets
        query = sa.select(v.c.provenance, sa.func.count()).group_by(v.c.provenance)
        if backend is not None:
            query = query.where(v.c.backend == backend)
        if language is not None:
            query = query.where(v.c.language == language)
        with self._read() as conn:
            found = {row[0]: int(row[1]) for row in conn.execute(query)}
        return {p: found.get(p, 0) for p in PROVENANCES}

    # --- queries for the Tune and Library pages ---------------------------------------
    def _verdicts(self, reviewed_only: bool) -> Any:
        """feedback rows joined to their sets (only the reviewed ones, if asked)."""
        f, v = s.feedback, s.verdict_sets
        joined = f.join(v, _same_set(f, v))
        return joined, (v.c.provenance == REVIEWED) if reviewed_only else sa.true()

    def feedback_groups(self, reviewed_only: bool = True) -> list[FeedbackGroup]:
        """Every backend and language that has feedback, the most images first (reviewed verdicts by default)."""
        if reviewed_only:  # kept totals (``_counters``): no count over the verdicts
            found: dict[tuple[str, str], dict[str, int]] = {}
            for name, value in self.totals().items():
                if name.startswith(_counters.GROUP_PREFIX) and value > 0:
                    backend, language, what = name[len(_counters.GROUP_PREFIX):].split("\t")
                    found.setdefault((backend, language), {})[what] = value
            groups = [FeedbackGroup(b, lang, n.get("images", 0), n.get("verdicts", 0))
                      for (b, lang), n in found.items() if n.get("images", 0) > 0]
            return sorted(groups, key=lambda g: (-g.images, g.backend, g.language))
        f = s.feedback
        joined, condition = self._verdicts(reviewed_only)
        images = sa.func.count(sa.distinct(f.c.image_key))
        with self._read() as conn:
            rows = conn.execute(
                sa.select(f.c.backend, f.c.language, images, sa.func.count())
                .select_from(joined).where(condition)
                .group_by(f.c.backend, f.c.language)
                .order_by(images.desc(), f.c.backend, f.c.language)
            ).all()
        return [FeedbackGroup(r[0], r[1], int(r[2]), int(r[3])) for r in rows]

    def feedback_by_image(
        self, backend: str, language: str, reviewed_only: bool = True, image_keys: Sequence[str] | None = None
    ) -> dict[str, list[FeedbackItem]]:
        """Feedback of one backend and language: image key -> items, highest confidence first.

        Only reviewed verdicts by default: the rule's own unreviewed selection would measure
        the rule against itself. ``image_keys`` reads only those images' verdicts.
        """
        f = s.feedback
        joined, condition = self._verdicts(reviewed_only)
        query = (
            sa.select(f.c.image_key, f.c.tag, f.c.confidence, f.c.accepted, f.c.parent)
            .select_from(joined)
            .where(condition, f.c.backend == backend, f.c.language == language)
            .order_by(f.c.image_key, f.c.confidence.desc(), f.c.id)
        )
        result: dict[str, list[FeedbackItem]] = {}
        with self._read() as conn:
            keys = sorted(set(image_keys)) if image_keys is not None else [None]
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                part = query if image_keys is None else query.where(f.c.image_key.in_(chunk))
                for r in conn.execute(part):
                    result.setdefault(r.image_key, []).append(_item(r))
        return result

    def review_modes(self, backend: str, language: str) -> dict[str | None, int]:
        """Reviewed sets of one backend and language by how they were reviewed (None: not recorded)."""
        v = s.verdict_sets
        with self._read() as conn:
            rows = conn.execute(
                sa.select(v.c.review_mode, sa.func.count())
                .where(v.c.provenance == REVIEWED, v.c.backend == backend, v.c.language == language)
                .group_by(v.c.review_mode)
            ).all()
        return {r[0]: int(r[1]) for r in rows}

    def missing_notes(self, image_keys: Sequence[str] | None = None) -> dict[str, tuple[str, ...]]:
        """Every image's missing-tags note (of any of its sets, merged in order), for the images asked or all."""
        v = s.verdict_sets
        query = sa.select(v.c.image_key, v.c.missing_tags).where(v.c.missing_tags.is_not(None))
        if image_keys is not None:
            query = query.where(v.c.image_key.in_(list(image_keys)))
        notes: dict[str, dict[str, None]] = {}
        with self._read() as conn:
            for key, text in conn.execute(query.order_by(v.c.image_key, v.c.backend, v.c.language)):
                notes.setdefault(key, {}).update(dict.fromkeys(_missing_tuple(text)))
        return {k: tuple(v) for k, v in notes.items() if v}

    def reviewed_backends(self, language: str, image_keys: Sequence[str]) -> list[str]:
        """The backends with reviewed verdicts in ``language`` on any of these images."""
        v = s.verdict_sets
        found: set[str] = set()
        keys = sorted(set(image_keys))
        with self._read() as conn:
            for start in range(0, len(keys), 500):
                found |= set(conn.execute(
                    sa.select(v.c.backend).distinct()
                    .where(v.c.provenance == REVIEWED, v.c.language == language,
                           v.c.image_key.in_(keys[start:start + 500]))
                ).scalars())
        return sorted(found)

    def tune_rows(self, backend: str, language: str, min_tags: int,
                  overrides: Mapping[str, float] | None = None, review_mode: str | None = None) -> TuneRows:
        """Tune's aggregates of the reviewed verdicts of one backend and language (see ``_tune``); ``review_mode``
        (``blind`` or ``prefilled``) keeps only the sets reviewed that way."""
        if min_tags < 0:
            raise ValueError("min_tags must not be negative")
        with self._read() as conn, conn.begin():
            return tune_rows(conn, backend, language, int(min_tags), dict(overrides or {}), review_mode)

    def library_entries(self, provenance: str | None = None) -> list[LibraryEntry]:
        """Every image with saved feedback, one entry per backend and language, newest first.

        ``provenance`` (``reviewed`` or ``automatic``) keeps only those; None keeps all.
        """
        f, i, v = s.feedback, s.images, s.verdict_sets
        sets = (
            sa.select(v.c.image_key, v.c.backend, v.c.language, v.c.provenance, v.c.saved_by, v.c.saved_at,
                      i.c.filename, i.c.source, i.c.width, i.c.height, v.c.review_mode, v.c.missing_tags)
            .select_from(v.join(i, i.c.image_key == v.c.image_key))
        )
        verdicts = (
            sa.select(f.c.image_key, f.c.backend, f.c.language, f.c.tag, f.c.accepted)
            .select_from(f.join(v, _same_set(f, v)))
            .order_by(f.c.image_key, f.c.backend, f.c.language, f.c.confidence.desc(), f.c.id)
        )
        if provenance is not None:
            if provenance not in PROVENANCES:
                raise ValueError(f"provenance must be one of {PROVENANCES} or None, not {provenance!r}")
            sets = sets.where(v.c.provenance == provenance)
            verdicts = verdicts.where(v.c.provenance == provenance)
        tags: dict[tuple[str, str, str], list[str]] = {}
        counts: dict[tuple[str, str, str], int] = {}
        with self._read() as conn:
            # Unpacked as tuples: this reads every verdict of the library, and named access costs per row.
            for key0, key1, key2, tag, accepted in conn.execute(verdicts):
                key = (key0, key1, key2)
                counts[key] = counts.get(key, 0) + 1
                if accepted:
                    tags.setdefault(key, []).append(tag)
            rows = conn.execute(sets).all()
        entries = [
            LibraryEntry(
                image_key=key, filename=filename, source=source, backend=backend, language=language,
                tags=tuple(tags.get((key, backend, language), ())), verdicts=counts[(key, backend, language)],
                saved_at=saved_at, width=width, height=height, provenance=prov, saved_by=saved_by,
                review_mode=mode, missing_tags=_missing_tuple(missing),
            )
            for key, backend, language, prov, saved_by, saved_at, filename, source, width, height, mode, missing
            in rows
            if (key, backend, language) in counts  # a set whose verdicts were all removed is not listed
        ]
        entries.sort(key=lambda e: (e.saved_at, e.filename, e.backend, e.language), reverse=True)
        return entries

    def tag_parents(self) -> list[tuple[str, str, int]]:
        """Every (tag, parent, times seen) pair in the feedback, accepted or not; Imagga's tags have none.

        Read from the kept totals (``tag_parent_links``), not counted over the verdicts.
        """
        t = s.tag_parent_links
        with self._read() as conn:
            rows = conn.execute(
                sa.select(t.c.tag, t.c.parent, t.c.times).where(t.c.times > 0).order_by(t.c.tag, t.c.parent)
            ).all()
        return [(r[0], r[1], int(r[2])) for r in rows]

    def thumbnail(self, image_key: str) -> bytes | None:
        """The small JPEG stored with an image, or None."""
        i = s.images
        with self._read() as conn:
            value = conn.execute(sa.select(i.c.thumbnail).where(i.c.image_key == image_key)).scalar()
        return None if value is None else bytes(value)

    def thumbnails(self, image_keys: Sequence[str]) -> dict[str, bytes]:
        """The stored thumbnails of several images (images without one are left out)."""
        keys = list(dict.fromkeys(image_keys))
        i = s.images
        result: dict[str, bytes] = {}
        with self._read() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                for r in conn.execute(
                    sa.select(i.c.image_key, i.c.thumbnail).where(i.c.image_key.in_(chunk), i.c.thumbnail.is_not(None))
                ):
                    result[r[0]] = bytes(r[1])
        return result

    def preview(self, image_key: str) -> bytes | None:
        """The image to review by: its stored preview, else its thumbnail (saved before previews), else None."""
        i = s.images
        with self._read() as conn:
            value = conn.execute(
                sa.select(sa.func.coalesce(i.c.preview, i.c.thumbnail)).where(i.c.image_key == image_key)
            ).scalar()
        return None if value is None else bytes(value)

    def delete_image(self, image_key: str) -> int:
        """Delete an image's record and all its feedback; return the verdicts deleted.

        Messages in the remote-feedback outbox are not touched.
        """
        f, i, v = s.feedback, s.images, s.verdict_sets
        with self._write() as conn:
            # The image's row first, as a save takes it first: a concurrent save waits, never deadlocks.
            conn.execute(sa.select(i.c.image_key).where(i.c.image_key == image_key).with_for_update())
            before = _counters.image_state(conn, image_key)
            _counters.bump_version(conn)
            verdicts = int(conn.execute(
                sa.select(sa.func.count()).select_from(f).where(f.c.image_key == image_key)
            ).scalar_one())
            conn.execute(f.delete().where(f.c.image_key == image_key))
            conn.execute(v.delete().where(v.c.image_key == image_key))
            conn.execute(s.image_analysis.delete().where(s.image_analysis.c.image_key == image_key))
            conn.execute(i.delete().where(i.c.image_key == image_key))
            _counters.apply_change(conn, before, _counters.ImageState())
        return verdicts

    # --- the review queue ---------------------------------------------------------------
    def _queue_conditions(self, filters: ReviewFilters | None, by_index: bool = True) -> list[sa.ColumnElement[bool]]:
        """The queue's WHERE clause. ``by_index=False`` hides the provenance from the planner (see ``_nearest``)."""
        v, f = s.verdict_sets, s.feedback
        provenance = v.c.provenance if by_index else v.c.provenance + ""
        conditions: list[sa.ColumnElement[bool]] = [provenance == AUTOMATIC]
        filters = filters or ReviewFilters()
        if filters.backend is not None:
            conditions.append(v.c.backend == filters.backend)
        if filters.language is not None:
            conditions.append(v.c.language == filters.language)
        if filters.batch is not None:
            conditions.append(v.c.batch == filters.batch)
        if filters.tag is not None:
            conditions.append(sa.exists().where(_same_set(f, v), f.c.tag == filters.tag))
        return conditions

    def review_count(self, filters: ReviewFilters | None = None) -> int:
        """How many verdict sets (image × backend × language) await review: saved automatically."""
        v = s.verdict_sets
        with self._read() as conn:
            return int(conn.execute(
                sa.select(sa.func.count()).select_from(v).where(*self._queue_conditions(filters))
            ).scalar_one())

    def awaiting_review(self, backend: str | None = None, language: str | None = None) -> int:
        """How many tagged images have automatic verdicts and no review yet (of one backend/language, if given)."""
        v = s.verdict_sets
        with self._read() as conn:
            return int(conn.execute(
                sa.select(sa.func.count(sa.distinct(v.c.image_key)))
                .where(*self._queue_conditions(ReviewFilters(backend=backend, language=language)))
            ).scalar_one())

    def review_queue(
        self,
        offset: int = 0,
        limit: int = 20,
        order: str = NEWEST,
        filters: ReviewFilters | None = None,
        threshold: float | None = None,
    ) -> ReviewPage:
        """One page of the images awaiting review (automatic verdict sets), paged in the query.

        ``order``: ``newest`` or ``oldest`` saved first, or ``nearest``: the sets whose tag
        nearest ``threshold`` is closest to it first (their verdicts teach the threshold most;
        sets without any tag come last). Ties go by saving time, then
        key, so pages never overlap. Save the reviewed verdicts with
        ``save_feedback(..., provenance="reviewed")``: the set then leaves the queue.
        """
        if order not in REVIEW_ORDERS:
            raise ValueError(f"order must be one of {REVIEW_ORDERS}, not {order!r}")
        if order == NEAREST and threshold is None:
            raise ValueError("order 'nearest' needs the threshold")
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"offset must be >= 0 and limit 1..{MAX_PAGE}")
        v, i = s.verdict_sets, s.images
        conditions = self._queue_conditions(filters)
        columns = self._queue_columns()
        with self._read() as conn:
            total = int(conn.execute(sa.select(sa.func.count()).select_from(v).where(*conditions)).scalar_one())
            if order == NEAREST:
                # SQLite only: PostgreSQL keeps statistics (autovacuum) and misjudges the hidden column instead.
                window_conditions = self._queue_conditions(filters, by_index=self.dialect != SQLITE)
                rows = self._nearest(conn, columns, conditions, window_conditions, offset, limit, float(threshold),
                                     total)
            else:
                keys = [v.c.saved_at, v.c.image_key, v.c.backend, v.c.language]
                rows = conn.execute(
                    sa.select(*columns, sa.null().label("gap"))
                    .select_from(v.join(i, i.c.image_key == v.c.image_key))
                    .where(*conditions)
                    .order_by(*[k.desc() if order == NEWEST else k.asc() for k in keys])
                    .offset(offset).limit(limit)
                ).all()
            page = self._review_items(conn, rows)
        return ReviewPage(page, total, offset, limit)

    @staticmethod
    def _review_items(conn: Connection, rows: Sequence[Any]) -> list[ReviewItem]:
        """``ReviewItem``s of verdict-set rows (the queue's columns and ``gap``), with their verdicts."""
        f = s.feedback
        items: dict[tuple[str, str, str], list[FeedbackItem]] = {(r.image_key, r.backend, r.language): []
                                                                 for r in rows}
        if items:
            # By image key (the unique index's prefix), sorted here: asked to sort, SQLite would
            # walk the confidence index over every verdict instead.
            found = conn.execute(
                sa.select(f.c.id, f.c.image_key, f.c.backend, f.c.language, f.c.tag, f.c.confidence,
                          f.c.accepted, f.c.parent)
                .where(f.c.image_key.in_({k[0] for k in items}))
            ).all()
            for r in sorted(found, key=lambda r: (-r.confidence, r.id)):
                if (r.image_key, r.backend, r.language) in items:
                    items[(r.image_key, r.backend, r.language)].append(_item(r))
        return [
            ReviewItem(r.image_key, r.filename, r.source, r.backend, r.language, r.saved_at, r.saved_by,
                       float(r.threshold), int(r.min_tags), r.batch, r.width, r.height,
                       tuple(items[(r.image_key, r.backend, r.language)]),
                       None if r.gap is None else float(r.gap))
            for r in rows
        ]

    @staticmethod
    def _queue_columns() -> list[Any]:
        v, i = s.verdict_sets, s.images
        return [v.c.image_key, v.c.backend, v.c.language, v.c.saved_at, v.c.saved_by, v.c.threshold,
                v.c.min_tags, v.c.batch, i.c.filename, i.c.source, i.c.width, i.c.height]

    def unreviewed_sets(self, image_key: str, language: str | None = None) -> list[ReviewItem]:
        """One image's automatic verdict sets (of one language, if given), by backend: the queue's entries for it."""
        v, i = s.verdict_sets, s.images
        query = (
            sa.select(*self._queue_columns(), sa.null().label("gap"))
            .select_from(v.join(i, i.c.image_key == v.c.image_key))
            .where(v.c.image_key == image_key, v.c.provenance == AUTOMATIC)
            .order_by(v.c.backend, v.c.language)
        )
        if language is not None:
            query = query.where(v.c.language == language)
        with self._read() as conn:
            return self._review_items(conn, conn.execute(query).all())

    def verdict_sets_of(self, image_key: str) -> list[VerdictSet]:
        """Every verdict set of one image (any provenance), by backend and language."""
        v = s.verdict_sets
        with self._read() as conn:
            rows = conn.execute(sa.select(v).where(v.c.image_key == image_key).order_by(v.c.backend, v.c.language))
            return [_verdict_set(r) for r in rows]

    def delete_verdict_set(self, image_key: str, backend: str, language: str) -> int:
        """Remove one image's verdicts of one backend and language (the image stays); return the verdicts removed.

        For undoing a review that created the set (a tagger's answer judged for the first time).
        """
        f, i, v = s.feedback, s.images, s.verdict_sets
        with self._write() as conn:
            conn.execute(sa.select(i.c.image_key).where(i.c.image_key == image_key).with_for_update())
            before = _counters.image_state(conn, image_key)
            _counters.bump_version(conn)
            removed = conn.execute(f.delete().where(_set_key(f, image_key, backend, language))).rowcount
            conn.execute(v.delete().where(_set_key(v, image_key, backend, language)))
            _counters.apply_change(conn, before, _counters.image_state(conn, image_key))
        return int(removed)

    def review_facets(self) -> ReviewFacets:
        """The backends, languages and batches that have verdict sets awaiting review (for the queue's filters)."""
        v = s.verdict_sets
        automatic = v.c.provenance == AUTOMATIC
        with self._read() as conn:
            pairs = conn.execute(sa.select(v.c.backend, v.c.language).where(automatic).distinct()).all()
            batches = conn.execute(
                sa.select(v.c.batch, sa.func.max(v.c.saved_at).label("last"))
                .where(automatic, v.c.batch.is_not(None)).group_by(v.c.batch)
                .order_by(sa.desc("last"), v.c.batch)
            ).scalars().all()
        return ReviewFacets(
            backends=tuple(sorted({p[0] for p in pairs})), languages=tuple(sorted({p[1] for p in pairs})),
            batches=tuple(batches),
        )

    @staticmethod
    def _nearest(conn: Connection, columns: list[Any], conditions: list[sa.ColumnElement[bool]],
                 window_conditions: list[sa.ColumnElement[bool]], offset: int, limit: int, threshold: float,
                 total: int) -> list[Any]:
        """The page of sets nearest ``threshold``, reading only verdicts in a window around it.

        A set's gap is its tag nearest the threshold; every set with a tag inside the window
        ranks before every set without one, so once the window yields a full page that page
        is exact. Otherwise the window widens (4x) until it covers every confidence.

        A window is read from the confidence index, each verdict's set looked up by its key. SQLite
        without statistics (no ANALYZE has run: the usual case) prefers to walk every automatic set
        by the provenance index and read all their verdicts, 200,000 of them for 10,000 sets (230 ms
        instead of a few); on SQLite ``window_conditions`` hide the provenance from it so it does not.
        """
        v, i, f = s.verdict_sets, s.images, s.feedback
        # Small: read it all at once. Long: the first window narrows as the queue grows, so it holds about
        # as many verdicts whatever the queue's length (a full page in one read, widened when it is not).
        window = (max(NEAREST_FIRST_WINDOW * NEAREST_SMALL_QUEUE / total, NEAREST_MIN_WINDOW)
                  if total > NEAREST_SMALL_QUEUE else math.inf)
        while True:
            everything = window > CONFIDENCE_SPAN + abs(threshold)
            gap = sa.func.min(sa.func.abs(f.c.confidence - threshold)).label("gap")
            near = sa.select(f.c.image_key, f.c.backend, f.c.language, gap).select_from(f.join(v, _same_set(f, v)))
            if not everything:
                near = near.where(f.c.confidence.between(threshold - window, threshold + window))
            gaps = (near.where(*(conditions if everything else window_conditions))
                    .group_by(f.c.image_key, f.c.backend, f.c.language).subquery("gaps"))
            later = (v.c.saved_at.desc(), v.c.image_key.desc(), v.c.backend.desc(), v.c.language.desc())
            if everything:  # sets without any tag have no gap: last, newest first (never out of reach)
                query = (sa.select(*columns, gaps.c.gap)
                         .select_from(v.join(i, i.c.image_key == v.c.image_key).outerjoin(gaps, _same_set(gaps, v)))
                         .where(*conditions).order_by(gaps.c.gap.is_(None), gaps.c.gap, *later))
            else:
                query = (sa.select(*columns, gaps.c.gap)
                         .select_from(gaps.join(v, _same_set(gaps, v)).join(i, i.c.image_key == v.c.image_key))
                         .order_by(gaps.c.gap, *later))
            rows = conn.execute(query.offset(offset).limit(limit)).all()
            if everything or len(rows) == limit:
                return rows
            window *= 4

    # --- per-tag thresholds ---------------------------------------------------------------
    def tag_overrides(self) -> dict[str, float]:
        """Per-tag thresholds ``{tag: threshold}`` (the ``tag_overrides`` setting)."""
        raw = self.get_setting("tag_overrides", {}) or {}
        return {str(tag): float(value) for tag, value in raw.items()}

    def set_tag_override(self, tag: str, threshold: float | None) -> dict[str, float]:
        """Set (or with None, remove) one tag's threshold; return all overrides.

        Read and write happen in one transaction holding the setting's row, so two sessions
        (or servers) editing different tags both keep their change.
        """
        t = s.settings
        with self._write() as conn:
            conn.execute(_insert(conn, t).values(key="tag_overrides", value="{}")
                         .on_conflict_do_nothing(index_elements=["key"]))
            raw = conn.execute(sa.select(t.c.value).where(t.c.key == "tag_overrides").with_for_update()).scalar_one()
            overrides = {str(k): float(v) for k, v in json.loads(raw).items()}
            if threshold is None:
                overrides.pop(tag, None)
            else:
                overrides[tag] = float(threshold)
            conn.execute(t.update().where(t.c.key == "tag_overrides")
                         .values(value=json.dumps(overrides, sort_keys=True)))
        return overrides

    # --- outbox ------------------------------------------------------------------
    def enqueue(self, *, image_key: str, backend: str, payload: dict[str, Any], queued_by: str | None = None) -> str:
        """Queue a remote-feedback message (signed by ``queued_by``); return its idempotency key.

        An unsent message for the same image and backend is replaced (the newest verdict
        wins), unless a server is sending it right now; one already sent stays as the record
        of what was sent.
        """
        key = uuid.uuid4().hex
        o = s.outbox
        with self._write() as conn:
            now = db_epoch(conn)
            conn.execute(o.delete().where(
                o.c.image_key == image_key, o.c.backend == backend, o.c.status == PENDING,
                sa.or_(o.c.claimed_until.is_(None), o.c.claimed_until < now),
            ))
            conn.execute(o.insert().values(
                idempotency_key=key, image_key=image_key, backend=backend,
                payload=json.dumps(payload, sort_keys=True), status=PENDING, attempts=0, created_at=_now(),
                queued_by=queued_by,
            ))
        return key

    def withdraw(self, idempotency_key: str) -> bool:
        """Take back a message not sent yet (an undone review); False when it was sent or is being sent."""
        o = s.outbox
        with self._write() as conn:
            now = db_epoch(conn)
            removed = conn.execute(o.delete().where(
                o.c.idempotency_key == idempotency_key, o.c.status == PENDING,
                sa.or_(o.c.claimed_until.is_(None), o.c.claimed_until < now),
            )).rowcount
        return removed == 1

    @staticmethod
    def _entry(r: Any) -> OutboxEntry:
        return OutboxEntry(int(r.id), r.idempotency_key, r.image_key, r.backend, json.loads(r.payload), r.status,
                           int(r.attempts), r.last_error)

    def pending(self, backend: str | None = None) -> list[OutboxEntry]:
        """Messages not yet sent (and not held back), oldest first."""
        o = s.outbox
        query = sa.select(*_outbox_columns()).where(o.c.status == PENDING, o.c.held.is_(None)).order_by(o.c.id)
        if backend is not None:
            query = query.where(o.c.backend == backend)
        with self._read() as conn:
            return [self._entry(r) for r in conn.execute(query)]

    def claim_next(self, backend: str, owner: str, after_id: int = 0,
                   lease_seconds: float = OUTBOX_LEASE_SECONDS) -> OutboxEntry | None:
        """Claim the oldest pending message of ``backend`` after ``after_id`` that nobody is sending.

        The claim is committed before the caller sends, so another server retrying at the
        same moment skips it (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's write lock
        serialises the claims). A claim lapses after ``lease_seconds`` (a crashed sender).
        """
        o = s.outbox
        with self._write() as conn:
            now = db_epoch(conn)
            row = conn.execute(
                sa.select(*_outbox_columns())
                .where(o.c.backend == backend, o.c.status == PENDING, o.c.held.is_(None), o.c.id > after_id,
                       sa.or_(o.c.claimed_until.is_(None), o.c.claimed_until < now))
                .order_by(o.c.id).limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return None
            conn.execute(o.update().where(o.c.id == row.id).values(claimed_by=owner, claimed_until=now + lease_seconds))
        return self._entry(row)

    def mark_sent(self, idempotency_key: str, response: dict[str, Any]) -> None:
        """Record that a message was delivered, with the service's answer."""
        o = s.outbox
        with self._write() as conn:
            conn.execute(o.update().where(o.c.idempotency_key == idempotency_key).values(
                status=SENT, attempts=o.c.attempts + 1, sent_at=_now(), response=json.dumps(response, sort_keys=True),
                last_error=None, claimed_by=None, claimed_until=None,
            ))

    def mark_failed(self, idempotency_key: str, error: str) -> None:
        """Record a failed attempt; the message stays queued (and unclaimed) for the next round."""
        o = s.outbox
        with self._write() as conn:
            conn.execute(o.update().where(o.c.idempotency_key == idempotency_key).values(
                attempts=o.c.attempts + 1, last_error=error, claimed_by=None, claimed_until=None,
            ))

    # --- settings ----------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        """A JSON setting, or ``default`` when unset."""
        t = s.settings
        with self._read() as conn:
            raw = conn.execute(sa.select(t.c.value).where(t.c.key == key)).scalar()
        return default if raw is None else json.loads(raw)

    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON setting."""
        t = s.settings
        text = json.dumps(value)
        with self._write() as conn:
            conn.execute(_insert(conn, t).values(key=key, value=text)
                         .on_conflict_do_update(index_elements=["key"], set_={"value": text}))
