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

import numpy as np
import pandas as pd

from tagging.models import Tag
from tagging.rules import auto_select
from tagging.store import FeedbackItem

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


def threshold_curve(
    feedback: Feedback, min_tags: int, overrides: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """Counts and precision/recall/F1 of the rule at every threshold 0..100 (one row each)."""
    overrides = dict(overrides or {})
    counts = {t: [0, 0, 0, 0, 0] for t in THRESHOLDS}  # selected, tp, fp, fn, tn
    for items in feedback.values():
        accepted = {it.tag for it in items if it.accepted}
        rejected = {it.tag for it in items if not it.accepted}
        for threshold, chosen in zip(THRESHOLDS, _selections(items, min_tags, overrides), strict=True):
            row = counts[threshold]
            tp = len(chosen & accepted)
            fp = len(chosen & rejected)
            row[0] += tp + fp
            row[1] += tp
            row[2] += fp
            row[3] += len(accepted) - tp
            row[4] += len(rejected) - fp
    rows = []
    for threshold in THRESHOLDS:
        selected, tp, fp, fn, tn = counts[threshold]
        rows.append([threshold, selected, tp, fp, fn, tn, *scores(tp, fp, fn)])
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


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


def recommend(curve: pd.DataFrame, method: str = BEST_F1, target_precision: float | None = None) -> Recommendation:
    """Pick a threshold from a ``threshold_curve``: best F1, or the lowest reaching ``target_precision``.

    ``target_precision`` is a fraction (0.9 = 90 %).
    """
    if method not in (BEST_F1, TARGET_PRECISION):
        raise ValueError(f"unknown method {method!r}")
    if curve.empty or int(curve["tp"].iloc[0] + curve["fn"].iloc[0]) == 0:
        return Recommendation(method, None, reason="No tag was accepted, so there is nothing to recall.")
    if method == BEST_F1:
        index = _middle_of_first_best_run(list(curve["f1"]))
        assert index is not None  # some tag was accepted, so F1 is defined everywhere
        reason = "highest F1"
    else:
        if target_precision is None:
            raise ValueError("target_precision is required for the target-precision method")
        reaching = curve.index[curve["precision"] >= target_precision - 1e-12]
        if len(reaching) == 0:
            best = curve["precision"].max()
            best_text = "no threshold selects anything" if math.isnan(best) else f"the best is {best:.0%}"
            return Recommendation(
                method, None, reason=f"No threshold reaches a precision of {target_precision:.0%} ({best_text})."
            )
        index = int(reaching[0])
        reason = f"lowest threshold with precision ≥ {target_precision:.0%}"
    row = curve.loc[index]
    return Recommendation(
        method, int(row["threshold"]), float(row["precision"]), float(row["recall"]), float(row["f1"]), reason
    )


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
