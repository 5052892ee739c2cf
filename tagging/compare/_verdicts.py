"""Each tagger against the analyst's own verdicts: precision, recall and F1 at its own best threshold.

Ground truth (a *truth*): per image, per tag name, accepted (the tag belongs) or rejected (it does
not), from ``Store.feedback_by_image`` (reviewed verdicts only, once the review queue lands).
Two scopes:

* ``POOLED`` (default): the verdicts of every backend in the side's language, merged by tag name.
  A verdict says what the image shows, whichever tagger suggested the tag, so "cat" accepted while
  reviewing Imagga's tags also counts when the embedded tagger suggests "cat". A tag accepted under
  one backend and rejected under another is a *conflict* and is left out (counted, never guessed).
* ``OWN``: only the verdicts saved for the side's own backend.

Scoring one side over the images both sides answered that have verdicts, at every threshold
0..100 with the side's floor and the per-tag overrides (the Tag page's rule, on the side's *whole*
answer so unjudged tags take their place in the floor as they would on the page):

* TP: selected and accepted; FP: selected and rejected; FN: accepted but not selected, including
  accepted tags the side never suggested (no threshold can recall them); TN: rejected, not selected.
* A selected tag without a verdict is *unjudged*: neither right nor wrong, left out of precision,
  and counted so the page can say how much of a selection the verdicts do not cover.
* Precision, recall, F1 and the best threshold (best F1, middle of the first best run), the trust
  rule and the bootstrap stability are ``tagging.metrics``' own, on these counts.
* The verdicts a side *rests on*: those that can move its scores, i.e. the verdicts on tags it
  suggested plus the accepted tags it did not suggest (rejected tags it never offered cannot).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tagging import metrics
from tagging.compare._specs import Side
from tagging.models import Tag
from tagging.rules import auto_select
from tagging.store import FeedbackItem

POOLED, OWN = "pooled", "own"
SCOPES = (POOLED, OWN)
VERDICT_COLUMNS = [
    "side", "best threshold", "precision", "recall", "F1", "F1 at its threshold", "images", "verdicts",
    "accepted", "rejected", "unjudged selected", "stable", "90% of resamples",
]


@dataclass(frozen=True)
class Truth:
    """The analyst's verdicts as ground truth: image key -> tag -> accepted."""

    verdicts: dict[str, dict[str, bool]] = field(default_factory=dict)
    conflicts: int = 0  # (image, tag) pairs accepted under one backend and rejected under another, left out

    def __len__(self) -> int:
        return sum(len(v) for v in self.verdicts.values())


def truth_from(feedback_by_backend: Mapping[str, metrics.Feedback]) -> Truth:
    """Merge the verdicts of several backends (one language) by image and tag name; see the module docstring."""
    seen: dict[str, dict[str, set[bool]]] = {}
    for feedback in feedback_by_backend.values():
        for key, items in feedback.items():
            per_image = seen.setdefault(key, {})
            for item in items:
                per_image.setdefault(item.tag, set()).add(bool(item.accepted))
    verdicts: dict[str, dict[str, bool]] = {}
    conflicts = 0
    for key, tags in seen.items():
        agreed = {tag: next(iter(values)) for tag, values in tags.items() if len(values) == 1}
        conflicts += len(tags) - len(agreed)
        if agreed:
            verdicts[key] = agreed
    return Truth(verdicts, conflicts)


def _selections(tags: Sequence[Tag], min_tags: int, overrides: Mapping[str, float]) -> list[set[str]]:
    """The rule's selection at every threshold; it only changes when another free tag reaches it."""
    free = sorted((t.confidence for t in tags if t.name not in overrides), reverse=True)
    memo: dict[int, set[str]] = {}
    result = []
    for threshold in metrics.THRESHOLDS:
        reaching = sum(1 for c in free if c >= threshold)
        if reaching not in memo:
            memo[reaching] = set(auto_select(tags, threshold, min_tags, overrides))
        result.append(memo[reaching])
    return result


@dataclass(frozen=True)
class VerdictCounts:
    """Per image, TP, FP, FN, TN (``counts``, shape (images, 101, 4)) and unjudged selected tags
    (``unjudged``, (images, 101)) at every threshold, and the verdicts they rest on."""

    keys: list[str]
    counts: np.ndarray
    unjudged: np.ndarray
    rests_on: dict[str, list[FeedbackItem]]


def verdict_counts(
    answers: Mapping[str, Sequence[Tag]],
    truth: Truth,
    min_tags: int,
    overrides: Mapping[str, float] | None = None,
    image_keys: Collection[str] | None = None,
) -> VerdictCounts:
    """Count one side's answers against the truth on the images that have both (and are in ``image_keys``)."""
    overrides = dict(overrides or {})
    wanted = answers.keys() if image_keys is None else [k for k in dict.fromkeys(image_keys) if k in answers]
    keys = [k for k in wanted if truth.verdicts.get(k)]
    counts = np.zeros((len(keys), len(metrics.THRESHOLDS), 4), dtype=np.int64)
    unjudged = np.zeros((len(keys), len(metrics.THRESHOLDS)), dtype=np.int64)
    rests_on: dict[str, list[FeedbackItem]] = {}
    for row, key in enumerate(keys):
        tags, verdicts = answers[key], truth.verdicts[key]
        accepted = {tag for tag, ok in verdicts.items() if ok}
        rejected = {tag for tag, ok in verdicts.items() if not ok}
        for threshold, chosen in zip(metrics.THRESHOLDS, _selections(tags, min_tags, overrides), strict=True):
            tp, fp = len(chosen & accepted), len(chosen & rejected)
            counts[row, threshold] = (tp, fp, len(accepted) - tp, len(rejected) - fp)
            unjudged[row, threshold] = len(chosen) - tp - fp
        offered = {t.name for t in tags}
        rests_on[key] = [FeedbackItem(t.name, t.confidence, verdicts[t.name]) for t in tags if t.name in verdicts]
        rests_on[key] += [FeedbackItem(tag, 0.0, True) for tag in sorted(accepted - offered)]
    return VerdictCounts(keys, counts, unjudged, rests_on)


@dataclass(frozen=True)
class VerdictScore:
    """One side scored against the verdicts: its curve, best threshold, evidence and stability."""

    side: Side
    curve: pd.DataFrame  # metrics.CURVE_COLUMNS plus "unjudged" (selected tags without a verdict)
    recommendation: metrics.Recommendation
    evidence: metrics.Evidence
    stability: metrics.Stability

    @property
    def at_own_threshold(self) -> pd.Series:
        """The curve's row at the side's own threshold (what the analyst sees on the page)."""
        return metrics.at_threshold(self.curve, self.side.threshold)

    @property
    def unjudged_at_best(self) -> int | None:
        best = self.recommendation.threshold
        return None if best is None else int(metrics.at_threshold(self.curve, best)["unjudged"])


def score_side(
    side: Side,
    answers: Mapping[str, Sequence[Tag]],
    truth: Truth,
    overrides: Mapping[str, float] | None = None,
    image_keys: Collection[str] | None = None,
    *,
    resamples: int = metrics.DEFAULT_RESAMPLES,
    seed: int = 0,
) -> VerdictScore:
    """Score one side at every threshold and recommend its best-F1 threshold (see the module docstring)."""
    counted = verdict_counts(answers, truth, side.min_tags, overrides, image_keys)
    totals = counted.counts.sum(axis=0) if counted.keys else np.zeros((len(metrics.THRESHOLDS), 4), dtype=np.int64)
    curve = metrics.curve_from_counts(totals)
    curve["unjudged"] = counted.unjudged.sum(axis=0) if counted.keys else 0
    return VerdictScore(
        side=side,
        curve=curve,
        recommendation=metrics.recommend(curve, metrics.BEST_F1),
        evidence=metrics.evidence(counted.rests_on),
        stability=metrics.stability_from_counts(counted.counts, metrics.BEST_F1, resamples=resamples, seed=seed),
    )


def verdict_table(scores: Sequence[VerdictScore]) -> pd.DataFrame:
    """The sides' scores side by side, one row each (fractions, NaN where undefined)."""
    rows = []
    for score in scores:
        rec, ev, stab = score.recommendation, score.evidence, score.stability
        interval = "" if stab.low is None else f"{stab.low}–{stab.high}"
        rows.append([
            score.side.name, rec.threshold, rec.precision, rec.recall, rec.f1,
            float(score.at_own_threshold["f1"]), ev.images, ev.verdicts, ev.accepted, ev.rejected,
            score.unjudged_at_best, stab.stable, interval,
        ])
    frame = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    frame["best threshold"] = frame["best threshold"].astype("Int64")
    frame["unjudged selected"] = frame["unjudged selected"].astype("Int64")
    return frame


def _pct(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.0%}"


def verdict_summary(a: VerdictScore, b: VerdictScore) -> str:
    """One plain sentence: which side agrees with the verdicts more, at which threshold (no user text)."""
    ra, rb = a.recommendation, b.recommendation
    if ra.threshold is None and rb.threshold is None:
        return "Neither side can be scored: no accepted verdict on the images both answered."
    if ra.threshold is None or rb.threshold is None:
        scored, other = (a, b) if ra.threshold is not None else (b, a)
        r = scored.recommendation
        return (f"Only {scored.side.name} can be scored: F1 {_pct(r.f1)} at threshold {r.threshold}; "
                f"{other.side.name} has no accepted verdict to recall.")
    lead = (
        f"{a.side.name} agrees with your verdicts more" if ra.f1 > rb.f1
        else f"{b.side.name} agrees with your verdicts more" if rb.f1 > ra.f1
        else "Both agree with your verdicts equally"
    )
    return (f"{lead}: F1 {_pct(ra.f1)} at threshold {ra.threshold} for {a.side.name} "
            f"(precision {_pct(ra.precision)}, recall {_pct(ra.recall)}), F1 {_pct(rb.f1)} at threshold "
            f"{rb.threshold} for {b.side.name} (precision {_pct(rb.precision)}, recall {_pct(rb.recall)}).")
