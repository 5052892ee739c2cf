"""Altair charts used by the pages."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import altair as alt
import pandas as pd

from tagging.models import Tag

SELECTED = "selected"
NOT_SELECTED = "not selected"
FLOOR = "below the threshold, picked by the floor"
COLORS = {SELECTED: "#e4572e", FLOOR: "#f4b6a1", NOT_SELECTED: "#b8c4d6"}
BAR_STEP = 26
"""Pixels per bar on the Tag and Batch charts, whatever the number of bars (labels never overlap)."""
INSIDE_FROM = 88
"""A value at or above this is written inside its bar's end (white), so it never runs off the chart."""


def confidence_chart(tags: Sequence[Tag], selected: Iterable[str], threshold: float) -> alt.LayerChart:
    """Horizontal bars of tags by confidence, selected ones highlighted, threshold as a rule."""
    chosen = set(selected)
    frame = pd.DataFrame(
        {
            "tag": [t.name for t in tags],
            "confidence": [round(t.confidence, 2) for t in tags],
            "status": [SELECTED if t.name in chosen else NOT_SELECTED for t in tags],
        }
    )
    order = list(frame["tag"])
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("confidence:Q", title="confidence", scale=alt.Scale(domain=[0, 100])),
            y=alt.Y("tag:N", sort=order, title=None, axis=alt.Axis(labelOverlap=False, labelLimit=180)),
            color=alt.Color(
                "status:N",
                scale=alt.Scale(domain=[SELECTED, NOT_SELECTED], range=["#e4572e", "#b8c4d6"]),
                legend=alt.Legend(title=None, orient="bottom"),
            ),
            tooltip=["tag", "confidence", "status"],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"threshold": [threshold]}))
        .mark_rule(color="#222", strokeDash=[6, 3], size=2)
        .encode(x="threshold:Q", tooltip=["threshold"])
    )
    return bars + rule


def tag_status(tags: Sequence[Tag], selected: Iterable[str], floor_picks: Iterable[str] = ()) -> list[str]:
    """Each tag's status on the Tag page's chart: selected, picked by the floor below the threshold, or not."""
    chosen, floor = set(selected), set(floor_picks)
    return [FLOOR if t.name in floor and t.name in chosen else SELECTED if t.name in chosen else NOT_SELECTED
            for t in tags]


def labelled_confidence_chart(
    tags: Sequence[Tag], selected: Iterable[str], threshold: float, floor_picks: Iterable[str] = ()
) -> alt.LayerChart:
    """The Tag page's chart: one bar of ``BAR_STEP`` px per tag, its value written at the bar's end.

    Tags the top-N floor picked below the threshold get their own colour and legend entry, so they
    never look like tags the threshold selected.
    """
    statuses = tag_status(tags, selected, floor_picks)
    frame = pd.DataFrame(
        {
            "tag": [t.name for t in tags],
            "confidence": [round(t.confidence, 1) for t in tags],
            "value": [f"{t.confidence:.0f}" for t in tags],
            "status": statuses,
        }
    )
    shown = [s for s in (SELECTED, FLOOR, NOT_SELECTED) if s in statuses]
    base = alt.Chart(frame).encode(
        x=alt.X("confidence:Q", title="confidence (0-100)", scale=alt.Scale(domain=[0, 100])),
        y=alt.Y("tag:N", sort=list(frame["tag"]), title=None,
                axis=alt.Axis(labelOverlap=False, labelLimit=140, labelFontSize=12)),
        tooltip=["tag", "confidence", "status"],
    )
    bars = base.mark_bar(height={"band": 0.8}).encode(
        color=alt.Color(
            "status:N",
            scale=alt.Scale(domain=shown, range=[COLORS[s] for s in shown]),
            legend=alt.Legend(title=None, orient="top", labelLimit=320, direction="vertical"),
        ),
    )
    outside = base.transform_filter(alt.datum.confidence < INSIDE_FROM).mark_text(
        align="left", baseline="middle", dx=4, fontSize=12, color="#222"
    ).encode(text="value:N")
    inside = base.transform_filter(alt.datum.confidence >= INSIDE_FROM).mark_text(
        align="right", baseline="middle", dx=-4, fontSize=12, color="#fff", fontWeight="bold"
    ).encode(text="value:N")
    rule = (
        alt.Chart(pd.DataFrame({"threshold": [threshold]}))
        .mark_rule(color="#222", strokeDash=[6, 3], size=2)
        .encode(x="threshold:Q", tooltip=["threshold"])
    )
    return (bars + outside + inside + rule).properties(height=alt.Step(BAR_STEP))


@lru_cache(maxsize=1)
def _labelled_template() -> dict[str, Any]:
    """``labelled_confidence_chart``'s Vega-Lite spec, made (and validated) once; each call fills in its data.

    Building and validating the Altair chart takes about 0.3 s on this 2-core machine, most of a slider
    step's budget; filling a copy of the spec takes microseconds.
    """
    spec = labelled_confidence_chart([Tag("a", 90.0), Tag("b", 10.0)], ["a"], 50.0, []).to_dict()
    spec.pop("datasets", None)
    return spec


def labelled_confidence_spec(
    tags: Sequence[Tag], selected: Iterable[str], threshold: float, floor_picks: Iterable[str] = ()
) -> dict[str, Any]:
    """The Tag page's chart (``labelled_confidence_chart``, the same look) as a Vega-Lite dict, fast."""
    statuses = tag_status(tags, selected, floor_picks)
    spec = copy.deepcopy(_labelled_template())
    spec["data"] = {"values": [
        {"tag": t.name, "confidence": round(t.confidence, 1), "value": f"{t.confidence:.0f}", "status": status}
        for t, status in zip(tags, statuses, strict=True)
    ]}
    shown = [s for s in (SELECTED, FLOOR, NOT_SELECTED) if s in statuses]
    order = [t.name for t in tags]
    for layer in spec["layer"]:
        encoding = layer.get("encoding", {})
        if "y" in encoding:
            encoding["y"]["sort"] = order
        if "color" in encoding:
            encoding["color"]["scale"] = {"domain": shown, "range": [COLORS[s] for s in shown]}
        if "data" in layer:  # the threshold's rule has its own one-row data
            layer["data"] = {"values": [{"threshold": float(threshold)}]}
    return spec


def chart_height(n_tags: int) -> int:
    """Pixels for a bar chart of ``n_tags`` bars that keeps every label readable."""
    return 80 + 20 * max(n_tags, 3)
