"""Two taggers over a set of images: what is cached, what a run would cost, and how far they agree.

The flow, per side: ``gather`` reads the answers already in the result cache (no call),
``plan_side`` says what is left (new calls within a bound, calls over it, images that cannot be
tagged because no original is kept), ``run_side`` makes exactly the planned calls through
``tagging.batch.run_batch`` (which stores every answer in the cache), and ``gather`` again reads
everything back. ``compare_set`` and ``misses`` then work on the gathered answers only.

Images are counted once per content (SHA-256): the same photo listed twice is one image, tagged
once, counted once in the agreement.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tagging.backends import Backend
from tagging.batch import BatchItem, BatchReport, run_batch
from tagging.compare._agreement import agreement
from tagging.compare._specs import Side, TaggerSpec
from tagging.errors import TaggingError
from tagging.models import Tag
from tagging.parse import parse_tags
from tagging.store import ResultCache

Answers = Mapping[str, Sequence[Tag]]
"""One side's parsed answers: image key -> its tags, best first."""

BOTH_ANSWERED = "compared"
PER_IMAGE_COLUMNS = ["image", "status", "selected A", "selected B", "both", "only A", "only B", "agreement"]
MISSES_COLUMNS = ["tag", "missed by", "images", "below its threshold", "not suggested"]
NOTED_COLUMNS = ["tagger", "images with a note", "tags noted", "missed (never suggested)", "suggested, not picked",
                 "picked"]


@dataclass(frozen=True)
class SetImage:
    """One image of a set: its result-cache key, a display name, and its bytes if they are kept."""

    key: str
    name: str
    item: BatchItem | None = None  # None: no original kept (a library image has only a thumbnail)


def unique_images(images: Iterable[SetImage]) -> list[SetImage]:
    """One entry per image key, in first-seen order; an entry with bytes wins over one without."""
    chosen: dict[str, SetImage] = {}
    for image in images:
        held = chosen.get(image.key)
        if held is None or (held.item is None and image.item is not None):
            chosen[image.key] = image if held is None else SetImage(held.key, held.name, image.item)
    return list(chosen.values())


def gather(cache: ResultCache, backend_key: str, spec: TaggerSpec, image_keys: Iterable[str]) -> dict[str, list[Tag]]:
    """The answers the result cache already holds for these images, parsed in the spec's language.

    No backend is called. An entry that cannot be read in that language counts as missing (the
    batch engine asks again and replaces it). Raises ``StoreError`` when the cache cannot be read.
    """
    request_key = spec.request.cache_key()
    answers: dict[str, list[Tag]] = {}
    for key in dict.fromkeys(image_keys):
        payload = cache.get(backend_key, key, request_key)
        if payload is None:
            continue
        try:
            answers[key] = parse_tags(payload, spec.language)
        except TaggingError:
            continue
    return answers


@dataclass(frozen=True)
class SidePlan:
    """What one side needs for a set, counted before any call is made."""

    images: int
    cached: tuple[str, ...]
    to_call: tuple[str, ...]  # missing, bytes at hand, within the bound: the calls a run makes
    over_limit: tuple[str, ...]  # missing, bytes at hand, beyond the bound: a later run
    unavailable: tuple[str, ...]  # missing and no original kept: cannot be tagged again
    requests_per_image: int = 0

    @property
    def new_calls(self) -> int:
        return len(self.to_call)

    @property
    def requests(self) -> int:
        """HTTP requests the planned calls send (0 for an offline tagger)."""
        return self.new_calls * self.requests_per_image


def plan_side(images: Sequence[SetImage], answers: Mapping[str, object], spec: TaggerSpec, limit: int) -> SidePlan:
    """Split a set into cached answers, calls to make now (at most ``limit``), calls over the bound,
    and images without bytes that the cache does not answer."""
    if limit < 0:
        raise ValueError("limit must not be negative")
    unique = unique_images(images)
    cached = tuple(i.key for i in unique if i.key in answers)
    missing = [i for i in unique if i.key not in answers]
    callable_ = [i.key for i in missing if i.item is not None]
    return SidePlan(
        images=len(unique),
        cached=cached,
        to_call=tuple(callable_[:limit]),
        over_limit=tuple(callable_[limit:]),
        unavailable=tuple(i.key for i in missing if i.item is None),
        requests_per_image=spec.requests_per_image,
    )


def run_side(
    images: Sequence[SetImage],
    plan: SidePlan,
    backend: Backend,
    spec: TaggerSpec,
    *,
    backend_key: str,
    cache: ResultCache,
    **options: Any,
) -> BatchReport:
    """Make the plan's calls (and no other) with ``run_batch``; every answer lands in ``cache``.

    ``options`` go to ``run_batch`` (``backend_factory``, ``concurrency``, ``on_result``, ``stop``,
    ``max_bytes``, ``max_pixels``). One image's failure is a failed result, never an exception.
    """
    wanted = set(plan.to_call)
    items = [i.item for i in unique_images(images) if i.key in wanted and i.item is not None]
    return run_batch(items, backend, spec.request, backend_key=backend_key, cache=cache, **options)


@dataclass(frozen=True)
class SetComparison:
    """Per-image agreement over a set and its summary (images counted once per content)."""

    per_image: pd.DataFrame
    compared: int  # images both sides answered
    missing_a: int  # images side A has no answer for
    missing_b: int
    mean_agreement: float  # mean Jaccard over the compared images where it is defined; NaN if none
    identical: int  # compared images with the same selection on both sides (both empty included)
    undefined: int  # compared images where neither side selected anything (Jaccard NaN)

    @property
    def compared_keys(self) -> list[str]:
        frame = self.per_image
        return list(frame.loc[frame["status"] == BOTH_ANSWERED, "key"])


def _joined(names: Sequence[str]) -> str:
    return ", ".join(names)


def compare_set(
    images: Sequence[SetImage],
    answers_a: Answers,
    answers_b: Answers,
    side_a: Side,
    side_b: Side,
    overrides: Mapping[str, float] | None = None,
) -> SetComparison:
    """Per image: each side's selection at its own rule, what both / only one select, the Jaccard index."""
    rows = []
    values: list[float] = []
    identical = undefined = missing_a = missing_b = 0
    for image in unique_images(images):
        has_a, has_b = image.key in answers_a, image.key in answers_b
        missing_a += not has_a
        missing_b += not has_b
        if not (has_a and has_b):
            status = "no answer from A or B" if not (has_a or has_b) else "no answer from A" if has_b else \
                "no answer from B"
            rows.append([image.key, image.name, status, "", "", "", "", "", math.nan])
            continue
        tags_a, tags_b = answers_a[image.key], answers_b[image.key]
        result = agreement(side_a.select(tags_a, overrides), side_b.select(tags_b, overrides), tags_a, tags_b)
        identical += result.identical
        if math.isnan(result.jaccard):
            undefined += 1
        else:
            values.append(result.jaccard)
        rows.append([
            image.key, image.name, BOTH_ANSWERED, _joined(result.selected_a), _joined(result.selected_b),
            _joined(result.both), _joined(result.only_a), _joined(result.only_b), result.jaccard,
        ])
    frame = pd.DataFrame(rows, columns=["key", *PER_IMAGE_COLUMNS])
    compared = len(values) + undefined
    mean = sum(values) / len(values) if values else math.nan
    return SetComparison(frame, compared, missing_a, missing_b, mean, identical, undefined)


def misses(
    image_keys: Collection[str],
    answers_a: Answers,
    answers_b: Answers,
    side_a: Side,
    side_b: Side,
    overrides: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """The tags each side misses: selected by the other side but not by this one, on how many images.

    Only images both sides answered count. A miss is "below its threshold" when the side suggested
    the tag but its rule did not select it (a lower threshold would catch it) and "not suggested"
    when the side never offered it (no threshold can). Most-missed first, then by tag and side.
    """
    counts: Counter[tuple[str, str]] = Counter()
    below: Counter[tuple[str, str]] = Counter()
    for key in dict.fromkeys(image_keys):
        if key not in answers_a or key not in answers_b:
            continue
        tags = {"A": answers_a[key], "B": answers_b[key]}
        chosen = {"A": set(side_a.select(tags["A"], overrides)), "B": set(side_b.select(tags["B"], overrides))}
        for side, other in (("A", "B"), ("B", "A")):
            offered = {t.name for t in tags[side]}
            for name in chosen[other] - chosen[side]:
                counts[(name, side)] += 1
                below[(name, side)] += name in offered
    rows = [[name, side, n, below[(name, side)], n - below[(name, side)]] for (name, side), n in counts.items()]
    frame = pd.DataFrame(rows, columns=MISSES_COLUMNS)
    return frame.sort_values(["images", "tag", "missed by"], ascending=[False, True, True], ignore_index=True)


def noted_misses(
    notes: Mapping[str, Sequence[str]],
    answers: Mapping[str, Answers],
    sides: Mapping[str, Side],
    overrides: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """What each tagger missed of the tags reviewers noted as missing (``Store.missing_notes``), per side.

    A noted tag (compared case-insensitively) is "missed" when the side never suggested it, "suggested,
    not picked" when its rule left it out, and "picked" when its rule selects it (another tagger missed it,
    not this one). Only images the side answered count.
    """
    rows = []
    for name, side in sides.items():
        images = noted = missed = below = picked = 0
        for key, note in notes.items():
            if key not in answers[name] or not note:
                continue
            tags = answers[name][key]
            offered = {t.name.casefold() for t in tags}
            chosen = {t.casefold() for t in side.select(tags, overrides)}
            images += 1
            for tag in {t.casefold() for t in note}:
                noted += 1
                picked += tag in chosen
                below += tag in offered and tag not in chosen
                missed += tag not in offered
        rows.append([name, images, noted, missed, below, picked])
    return pd.DataFrame(rows, columns=NOTED_COLUMNS)


def failures(report: BatchReport) -> list[tuple[str, str]]:
    """(image name, reason) of every image a run could not tag."""
    return [(r.name, r.reason) for r in report.results if not r.tagged]

