"""How far two taggers agree on one image: their auto-selected sets, side by side.

Conventions:

* Agreement is the Jaccard index of the two auto-selected sets, |A ∩ B| / |A ∪ B|, tags compared
  by name exactly as the backends spell them (two languages therefore share almost nothing).
* Two empty sets: NaN, not 1. Nothing was selected on either side, so there is nothing to agree
  on, and an image where both taggers said nothing must not raise the mean agreement of a set as if
  they had agreed on something (the same rule as ``tagging.metrics``: NaN is never replaced by 0
  or 1). One empty set and one not: 0.
* Lists keep the order of confidence: "both" by the higher of the two confidences, "only A" and
  "only B" by their own side's confidence.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import pandas as pd

from tagging.models import Tag

BOTH, ONLY_A, ONLY_B, NEITHER = "both", "only A", "only B", "neither"
SIDE_BY_SIDE_COLUMNS = ["tag", "confidence A", "confidence B", "selected A", "selected B", "where"]


def jaccard(a: Collection[str], b: Collection[str]) -> float:
    """|A ∩ B| / |A ∪ B|; NaN when both are empty (see the module docstring)."""
    first, second = set(a), set(b)
    union = first | second
    return len(first & second) / len(union) if union else math.nan


@dataclass(frozen=True)
class Agreement:
    """Two auto-selected sets of one image and how far they agree."""

    selected_a: tuple[str, ...]
    selected_b: tuple[str, ...]
    both: tuple[str, ...]
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]
    jaccard: float

    @property
    def identical(self) -> bool:
        return set(self.selected_a) == set(self.selected_b)


def agreement(
    selected_a: Sequence[str],
    selected_b: Sequence[str],
    tags_a: Sequence[Tag] = (),
    tags_b: Sequence[Tag] = (),
) -> Agreement:
    """Compare two selections; with the tags, "both" is ordered by the higher confidence."""
    set_a, set_b = set(selected_a), set(selected_b)
    confidence = {t.name: t.confidence for t in tags_b}
    for t in tags_a:
        confidence[t.name] = max(t.confidence, confidence.get(t.name, -math.inf))
    both = sorted((n for n in dict.fromkeys(selected_a) if n in set_b), key=lambda n: -confidence.get(n, 0.0))
    return Agreement(
        selected_a=tuple(selected_a),
        selected_b=tuple(selected_b),
        both=tuple(both),
        only_a=tuple(n for n in selected_a if n not in set_b),
        only_b=tuple(n for n in selected_b if n not in set_a),
        jaccard=jaccard(set_a, set_b),
    )


def side_by_side(
    tags_a: Sequence[Tag], tags_b: Sequence[Tag], selected_a: Collection[str], selected_b: Collection[str]
) -> pd.DataFrame:
    """One row per tag either side suggested: both confidences (NaN where a side did not suggest it),
    whether each side selects it, and where it stands (both, only A, only B, neither).

    Ordered by the higher of the two confidences, best first (ties: A's order, then B's).
    """
    chosen_a, chosen_b = set(selected_a), set(selected_b)
    conf_a = {t.name: t.confidence for t in tags_a}
    conf_b = {t.name: t.confidence for t in tags_b}
    names = list(dict.fromkeys([*(t.name for t in tags_a), *(t.name for t in tags_b)]))
    rows = []
    for name in names:
        in_a, in_b = name in chosen_a, name in chosen_b
        where = BOTH if in_a and in_b else ONLY_A if in_a else ONLY_B if in_b else NEITHER
        rows.append([name, conf_a.get(name, math.nan), conf_b.get(name, math.nan), in_a, in_b, where])
    frame = pd.DataFrame(rows, columns=SIDE_BY_SIDE_COLUMNS)
    best = frame[["confidence A", "confidence B"]].max(axis=1).fillna(-1.0)
    return frame.iloc[best.sort_values(ascending=False, kind="stable").index].reset_index(drop=True)
