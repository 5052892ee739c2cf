"""One review that judges two taggers at once (for the Review page): a union of suggestions, verdicts split back.

* ``union_suggestions`` merges the sides' suggested tags by name into one list, best first (by the
  highest confidence any side gave). A tag several sides suggest appears once and is judged once.
  It is pre-selected when any side's rule selects it.
* ``split_verdicts`` turns the analyst's one set of accepted names into each side's own verdicts:
  a ``FeedbackItem`` for every tag *that side* suggested, with *its* confidence and parent, accepted
  when the name was accepted. Tags a side did not suggest are not written for it: verdicts stay per
  backend and language in the store (``Store.save_feedback`` once per key of the result), and the
  Compare page's pooled scope counts them for the other side by name anyway.
* Sides that share a backend and language (Imagga with and without ``decrease_parents``) share one
  verdict list in the store: their suggestions are merged, the first side's confidence kept for a
  tag both suggest.
* The whitelist holds: accepting a name no side suggested raises ``SelectionError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tagging.models import Tag
from tagging.rules import validate_selection
from tagging.store import FeedbackItem


@dataclass(frozen=True)
class Suggestions:
    """What one side suggested for an image: its store key (backend, language), tags and selection."""

    backend: str
    language: str
    tags: tuple[Tag, ...]
    selected: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnionTag:
    """One tag of the union: its best confidence, which sides suggested it, and whether a rule selects it."""

    name: str
    confidence: float
    suggested_by: tuple[int, ...]  # indexes of the sides that suggested it
    preselected: bool


def union_suggestions(sides: Sequence[Suggestions]) -> list[UnionTag]:
    """Every side's suggestions merged by name, best first (ties keep the first side's order)."""
    best: dict[str, float] = {}
    by: dict[str, list[int]] = {}
    chosen: set[str] = set()
    for index, side in enumerate(sides):
        chosen.update(side.selected)
        for tag in side.tags:
            best[tag.name] = max(best.get(tag.name, tag.confidence), tag.confidence)
            if index not in by.setdefault(tag.name, []):
                by[tag.name].append(index)
    names = sorted(best, key=lambda n: -best[n])  # stable: first-seen order among equals
    return [UnionTag(n, best[n], tuple(by[n]), n in chosen) for n in names]


def split_verdicts(sides: Sequence[Suggestions], accepted: Iterable[str]) -> dict[tuple[str, str], list[FeedbackItem]]:
    """Each (backend, language)'s verdicts from one judgement of the union; see the module docstring.

    Raises ``SelectionError`` when an accepted name was suggested by no side.
    """
    union = [t.name for t in union_suggestions(sides)]
    yes = set(validate_selection(accepted, union))
    result: dict[tuple[str, str], list[FeedbackItem]] = {}
    for side in sides:
        items = result.setdefault((side.backend, side.language), [])
        written = {it.tag for it in items}
        for tag in side.tags:
            if tag.name not in written:
                items.append(FeedbackItem(tag.name, tag.confidence, tag.name in yes, tag.parent))
                written.add(tag.name)
    return result
