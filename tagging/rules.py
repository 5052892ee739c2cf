"""The auto-select rule and the whitelist, from Imagga's auto-tagging widget.

Rule: select every tag whose confidence is at or above its threshold, and never fewer than
the first ``min_tags`` tags, whichever set is larger.

- Boundary: a confidence exactly equal to the threshold is selected (``>=``).
- Order: tags are taken highest confidence first; equal confidences keep the backend's order.
- Ties at the floor: when the floor adds tags below the threshold, it adds exactly enough to
  reach ``min_tags``; of several tags with the same confidence the earlier one wins, so the
  floor never selects more than ``min_tags`` tags by itself.
- Fewer tags than ``min_tags``: all of them are selected. No tags: nothing is selected.
- Per-tag overrides (``{name: threshold}``) replace the global threshold for that tag only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from tagging.errors import SelectionError
from tagging.models import Tag

DEFAULT_THRESHOLD = 60.0
DEFAULT_MIN_TAGS = 3


def auto_select(
    tags: Sequence[Tag],
    threshold: float = DEFAULT_THRESHOLD,
    min_tags: int = DEFAULT_MIN_TAGS,
    overrides: Mapping[str, float] | None = None,
) -> list[str]:
    """Names of the auto-selected tags, highest confidence first."""
    if min_tags < 0:
        raise ValueError("min_tags must not be negative")
    overrides = overrides or {}
    ordered = sorted(tags, key=lambda t: -t.confidence)
    chosen = [t.name for t in ordered if t.confidence >= overrides.get(t.name, threshold)]
    if len(chosen) < min_tags:
        taken = set(chosen)
        for t in ordered:
            if len(chosen) >= min_tags:
                break
            if t.name not in taken:
                chosen.append(t.name)
                taken.add(t.name)
        rank = {t.name: i for i, t in enumerate(ordered)}
        chosen.sort(key=rank.__getitem__)
    return chosen


def floor_picks(
    tags: Sequence[Tag],
    threshold: float = DEFAULT_THRESHOLD,
    min_tags: int = DEFAULT_MIN_TAGS,
    overrides: Mapping[str, float] | None = None,
) -> list[str]:
    """The tags ``auto_select`` takes only because of the floor: below their threshold, highest first."""
    overrides = overrides or {}
    below = {t.name for t in tags if t.confidence < overrides.get(t.name, threshold)}
    return [name for name in auto_select(tags, threshold, min_tags, overrides) if name in below]


def floor_ties(
    tags: Sequence[Tag],
    threshold: float = DEFAULT_THRESHOLD,
    min_tags: int = DEFAULT_MIN_TAGS,
    overrides: Mapping[str, float] | None = None,
) -> list[str]:
    """Tags left out although they tie with the floor's last pick (the backend's order decided), highest first.

    The floor adds exactly enough tags to reach ``min_tags``; when the last one it adds has the same
    confidence as tags it leaves out, which of them got in is arbitrary, and the page says so.
    """
    picks = floor_picks(tags, threshold, min_tags, overrides)
    if not picks:
        return []
    chosen = set(auto_select(tags, threshold, min_tags, overrides))
    last = next(t.confidence for t in tags if t.name == picks[-1])
    return [t.name for t in tags if t.name not in chosen and t.confidence == last]


def validate_selection(selection: Iterable[str], suggestions: Iterable[str]) -> list[str]:
    """Return ``selection`` without duplicates if every tag was suggested.

    Raises SelectionError naming the tags that were not suggested: only the backend's
    suggestions can be accepted (the widget's anti-spam rule).
    """
    allowed = set(suggestions)
    result: list[str] = []
    for name in selection:
        if name not in result:
            result.append(name)
    outside = [name for name in result if name not in allowed]
    if outside:
        raise SelectionError(
            "Only suggested tags can be accepted; not suggested: " + ", ".join(sorted(outside))
        )
    return result
