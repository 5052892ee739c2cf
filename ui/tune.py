"""Streamlit helpers of the Tune page: its session defaults, cached metrics and the curve chart."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import altair as alt
import pandas as pd
import streamlit as st

from tagging import metrics
from tagging.rules import DEFAULT_THRESHOLD
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
               overrides: Overrides, review_mode: str | None = None) -> metrics.Aggregated:
    """Tune's aggregates of one backend and language, once per data version, floor and overrides (and review
    mode: blind reviews only); shared by every session (read only), so the bootstrap's resamples are drawn once
    (see ``metrics.tune_data``: sums kept at save time for a large library)."""
    return metrics.tune_data(_store, backend, language, min_tags, dict(overrides), review_mode)


@st.cache_data(max_entries=64, show_spinner=False)
def review_modes(_store: Store, url: str, version: int, backend: str, language: str) -> dict[str | None, int]:
    """``Store.review_modes``, read once per data version."""
    return _store.review_modes(backend, language)


def stability_text(result: metrics.Stability, trusted: bool = True) -> tuple[bool, str]:
    """The bootstrap in an analyst's words: (whether to call it settled, the text); "" when there is nothing to say.

    With too few verdicts to trust, resamples of the same few images agree with each other without that
    meaning much, so the text never calls such a recommendation stable.
    """
    if result.threshold is None or result.low is None or result.high is None:
        return False, ""
    where = (f"stays at {result.low}" if result.low == result.high
             else f"moves between {result.low} and {result.high}")
    spread = f"the recommendation {where} in 90% of {result.resamples} resamples of your reviewed images"
    if result.undecided:
        spread += f" ({result.undecided} resamples recommend nothing)"
    if not trusted:
        return False, (f"Not settled: {spread}, but resampling the same few images cannot show how new ones "
                       "would move it. Review more images first.")
    if result.stable:
        return True, f"Stable: {spread}; more verdicts are unlikely to change it."
    return False, (f"Still moving: {spread}, and only {result.within:.0%} land within {metrics.STABLE_WITHIN} "
                   f"of {result.threshold}. Review more images before you rely on it.")


def comparison_text(recommended: int, current: int, method: str, at_recommended: Mapping[str, float],
                    at_current: Mapping[str, float]) -> str:
    """Whether the recommendation is better than the threshold in use, and by how much (Markdown-safe)."""
    if recommended == current:
        return (f"Keep the current threshold {current}: no other threshold does better on these verdicts "
                f"({'F1' if method == metrics.BEST_F1 else 'precision target and recall'}).")
    gains = []
    for name, key in (("precision", "precision"), ("recall", "recall"), ("F1", "f1")):
        after, before = at_recommended[key], at_current[key]
        if after == after and before == before and abs(after - before) >= 0.0005:  # not NaN, a visible change
            gains.append(f"{name} {before:.1%} → {after:.1%}")
    return f"Moving from {current} to {recommended} changes " + (", ".join(gains) or "nothing visible") + "."


MODE_WORDS = {"prefilled": "pre-filled with the rule's picks", "blind": "blind (nothing pre-filled)",
              None: "from before the mode was recorded (pre-filled)"}


def modes_text(modes: Mapping[str | None, int]) -> str:
    """How the reviewed images were judged, and why it matters (Markdown-safe: numbers and fixed words)."""
    parts = [f"{n} {MODE_WORDS.get(mode, str(mode))}" for mode, n in sorted(
        modes.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))]
    return ("Reviews: " + "; ".join(parts) + ". A pre-filled review starts from the rule's picks and leans "
            "toward them, so it favours the threshold that made them; blind reviews do not. Review blind on "
            "the Review page (sidebar) and use only those here for an unbiased curve.")


CHART_HEIGHT = 420
# Headroom above 100%: a line at exactly 100% is drawn on the top gridline, inside the plot, never cut by its edge.
Y_TOP = 1.04
COUNT_WORDS = {  # the confusion counts in plain words (the curve table and the hover readout)
    "tp": "accepted and picked", "fp": "rejected but picked", "fn": "accepted but not picked",
    "tn": "rejected and not picked",
}


def curve_chart(frame: pd.DataFrame, current: float, recommended: int | None) -> alt.LayerChart:
    """Precision, recall and F1 against the threshold; the current threshold is a solid rule,
    the recommended one a dashed rule; hovering shows every number at the threshold under the pointer."""
    wide = frame.rename(columns={"f1": "F1", **COUNT_WORDS})
    long = wide.melt(id_vars=["threshold"], value_vars=["precision", "recall", "F1"], var_name="metric",
                     value_name="value")
    x = alt.X("threshold:Q", title="threshold", scale=alt.Scale(domain=[0, 100]))
    lines = (
        alt.Chart(long)
        .mark_line(interpolate="step-after", point=False, clip=True)
        .encode(
            x=x,
            y=alt.Y("value:Q", title=None, scale=alt.Scale(domain=[0, Y_TOP], nice=False),
                    axis=alt.Axis(format="%", values=[0, 0.2, 0.4, 0.6, 0.8, 1.0])),
            color=alt.Color(
                "metric:N",
                scale=alt.Scale(domain=list(METRIC_COLORS), range=list(METRIC_COLORS.values())),
                legend=alt.Legend(title=None, orient="bottom"),
            ),
        )
    )
    hover = alt.selection_point(name="hover", nearest=True, on="pointerover", fields=["threshold"], empty=False,
                                clear="pointerout")
    readout = [alt.Tooltip("threshold:Q")] + [alt.Tooltip(f"{m}:Q", format=".1%") for m in METRIC_COLORS] + [
        alt.Tooltip(f"{w}:Q") for w in COUNT_WORDS.values()]
    pointer = (
        alt.Chart(wide)
        .mark_rule(color="#888", size=1)
        .encode(x=x, opacity=alt.condition(hover, alt.value(0.8), alt.value(0)), tooltip=readout)
        .add_params(hover)
    )
    marks = [{"threshold": float(current), "marker": "current threshold"}]
    if recommended is not None and recommended != int(round(current)):
        marks.append({"threshold": float(recommended), "marker": "recommended"})
    rules = (
        alt.Chart(pd.DataFrame(marks))
        .mark_rule(size=2, color="#222")
        .encode(
            x="threshold:Q",
            strokeDash=alt.StrokeDash(
                "marker:N",
                scale=alt.Scale(domain=[m["marker"] for m in marks], range=[[1, 0], [6, 3]][: len(marks)]),
                legend=alt.Legend(title=None, orient="bottom"),
            ),
            tooltip=["marker:N", "threshold:Q"],
        )
    )
    return (lines + rules + pointer).properties(height=CHART_HEIGHT)


def best_thresholds(stats: pd.DataFrame) -> dict[str, int]:
    """``{tag: its own best threshold}`` from a ``tag_stats`` table, tags without one left out."""
    return {t: int(b) for t, b in zip(stats["tag"], stats["best_threshold"], strict=True) if not pd.isna(b)}


def curve_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The numbers behind the curve, with readable column names."""
    return frame.rename(columns={**COUNT_WORDS, "f1": "F1", "selected": "tags picked"})


def default_text(stored_default: float | None) -> str:
    """The default threshold every page starts at, and where it comes from (Markdown-safe)."""
    if stored_default is None:
        return f"Default threshold: {DEFAULT_THRESHOLD:g} (built in; not changed on the Tune page)."
    return (f"Default threshold: {stored_default:g}, set on the Tune page for everyone using this database "
            f"(built in: {DEFAULT_THRESHOLD:g}).")


def apply_controls(value: int, stored_default: float | None, ask: Callable[[int], None],
                   apply: Callable[[int | None], None], cancel: Callable[[], None],
                   refusal: str | None = None) -> None:
    """"Make it the default" behind a confirmation: it changes every analyst's starting threshold.

    ``refusal``: why this identity may not (the button is then disabled)."""
    if refusal or st.session_state.get("tune_apply_pending") != value:
        st.button(f"Make {value} the default threshold…", key="tune_apply", type="primary", on_click=ask,
                  args=(value,), help="Asks first: the default is stored in the database, for everyone.",
                  disabled=bool(refusal))
        return
    now = DEFAULT_THRESHOLD if stored_default is None else stored_default
    st.warning(f"Make {value} the starting threshold on every page, for everyone using this database, now and "
               f"after a restart? It is {now:g} now. You can reset it below or see it on the Settings page.")
    c1, c2 = st.columns(2)
    c1.button(f"Yes, make {value} the default", key="tune_apply_yes", type="primary", on_click=apply, args=(value,))
    c2.button("Cancel", key="tune_apply_no", on_click=cancel)


def default_controls(stored_default: float | None, apply: Callable[[int | None], None],
                     refusal: str | None = None) -> None:
    """Where the default threshold stands, and a way back to the built-in one (disabled with a ``refusal``)."""
    st.caption(default_text(stored_default))
    if stored_default is not None:
        st.button(f"Reset the default to the built-in {DEFAULT_THRESHOLD:g}", key="tune_reset_default",
                  on_click=apply, args=(None,), disabled=bool(refusal))
