"""Streamlit helpers of the Review page: its session, the image it shows, the chart, the words."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import streamlit as st

from tagging.backends import LABELS
from tagging.models import Tag
from tagging.review import CACHED, STORED, Card, Pace
from tagging.store import Store
from ui.charts import NOT_SELECTED, SELECTED, chart_height, confidence_chart
from ui.page import literal

SIDE_NAMES = "ABCDEFGH"
CHART_STEP = 20
PREVIEWS_KEPT = 64  # previews held in memory (one process): about 5 MB at 80 KB each
_TAGS, _RULE = "tags", "threshold"
# The next card's image is drawn in this container: out of sight and out of the layout, yet loaded.
PREFETCH_STYLE = ("<style>.st-key-review_prefetch {position: absolute; width: 1px; height: 1px; overflow: hidden; "
                  "opacity: 0; pointer-events: none;}</style>")


@st.cache_data(show_spinner=False, max_entries=PREVIEWS_KEPT)
def preview(db_key: str, image_key: str, _store: Store) -> bytes | None:
    """The image to review by (``Store.preview``), read once per image and database."""
    return _store.preview(image_key)


@lru_cache(maxsize=1)
def _template() -> dict[str, Any]:
    """``ui.charts.confidence_chart``'s Vega-Lite spec, made once, with named datasets and bars sorted by confidence.

    Altair validates a chart against the whole Vega-Lite schema on every ``to_dict`` (about 70 ms on
    2 cores, a quarter of a review step's budget), so the spec is built once and each card fills in
    its rows. The spec stays the same from card to card (the bars are sorted by their confidence,
    not by a list of names), so the browser swaps the chart's data instead of drawing it anew.
    """
    spec = confidence_chart([Tag("a", 90.0), Tag("b", 10.0)], ["a"], 50.0).to_dict()
    spec.pop("datasets")
    bars, rule = spec["layer"]
    bars["data"] = {"name": _TAGS}
    rule["data"] = {"name": _RULE}
    bars["encoding"]["y"]["sort"] = "-x"
    return spec


def chart_spec(tags: Sequence[Tag], selected: Iterable[str], threshold: float) -> dict[str, Any]:
    """The confidence chart of ``tags`` (``ui.charts.confidence_chart``, the same look) as a Vega-Lite dict."""
    chosen = set(selected)
    spec = copy.deepcopy(_template())
    spec["datasets"] = {
        _TAGS: [{"tag": t.name, "confidence": round(t.confidence, 2),
                 "status": SELECTED if t.name in chosen else NOT_SELECTED} for t in tags],
        _RULE: [{"threshold": float(threshold)}],
    }
    # Heights in steps of 20 tags: within a step the spec does not change, only its data.
    spec["height"] = chart_height(CHART_STEP * max(1, math.ceil(len(tags) / CHART_STEP))) - 60
    return spec


def backend_label(backend: str) -> str:
    return LABELS.get(backend, backend)


def side_legend(card: Card) -> str:
    """Which tagger each side is, Markdown-safe: ``A: Embedded tagger (offline) · B: Imagga API (cached answer)``."""
    parts = []
    for name, side, origin in zip(SIDE_NAMES, card.sides, card.origins, strict=False):
        where = {CACHED: " (answer in the result cache)", STORED: " (its own automatic verdicts)"}.get(origin, "")
        parts.append(f"{name}: {literal(backend_label(side.backend))}{where}")
    return " · ".join(parts)


def tag_label(card: Card, name: str) -> str:
    """A toggle's label, Markdown-safe: the tag and its confidence (each side's, in a union)."""
    confidences = card.confidences(name)
    if len(confidences) == 1:
        values = f"{confidences[0]:.0f}"
    else:
        values = " | ".join("–" if c is None else f"{c:.0f}" for c in confidences)
    return f"{literal(name)} · {values}"


def pace_text(pace: Pace) -> str:
    if pace.images_per_minute is None:
        return "pace: after the first verdict"
    return f"{pace.images_per_minute:.1f} images per minute ({pace.verdicts_per_minute:.0f} tag verdicts per minute)"
