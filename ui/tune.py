"""Streamlit helpers of the Tune page: its session defaults, cached metrics and the curve chart."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from tagging import metrics
from tagging.store import FeedbackGroup, Store

METRIC_COLORS = {"precision": "#1f77b4", "recall": "#e4572e", "F1": "#2ca02c"}
Overrides = tuple[tuple[str, float], ...]


def data_version(store: Store) -> int:
    """The store's change counter: every cached result below is keyed by it, never by hashing rows."""
    return store.data_version()


@st.cache_data(max_entries=16, show_spinner=False)
def groups(_store: Store, url: str, version: int) -> list[FeedbackGroup]:
    """``Store.feedback_groups`` (reviewed verdicts), read once per data version."""
    return _store.feedback_groups()


@st.cache_data(max_entries=64, show_spinner=False)
def awaiting(_store: Store, url: str, version: int, backend: str | None = None, language: str | None = None) -> int:
    """``Store.awaiting_review``, read once per data version."""
    return _store.awaiting_review(backend, language)


@st.cache_resource(max_entries=8, show_spinner="Computing the curve…")
def aggregated(_store: Store, url: str, version: int, backend: str, language: str, min_tags: int,
               overrides: Overrides) -> metrics.Aggregated:
    """Tune's aggregates of one backend and language, computed in the database once per data version, floor
    and overrides; shared by every session (read only), so the bootstrap's resamples are drawn once."""
    return metrics.Aggregated(_store.tune_rows(backend, language, min_tags, dict(overrides)))


def stability_text(result: metrics.Stability) -> str:
    """The bootstrap in an analyst's words: how far the recommendation moves, and whether to review more."""
    if result.threshold is None or result.low is None or result.high is None:
        return ""
    spread = (f"the recommendation moves between {result.low} and {result.high} in 90% of "
              f"{result.resamples} resamples of your reviewed images")
    if result.undecided:
        spread += f" ({result.undecided} resamples recommend nothing)"
    if result.stable:
        return f"Stable: {spread}; more verdicts are unlikely to change it."
    return (f"Still moving: {spread}, and only {result.within:.0%} land within {metrics.STABLE_WITHIN} of "
            f"{result.threshold}. Review more images before you rely on it.")


def curve_chart(frame: pd.DataFrame, current: float, recommended: int | None) -> alt.LayerChart:
    """Precision, recall and F1 against the threshold; the current threshold is a solid rule,
    the recommended one a dashed rule."""
    long = frame.rename(columns={"f1": "F1"}).melt(
        id_vars=["threshold", "tp", "fp", "fn"], value_vars=["precision", "recall", "F1"],
        var_name="metric", value_name="value",
    )
    lines = (
        alt.Chart(long)
        .mark_line(interpolate="step-after", point=False)
        .encode(
            x=alt.X("threshold:Q", title="threshold", scale=alt.Scale(domain=[0, 100])),
            y=alt.Y("value:Q", title=None, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            color=alt.Color(
                "metric:N",
                scale=alt.Scale(domain=list(METRIC_COLORS), range=list(METRIC_COLORS.values())),
                legend=alt.Legend(title=None, orient="bottom"),
            ),
            tooltip=[
                "threshold:Q", "metric:N", alt.Tooltip("value:Q", format=".1%"), "tp:Q", "fp:Q", "fn:Q",
            ],
        )
    )
    marks = [{"threshold": float(current), "marker": "current"}]
    if recommended is not None:
        marks.append({"threshold": float(recommended), "marker": "recommended"})
    rules = (
        alt.Chart(pd.DataFrame(marks))
        .mark_rule(size=2, color="#222")
        .encode(
            x="threshold:Q",
            strokeDash=alt.StrokeDash(
                "marker:N",
                scale=alt.Scale(domain=["current", "recommended"], range=[[1, 0], [6, 3]]),
                legend=alt.Legend(title="threshold", orient="bottom"),
            ),
            tooltip=["marker:N", "threshold:Q"],
        )
    )
    return (lines + rules).properties(height=320)


def best_thresholds(stats: pd.DataFrame) -> dict[str, int]:
    """``{tag: its own best threshold}`` from a ``tag_stats`` table, tags without one left out."""
    return {t: int(b) for t, b in zip(stats["tag"], stats["best_threshold"], strict=True) if not pd.isna(b)}


def curve_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The numbers behind the curve, with readable column names."""
    return frame.rename(
        columns={"tp": "TP", "fp": "FP", "fn": "FN", "tn": "TN", "f1": "F1", "selected": "selected tags"}
    )
