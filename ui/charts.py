"""Altair charts used by the pages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import altair as alt
import pandas as pd

from tagging.models import Tag

SELECTED = "selected"
NOT_SELECTED = "not selected"


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


def chart_height(n_tags: int) -> int:
    """Pixels for a bar chart of ``n_tags`` bars that keeps every label readable."""
    return 80 + 20 * max(n_tags, 3)
