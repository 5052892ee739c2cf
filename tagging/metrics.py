"""How well the auto-select rule agrees with the analyst's saved feedback, and which threshold to use.

Definitions (one backend and one language at a time):

* For one image, the rule's prediction at global threshold ``T`` with floor ``N`` is
  ``auto_select(tags with their stored confidences, T, N, overrides)`` - exactly the rule of
  the Tag page, per-tag overrides included. The ground truth is the saved verdict: accepted
  means the tag belongs, rejected means it does not.
* Over every tag verdict of every image: TP = selected and accepted, FP = selected and
  rejected, FN = not selected and accepted (TN = not selected and rejected).
* Micro-averages over all verdicts: precision = TP / (TP + FP), recall = TP / (TP + FN),
  F1 = 2 TP / (2 TP + FP + FN) (the harmonic mean of the two where both exist).
  Precision is undefined (NaN) when nothing is selected, recall when nothing was accepted,
  F1 when there is neither a selected nor an accepted tag; NaN is never replaced by 0 or 1.
* Thresholds are the integers 0 to 100, like the Tag page's slider.

Recommendation:

* "best F1": the threshold with the highest F1. Equal best F1s usually form a run of
  neighbouring thresholds (between two stored confidences nothing changes); the middle of the
  first such run is recommended, the threshold furthest from the confidences that bound it.
* "target precision": the lowest threshold whose precision reaches the target (so recall is
  kept as high as that precision allows). None reaches it -> no recommendation.
* With no accepted verdict there is nothing to recall and no recommendation.

Trust rule: a recommendation rests on too little feedback when there are fewer than
``MIN_IMAGES`` (5) images, fewer than ``MIN_VERDICTS`` (30) tag verdicts, or fewer than
``MIN_EACH`` (5) accepted or fewer than 5 rejected verdicts (without both kinds the curve
cannot tell a good threshold from a bad one). The page says so plainly.

Per tag: how often it was suggested (= verdicts), accepted and rejected, its mean confidence
and its own best threshold: the override ``t`` in 0..100 that maximises F1 counted on that
tag's verdicts only, when the rule runs at the given global threshold and floor with the
other overrides unchanged and ``{tag: t}`` added (best-F1 tie rule as above; none when the
tag was never accepted).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tagging.models import Tag
from tagging.rules import auto_select
from tagging.store import FeedbackItem
from tagging.store._tune import TuneRows, TuneSums, summed, sums_of  # noqa: F401 - re-exported for callers

THRESHOLDS: tuple[int, ...] = tuple(range(101))
MIN_IMAGES = 5
MIN_VERDICTS = 30
MIN_EACH = 5

BEST_F1 = "best_f1"
TARGET_PRECISION = "target_precision"

CURVE_COLUMNS = ["threshold", "selected", "tp", "fp", "fn", "tn", "precision", "recall", "f1"]
TAG_COLUMNS = ["tag", "suggested", "accepted", "rejected", "mean_confidence", "best_threshold", "best_f1"]

Feedback = Mapping[str, Sequence[FeedbackItem]]
"""Saved feedback of one backend and language: image key -> that image's verdicts."""


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def scores(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """(precision, recall, F1) from counts; NaN where undefined (see the module docstring)."""
    return _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)


def _tags(items: Sequence[FeedbackItem]) -> list[Tag]:
    return [Tag(it.tag, it.confidence) for it in items]


def _selections(
    items: Sequence[FeedbackItem], min_tags: int, overrides: Mapping[str, float]
) -> list[set[str]]:
    """The rule's selection of one image at every threshold of THRESHOLDS.

    The selection only depends on which tags without an override reach ``T``, so the rule
    runs once per distinct such set rather than 101 times.
    """
    tags = _tags(items)
    free = sorted((t.confidence for t in tags if t.name not in overrides), reverse=True)
    memo: dict[int, set[str]] = {}
    result = []
    for threshold in THRESHOLDS:
        reaching = sum(1 for c in free if c >= threshold)
        if reaching not in memo:
            memo[reaching] = set(auto_select(tags, threshold, min_tags, overrides))
        result.append(memo[reaching])
    return result


def image_counts(
    feedback: Feedback, min_tags: int, overrides: Mapping[str, float] | None = None
) -> tuple[list[str], np.ndarray]:
    """Per image, the rule's TP, FP, FN and TN at every threshold: (image keys, int array (images, 101, 4))."""
    overrides = dict(overrides or {})
    keys = list(feedback)
    counts = np.zeros((len(keys), len(THRESHOLDS), 4), dtype=np.int64)
    for row, key in enumerate(keys):
        items = feedback[key]
        accepted = {it.tag for it in items if it.accepted}
        rejected = {it.tag for it in items if not it.accepted}
        for threshold, chosen in zip(THRESHOLDS, _selections(items, min_tags, overrides), strict=True):
            tp = len(chosen & accepted)
            fp = len(chosen & rejected)
            counts[row, threshold] = (tp, fp, len(accepted) - tp, len(rejected) - fp)
    return keys, counts


def curve_from_counts(totals: np.ndarray) -> pd.DataFrame:
    """A ``threshold_curve`` from counts summed over images: TP, FP, FN, TN at every threshold, shape (101, 4)."""
    rows = []
    for threshold in THRESHOLDS:
        tp, fp, fn, tn = (int(v) for v in totals[threshold])
        rows.append([threshold, tp + fp, tp, fp, fn, tn, *scores(tp, fp, fn)])
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def threshold_curve(
    feedback: Feedback, min_tags: int, overrides: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """Counts and precision/recall/F1 of the rule at every threshold 0..100 (one row each)."""
    _, counts = image_counts(feedback, min_tags, overrides)
    return curve_from_counts(counts.sum(axis=0) if len(counts) else np.zeros((len(THRESHOLDS), 4), dtype=np.int64))


def _middle_of_first_best_run(values: Sequence[float]) -> int | None:
    """Index in the middle of the first run of the largest non-NaN value, or None if all NaN."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return None
    best = max(finite)
    start = next(i for i, v in enumerate(values) if v == best)
    end = start
    while end + 1 < len(values) and values[end + 1] == best:
        end += 1
    return (start + end) // 2


@dataclass(frozen=True)
class Evidence:
    """How much feedback a curve rests on, and whether that is enough to trust it."""

    images: int
    verdicts: int
    accepted: int
    rejected: int
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def trusted(self) -> bool:
        """True when none of the trust rule's minimums is missed."""
        return not self.problems


def evidence(feedback: Feedback) -> Evidence:
    """Count images and verdicts and apply the trust rule."""
    images = sum(1 for items in feedback.values() if items)
    verdicts = sum(len(items) for items in feedback.values())
    accepted = sum(it.accepted for items in feedback.values() for it in items)
    return _judge(images, verdicts, accepted)


def _judge(images: int, verdicts: int, accepted: int) -> Evidence:
    """The trust rule applied to counts."""
    rejected = verdicts - accepted
    problems = []
    if images < MIN_IMAGES:
        problems.append(f"only {images} image{'s' if images != 1 else ''} (need at least {MIN_IMAGES})")
    if verdicts < MIN_VERDICTS:
        problems.append(f"only {verdicts} tag verdicts (need at least {MIN_VERDICTS})")
    if accepted < MIN_EACH:
        problems.append(f"only {accepted} accepted tags (need at least {MIN_EACH})")
    if rejected < MIN_EACH:
        problems.append(f"only {rejected} rejected tags (need at least {MIN_EACH})")
    return Evidence(images, verdicts, accepted, rejected, tuple(problems))


@dataclass(frozen=True)
class Recommendation:
    """A recommended threshold and the rule's scores there; ``threshold`` None when there is none."""

    method: str
    threshold: int | None
    precision: float = math.nan
    recall: float = math.nan
    f1: float = math.nan
    reason: str = ""


def _pick(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, method: str, target_precision: float | None,
    prefer: int | None = None,
) -> int | None:
    """Index of the recommended threshold from counts at every threshold, or None (the rules above).

    ``prefer`` (the current threshold's index) wins every tie: a threshold that scores no better
    than it is never recommended over it.
    """
    if tp[0] + fn[0] == 0:
        return None
    if method == BEST_F1:
        f1 = 2 * tp / (2 * tp + fp + fn)  # 2 TP + FN > 0 everywhere once something was accepted
        if prefer is not None and f1[prefer] >= f1.max() - 1e-12:
            return prefer
        return _middle_of_first_best_run(list(f1))
    selected = tp + fp
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(selected > 0, tp / np.maximum(selected, 1), np.nan)
    reaching = np.flatnonzero(precision >= (target_precision or 0.0) - 1e-12)
    if not len(reaching):
        return None
    first = int(reaching[0])
    if prefer is not None and prefer in reaching and (tp[prefer], fp[prefer], fn[prefer]) == (
            tp[first], fp[first], fn[first]):
        return prefer  # the same selections as the lowest reaching one: nothing to gain by moving
    return first


def _index(threshold: float | None) -> int | None:
    return None if threshold is None else min(len(THRESHOLDS) - 1, max(0, int(round(threshold))))


def recommend(curve: pd.DataFrame, method: str = BEST_F1, target_precision: float | None = None,
              current: float | None = None) -> Recommendation:
    """Pick a threshold from a ``threshold_curve``: best F1, or the lowest reaching ``target_precision``.

    ``target_precision`` is a fraction (0.9 = 90 %). ``current`` (the threshold in use) wins ties:
    when it scores as well as the pick, it is the recommendation (keep it).
    """
    if method not in (BEST_F1, TARGET_PRECISION):
        raise ValueError(f"unknown method {method!r}")
    if method == TARGET_PRECISION and target_precision is None:
        raise ValueError("target_precision is required for the target-precision method")
    if curve.empty or int(curve["tp"].iloc[0] + curve["fn"].iloc[0]) == 0:
        return Recommendation(method, None, reason="No tag was accepted, so there is nothing to recall.")
    tp, fp, fn = (curve[c].to_numpy(dtype=float) for c in ("tp", "fp", "fn"))
    index = _pick(tp, fp, fn, method, target_precision, _index(current))
    if index is None:
        best = curve["precision"].max()
        best_text = "no threshold selects anything" if math.isnan(best) else f"the best is {best:.0%}"
        return Recommendation(
            method, None, reason=f"No threshold reaches a precision of {target_precision:.0%} ({best_text})."
        )
    reason = "highest F1" if method == BEST_F1 else f"lowest threshold with precision ≥ {target_precision:.0%}"
    if index == _index(current):
        reason = ("no threshold has a higher F1 than the current one" if method == BEST_F1 else
                  f"the current threshold already reaches precision ≥ {target_precision:.0%}, as well as any lower")
    row = curve.loc[index]
    return Recommendation(
        method, int(row["threshold"]), float(row["precision"]), float(row["recall"]), float(row["f1"]), reason
    )


DEFAULT_RESAMPLES = 200
STABLE_WITHIN = 5
"""A recommendation is called stable when at least ``STABLE_SHARE`` of the resamples land within this many
points of it."""
STABLE_SHARE = 0.8


@dataclass(frozen=True)
class Stability:
    """How much the recommended threshold moves when the reviewed images are resampled (a bootstrap).

    ``low``..``high`` is the central 90 % of the resampled recommendations; ``within`` the share of
    resamples that land within ``STABLE_WITHIN`` of ``threshold``; ``undecided`` the resamples that
    recommend nothing. ``stable`` says whether more verdicts would likely stop changing it.
    """

    threshold: int | None
    resamples: int
    low: int | None
    high: int | None
    within: float
    undecided: int

    @property
    def stable(self) -> bool:
        return self.threshold is not None and self.within >= STABLE_SHARE


def threshold_stability(
    feedback: Feedback,
    min_tags: int,
    overrides: Mapping[str, float] | None = None,
    method: str = BEST_F1,
    target_precision: float | None = None,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    current: float | None = None,
) -> Stability:
    """Bootstrap over images: resample the reviewed images with replacement and recommend again each time.

    Images, not verdicts, are resampled because an image's verdicts are made together. Seeded, so the
    same feedback always gives the same interval.
    """
    _, counts = image_counts(feedback, min_tags, overrides)
    return stability_from_counts(counts, method, target_precision, resamples=resamples, seed=seed, current=current)


def stability_from_counts(
    counts: np.ndarray,
    method: str = BEST_F1,
    target_precision: float | None = None,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    current: float | None = None,
) -> Stability:
    """``threshold_stability`` from per-image counts (images, 101, 4) as ``image_counts`` returns them."""
    images = len(counts)
    if not images:
        return Stability(None, 0, None, None, math.nan, 0)
    totals = counts.sum(axis=0).astype(float)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(images, np.full(images, 1 / images), size=resamples)
    sampled = np.tensordot(weights, counts, axes=(1, 0)).astype(float)  # (resamples, 101, 4)
    return _stability(totals, sampled, method, target_precision, resamples, _index(current))


def _stability(totals: np.ndarray, sampled: np.ndarray, method: str, target_precision: float | None,
               resamples: int, prefer: int | None = None) -> Stability:
    """The stability of the recommendation on ``totals`` (101, 4) over resampled counts (resamples, 101, 4)."""
    point = _pick(totals[:, 0], totals[:, 1], totals[:, 2], method, target_precision, prefer)
    picks = [_pick(c[:, 0], c[:, 1], c[:, 2], method, target_precision, prefer) for c in sampled]
    found = np.array([THRESHOLDS[p] for p in picks if p is not None])
    undecided = resamples - len(found)
    if not len(found):
        return Stability(None if point is None else THRESHOLDS[point], resamples, None, None, 0.0, undecided)
    low, high = (int(v) for v in np.percentile(found, [5, 95], method="nearest"))
    if point is None:
        return Stability(None, resamples, low, high, 0.0, undecided)
    within = float(np.sum(np.abs(found - THRESHOLDS[point]) <= STABLE_WITHIN) / resamples)
    return Stability(THRESHOLDS[point], resamples, low, high, within, undecided)


def at_threshold(curve: pd.DataFrame, threshold: float) -> pd.Series:
    """The curve's row for ``threshold`` (rounded to the nearest integer, clamped to 0..100)."""
    t = min(100, max(0, int(round(threshold))))
    return curve.loc[curve["threshold"] == t].iloc[0]


def tag_stats(
    feedback: Feedback, threshold: float, min_tags: int, overrides: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """One row per tag: suggested, accepted, rejected, mean confidence, its own best threshold and F1.

    Sorted by how often the tag was suggested (most first), then by name.
    """
    overrides = dict(overrides or {})
    # Per tag, a list of (confidence, accepted, picked by the floor anyway) per image.
    seen: dict[str, list[tuple[float, bool, bool]]] = {}
    for items in feedback.values():
        tags = _tags(items)
        for it in items:
            never = {**overrides, it.tag: math.inf}  # the tag cannot reach its own threshold
            by_floor = it.tag in auto_select(tags, threshold, min_tags, never)
            seen.setdefault(it.tag, []).append((it.confidence, it.accepted, by_floor))
    grid = np.array(THRESHOLDS, dtype=float)[:, None]
    rows = []
    for name, verdicts in seen.items():
        confidence, is_accepted, by_floor = (np.array(column) for column in zip(*verdicts, strict=True))
        accepted = int(is_accepted.sum())
        best: int | None = None
        f1s: list[float] = []
        if accepted:
            chosen = (confidence[None, :] >= grid) | by_floor[None, :]
            tp = (chosen & is_accepted).sum(axis=1)
            fp = (chosen & ~is_accepted).sum(axis=1)
            fn = accepted - tp
            f1s = list(2 * tp / (2 * tp + fp + fn))  # 2 TP + FN >= accepted > 0
            best = _middle_of_first_best_run(f1s)
        rows.append([
            name, len(verdicts), accepted, len(verdicts) - accepted, float(confidence.mean()),
            math.nan if best is None else THRESHOLDS[best],
            math.nan if best is None else float(f1s[best]),
        ])
    frame = pd.DataFrame(rows, columns=TAG_COLUMNS)
    frame["best_threshold"] = frame["best_threshold"].astype("Int64")
    return frame.sort_values(["suggested", "tag"], ascending=[False, True], ignore_index=True)


# --- the same numbers from aggregates (tagging.store's tune_rows) ---------------------------
EXACT_BOOTSTRAP_IMAGES = 5000
"""Up to this many images the bootstrap draws its weights exactly as ``stability_from_counts`` does (one
multinomial per resample, so the same interval). Above it, each resample's totals are drawn from their normal
approximation: a resample's totals are a sum of ``images`` images drawn at random, so (central limit) normal
with ``images`` times the per-image mean and covariance, computed once from the per-image bins. That costs per
bin, not per verdict: a million-image library resamples in well under a second."""
_WEIGHT_CHUNK = 8  # exact resamples weighed at once


def _split(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(…, DIMS) image vectors (``_tune.image_vectors``: events per acc and bin, base, verdicts) as (…, 2, 101)
    events, (…, 2) base and (…, 2) verdicts."""
    width = 2 * len(THRESHOLDS)
    events = vectors[..., :width].reshape(*vectors.shape[:-1], 2, len(THRESHOLDS))
    return events, vectors[..., width:width + 2], vectors[..., width + 2:width + 4]


class Aggregated:
    """Tune's metrics from ``Store.tune_rows`` (per-image counts in confidence bins, never a verdict loop) or from
    ``Store.tune_sums`` (those summed over images, kept in step with saves: ``from_sums``).

    Equal to ``threshold_curve``, ``image_counts``, ``evidence`` and ``tag_stats`` of the same
    feedback (mean confidence up to float rounding); ``stability`` resamples images through the
    per-image bins (or, from sums, always through the normal approximation). Treat as immutable:
    pages share one per data version.
    """

    def __init__(self, rows: TuneRows | None, sums: TuneSums | None = None) -> None:
        self.rows = rows
        self._sums = sums
        self._sampled: np.ndarray | None = None
        if rows is None:
            return
        order = np.lexsort((rows.event_x, rows.event_acc))
        self._image = rows.event_image[order]
        self._ds = rows.event_ds[order]
        slot = rows.event_acc[order] * len(THRESHOLDS) + rows.event_x[order]
        self._slots, self._starts = np.unique(slot, return_index=True)

    @classmethod
    def from_sums(cls, sums: TuneSums) -> Aggregated:
        """The metrics from sums over images alone (no per-image rows: ``image_counts`` is not available)."""
        return cls(None, sums)

    @property
    def sums(self) -> TuneSums:
        """The rows summed over images (computed once)."""
        if self._sums is None:
            assert self.rows is not None
            self._sums = sums_of(self.rows)
        return self._sums

    @property
    def images(self) -> int:
        return self.sums.images if self.rows is None else self.rows.images

    def _counts(self, base: np.ndarray, n: np.ndarray, events: np.ndarray) -> np.ndarray:
        """TP, FP, FN, TN at every threshold from (…, 2) base and verdicts and (…, 2, 101) events per bin."""
        reach = np.flip(np.cumsum(np.flip(events, -1), -1), -1)  # selected for T <= x, summed over x >= T
        tp = base[..., 1, None] + reach[..., 1, :]
        fp = base[..., 0, None] + reach[..., 0, :]
        return np.stack([tp, fp, n[..., 1, None] - tp, n[..., 0, None] - fp], axis=-1)

    def image_counts(self) -> np.ndarray:
        """Per image (in image-key order), TP, FP, FN, TN at every threshold: (images, 101, 4), as ``image_counts``."""
        r = self.rows
        if r is None:
            raise ValueError("per-image counts need per-image rows (Store.tune_rows), not sums")
        events = summed((r.images, 2, len(THRESHOLDS)), (r.event_image, r.event_acc, r.event_x), r.event_ds)
        return self._counts(r.base, r.n, events)

    def totals(self) -> np.ndarray:
        """TP, FP, FN, TN summed over images at every threshold: (101, 4)."""
        r = self.rows
        if r is None:
            events, base, n = _split(self.sums.vector)
            return self._counts(base, n, events)
        events = summed((2, len(THRESHOLDS)), (r.event_acc, r.event_x), r.event_ds)
        return self._counts(r.base.sum(axis=0), r.n.sum(axis=0), events)

    def curve(self) -> pd.DataFrame:
        """``threshold_curve`` of the same feedback."""
        return curve_from_counts(self.totals())

    def evidence(self) -> Evidence:
        """``evidence`` of the same feedback."""
        if self.rows is None:
            _, _, n = _split(self.sums.vector)
            return _judge(self.sums.images, int(n.sum()), int(n[1]))
        n = self.rows.n
        return _judge(int(np.count_nonzero(n.sum(axis=1))), int(n.sum()), int(n[:, 1].sum()))

    def tag_stats(self, threshold: int) -> pd.DataFrame:
        """``tag_stats`` at the integer ``threshold`` (the Tag page's slider), from per-tag bins."""
        r = self.rows if self.rows is not None else self.sums
        tags = len(r.tags)
        width = len(THRESHOLDS) + 1
        picked = np.zeros((tags, 2), dtype=np.int64)  # by the floor whatever the tag's own threshold
        binned = np.zeros((tags, 2, width), dtype=np.int64)
        if len(r.tag_rows):
            tag, bins, acc, lo2, n = (r.tag_rows[:, j] for j in range(5))
            by_floor = lo2 <= int(threshold)
            picked = summed((tags, 2), (tag[by_floor], acc[by_floor]), n[by_floor])
            rest = ~by_floor
            binned = summed((tags, 2, width), (tag[rest], acc[rest], np.clip(bins[rest], 0, width - 1)), n[rest])
        reach = np.flip(np.cumsum(np.flip(binned, -1), -1), -1)[..., : len(THRESHOLDS)]
        tp = picked[:, 1, None] + reach[:, 1, :]
        fp = picked[:, 0, None] + reach[:, 0, :]
        accepted = picked[:, 1] + binned[:, 1, :].sum(axis=1)
        rows = []
        for j, name in enumerate(r.tags):
            best: int | None = None
            f1s: list[float] = []
            if accepted[j]:
                fn = accepted[j] - tp[j]
                f1s = list(2 * tp[j] / (2 * tp[j] + fp[j] + fn))
                best = _middle_of_first_best_run(f1s)
            count = int(r.tag_count[j])
            rows.append([
                name, count, int(accepted[j]), count - int(accepted[j]), float(r.tag_confidence_sum[j] / count),
                math.nan if best is None else THRESHOLDS[best], math.nan if best is None else float(f1s[best]),
            ])
        frame = pd.DataFrame(rows, columns=TAG_COLUMNS)
        frame["best_threshold"] = frame["best_threshold"].astype("Int64")
        return frame.sort_values(["suggested", "tag"], ascending=[False, True], ignore_index=True)

    def _normal_resamples(self, rng: np.random.Generator, resamples: int) -> np.ndarray:
        """Resampled totals from the bootstrap's normal approximation (see EXACT_BOOTSTRAP_IMAGES)."""
        sums = self.sums
        images = sums.images
        mean = sums.vector / images
        covariance = sums.moments / images - np.outer(mean, mean)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        scale = eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None) * images)
        drawn = images * mean + rng.standard_normal((resamples, len(mean))) @ scale.T
        events, base, n = _split(drawn)
        return self._counts(base, n, events)

    def resampled_counts(self, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
        """TP, FP, FN, TN at every threshold of each bootstrap resample of the images: (resamples, 101, 4)."""
        r = self.rows
        rng = np.random.default_rng(seed)
        if r is None or r.images > EXACT_BOOTSTRAP_IMAGES:
            return self._normal_resamples(rng, resamples)
        parts = []
        for start in range(0, resamples, _WEIGHT_CHUNK):
            count = min(_WEIGHT_CHUNK, resamples - start)
            w = rng.multinomial(r.images, np.full(r.images, 1 / r.images), size=count)
            events = np.zeros((count, 2 * len(THRESHOLDS)), dtype=np.int64)
            if len(self._ds):
                events[:, self._slots] = np.add.reduceat(w[:, self._image] * self._ds, self._starts, axis=1)
            parts.append(self._counts(w @ r.base, w @ r.n, events.reshape(count, 2, len(THRESHOLDS))))
        return np.concatenate(parts) if parts else np.zeros((0, len(THRESHOLDS), 4), dtype=np.int64)

    def stability(self, method: str = BEST_F1, target_precision: float | None = None, *,
                  resamples: int = DEFAULT_RESAMPLES, seed: int = 0, current: float | None = None) -> Stability:
        """``threshold_stability`` through the per-image bins; the resamples are drawn once and kept."""
        if not self.images:
            return Stability(None, 0, None, None, math.nan, 0)
        if self._sampled is None or len(self._sampled) != resamples or seed != 0:
            sampled = self.resampled_counts(resamples, seed)
            if seed == 0:
                self._sampled = sampled
        else:
            sampled = self._sampled
        return _stability(self.totals().astype(float), sampled.astype(float), method, target_precision, resamples,
                          _index(current))


def tune_data(store: Any, backend: str, language: str, min_tags: int, overrides: Mapping[str, float],
              review_mode: str | None = None) -> Aggregated:
    """Tune's metrics from a ``Store`` (or a guarded one): a large library from the sums kept in step with saves
    (a few thousand numbers, whatever its size); a small one, or a floor the sums are not kept for, from per-image
    rows, so its bootstrap resamples images exactly."""
    sums = store.tune_sums(backend, language, min_tags, dict(overrides), review_mode, more_than=EXACT_BOOTSTRAP_IMAGES)
    if sums is not None:
        return Aggregated.from_sums(sums)
    return Aggregated(store.tune_rows(backend, language, min_tags, dict(overrides), review_mode))
