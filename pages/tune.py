"""Tune page: how well the auto-select rule matches the saved feedback, and which threshold to use."""

from __future__ import annotations

import contextlib
import math

import streamlit as st

from tagging import metrics
from tagging.auth import APPLY_DEFAULT, OVERRIDE
from tagging.backends import LABELS
from tagging.errors import PermissionDeniedError, StoreError
from tagging.rules import DEFAULT_THRESHOLD
from tagging.store import BLIND, SUMS_FLOOR
from ui import auth, state, tune
from ui.page import database_problem, start_page
from ui.text import count, literal

METHODS = {metrics.BEST_F1: "Best balance (F1: precision and recall together)",
           metrics.TARGET_PRECISION: "Lowest threshold reaching a target precision"}
ALL_REVIEWS, BLIND_ONLY = "all", BLIND
REVIEW_SOURCES = {ALL_REVIEWS: "Every review", BLIND_ONLY: "Blind reviews only"}


def _fail(message: str) -> None:
    """Show ``message`` (Markdown-safe: ``database_problem``'s) and stop the run."""
    st.error(message)
    st.stop()


def _pct(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.1%}"


def _ask_apply(value: int) -> None:
    st.session_state["tune_apply_pending"] = value


def _cancel_apply() -> None:
    st.session_state["tune_apply_pending"] = None


def _apply(value: int | None) -> None:
    """Make ``value`` every analyst's default threshold, now and after a restart; None: back to the built-in one."""
    st.session_state["tune_apply_pending"] = None
    try:
        store.set_setting("default_threshold", value)
    except StoreError as exc:
        st.session_state["tune_notice"] = ("error", database_problem(config, exc, "store the default threshold"))
        return
    except PermissionDeniedError as exc:
        st.session_state["tune_notice"] = ("error", literal(exc))
        return
    shown = int(DEFAULT_THRESHOLD) if value is None else value
    st.session_state["threshold"] = shown
    st.session_state.pop("tag_threshold", None)
    st.session_state["tune_notice"] = ("success", f"Every page now starts at threshold {shown} (saved"
                                       + (", the built-in default)." if value is None else ")."))


def _set_override(clear: bool) -> None:
    tag = st.session_state.get("tune_override_tag")
    if not tag:
        return
    value = None if clear else float(st.session_state["tune_override_value"])
    try:
        store.set_tag_override(tag, value)
    except StoreError as exc:
        st.session_state["tune_notice"] = ("error", database_problem(config, exc, "store the override"))
        return
    except PermissionDeniedError as exc:
        st.session_state["tune_notice"] = ("error", literal(exc))
        return
    name = literal(tag)  # a tag is shown as it is, never as Markdown
    text = f"Removed the override of “{name}”." if clear else f"“{name}” now uses threshold {value:g} on every page."
    st.session_state["tune_notice"] = ("success", text)


def _override_tag_changed() -> None:
    """Start the override slider at the chosen tag's override, else its own best threshold."""
    tag = st.session_state.get("tune_override_tag")
    best = best_thresholds.get(tag)
    start = overrides.get(tag, best if best is not None else st.session_state["threshold"])
    st.session_state["tune_override_value"] = int(round(start))


config, store = start_page()
try:
    version = tune.data_version(store)
    groups = tune.groups(store, store.url, version)  # reviewed verdicts only: the rule's would grade itself
    overrides = store.tag_overrides()
    awaiting = tune.awaiting(store, store.url, version)
    stored_default = store.get_setting("default_threshold")
except StoreError as exc:
    _fail(database_problem(config, exc, "read the feedback"))

st.title("Tune the threshold")
st.caption(
    "How well the auto-select rule agrees with your reviewed feedback (accepted = the tag belongs, "
    "rejected = it does not) at every threshold, and which threshold to use."
)
notice = st.session_state.pop("tune_notice", None)
if notice:
    getattr(st, notice[0])(notice[1])  # Markdown-safe when stored (a tag's name through literal)

if not groups:
    st.info("No reviewed feedback saved yet. Open the **Tag** page, tag a few photos and press **Save feedback**; "
            "the curves are computed from those verdicts."
            + (f" {count(awaiting, 'tagged image')} saved from batches "
               f"{'awaits review; it does' if awaiting == 1 else 'await review; they do'} not count until "
               "reviewed."
               if awaiting else ""))
    if awaiting:
        st.page_link("pages/review.py", label=f"Review them ({awaiting})", icon=":material/rate_review:")
    st.stop()

# --- what to evaluate --------------------------------------------------------------------
choices = {f"{g.backend}:{g.language}": g for g in groups}
if st.session_state.get("tune_group") not in choices:
    st.session_state["tune_group"] = next(iter(choices))
state.bind("tune_min_tags", "min_tags")
c1, c2 = st.columns([3, 1])
choice = c1.selectbox(
    "Backend and language",
    list(choices),
    format_func=lambda k: f"{LABELS.get(choices[k].backend, choices[k].backend)} · {choices[k].language} · "
    f"{count(choices[k].images, 'image')}",
    key="tune_group",
)
min_tags = int(c2.number_input(
    "Never fewer than (top tags)", min_value=0, max_value=50, step=1, key="tune_min_tags",
    on_change=state.keep, args=("tune_min_tags", "min_tags"),
    help="The rule's floor: never fewer than this many top tags (shared with the Tag page).",
))
group = choices[choice]
current = int(st.session_state["threshold"])

override_key = tuple(sorted(overrides.items()))
try:
    modes = tune.review_modes(store, store.url, version, group.backend, group.language)
except StoreError as exc:
    _fail(database_problem(config, exc, "read the feedback"))
st.caption(tune.modes_text(modes))
source = st.radio("Use", list(REVIEW_SOURCES), format_func=REVIEW_SOURCES.__getitem__, key="tune_source",
                  horizontal=True, disabled=not modes.get(BLIND),
                  help="Blind reviews started with nothing pre-filled, so the rule's picks could not sway them.")
reviewed = modes.get(BLIND, 0) if source == BLIND_ONLY else sum(modes.values())
slow = min_tags != SUMS_FLOOR and reviewed > metrics.EXACT_BOOTSTRAP_IMAGES
if slow:  # the sums kept at save time are for the default floor; any other reads every verdict
    st.info(f"Tune keeps running sums for a floor of {SUMS_FLOOR}, the default. At a floor of {min_tags} it reads "
            f"every verdict of these {count(reviewed, 'reviewed image')}, which takes longer the larger the "
            f"library (tens of seconds at a million images); set the floor back to {SUMS_FLOOR} for an "
            "instant answer.")
try:
    with st.spinner(f"Reading the verdicts of {count(reviewed, 'reviewed image')}…", show_time=True) if slow \
            else contextlib.nullcontext():
        data = tune.aggregated(store, store.url, version, group.backend, group.language, min_tags, override_key,
                               None if source == ALL_REVIEWS else BLIND)
    group_awaiting = tune.awaiting(store, store.url, version, group.backend, group.language)
except StoreError as exc:
    _fail(database_problem(config, exc, "read the feedback"))
if not data.images:
    st.info("No blind review of this tagger yet: review on the **Review** page with **Blind review** on.")
    st.stop()
if group_awaiting:
    st.caption(f"{count(group_awaiting, 'tagged image')} of this tagger and language "
               f"{'waits' if group_awaiting == 1 else 'wait'} for review: saved from a batch without review, "
               f"{'it is' if group_awaiting == 1 else 'they are'} left out of everything below.")
if awaiting:
    st.page_link("pages/review.py", label=f"Review the images that await review ({awaiting})",
                 icon=":material/rate_review:")
curve = data.curve()
stats = data.tag_stats(current)
evidence = data.evidence()

# --- recommendation ----------------------------------------------------------------------
m1, m2 = st.columns([2, 1])
method = m1.radio("Recommend", list(METHODS), format_func=METHODS.__getitem__, key="tune_method", horizontal=True)
target = m2.slider(
    "Target precision (%)", 50, 100, 90, step=1, key="tune_target",
    disabled=method != metrics.TARGET_PRECISION,
)
recommendation = metrics.recommend(curve, method, target / 100 if method == metrics.TARGET_PRECISION else None,
                                   current=current)

summary = (f"Based on **{count(evidence.images, 'image')}** and "
           f"**{count(evidence.verdicts, 'tag verdict')}** "
           f"({evidence.accepted} accepted, {evidence.rejected} rejected) from the "
           f"{LABELS.get(group.backend, group.backend)} in `{group.language}`.")
if evidence.trusted:
    st.success(summary)
else:
    st.warning(
        summary + " **Too few to trust:** " + "; ".join(evidence.problems) + ". Treat the recommendation "
        "as a hint and save feedback on more photos on the Tag page."
    )

now = metrics.at_threshold(curve, current)
k1, k2, k3, k4 = st.columns(4)
k1.metric("Recommended threshold" if recommendation.threshold != current else "Recommended: keep",
          "—" if recommendation.threshold is None else recommendation.threshold, help=recommendation.reason)
k2.metric("Precision there", _pct(recommendation.precision), help=f"At the current threshold: {_pct(now['precision'])}")
k3.metric("Recall there", _pct(recommendation.recall), help=f"At the current threshold: {_pct(now['recall'])}")
k4.metric("F1 there", _pct(recommendation.f1), help=f"At the current threshold: {_pct(now['f1'])}")
if recommendation.threshold is None:
    st.info(recommendation.reason)
else:
    with st.spinner("Resampling the reviewed images…"):
        moving = data.stability(method, target / 100 if method == metrics.TARGET_PRECISION else None,
                                current=current)
    settled, text = tune.stability_text(moving, evidence.trusted)
    if text:
        (st.success if settled else st.warning)(text, icon=":material/insights:")
    st.markdown(tune.comparison_text(recommendation.threshold, current, method,
                                     metrics.at_threshold(curve, recommendation.threshold), now))
    st.caption(
        f"Recommended: {recommendation.reason}. Current threshold {current}: precision {_pct(now['precision'])}, "
        f"recall {_pct(now['recall'])}, F1 {_pct(now['f1'])} (never fewer than the top "
        f"{count(min_tags, 'tag')})."
    )
    if recommendation.threshold != current:
        tune.apply_controls(recommendation.threshold, stored_default, _ask_apply, _apply, _cancel_apply,
                            refusal=auth.refused(APPLY_DEFAULT))

st.altair_chart(tune.curve_chart(curve, current, recommendation.threshold), width="stretch")
st.caption("Solid line: the current threshold; dashed: the recommended one. Point at the chart to read every "
           "number at a threshold. Precision is left out where the rule picks nothing, recall where nothing was "
           "accepted.")
tune.default_controls(stored_default, _apply, refusal=auth.refused(APPLY_DEFAULT, show=False))
st.subheader("The numbers behind the curve")
st.dataframe(
    tune.curve_table(curve), hide_index=True, height=280, width="stretch",
    column_config={name: st.column_config.NumberColumn(format="percent") for name in ("precision", "recall", "F1")},
)

# --- per tag -----------------------------------------------------------------------------
st.subheader("Per tag")
table = stats.assign(override=[overrides.get(t) for t in stats["tag"]])  # a blank cell: no override
st.dataframe(
    table, hide_index=True, width="stretch",
    column_config={
        "mean_confidence": st.column_config.NumberColumn("mean confidence", format="%.1f"),
        "best_threshold": st.column_config.NumberColumn(
            "own best threshold",
            help="The per-tag threshold with the best F1 on this tag's verdicts, the rest of the rule as it is now.",
        ),
        "best_f1": st.column_config.NumberColumn("F1 there", format="percent"),
        "override": st.column_config.NumberColumn("override", help="The per-tag threshold in use, if any."),
    },
)
best_thresholds = tune.best_thresholds(stats)
tag_names = sorted(stats["tag"])
if st.session_state.get("tune_override_tag") not in tag_names:
    st.session_state["tune_override_tag"] = tag_names[0]
    st.session_state.pop("tune_override_value", None)
if "tune_override_value" not in st.session_state:
    _override_tag_changed()
o1, o2, o3, o4 = st.columns([2, 3, 1, 1], vertical_alignment="bottom")
o1.selectbox("Tag", tag_names, key="tune_override_tag", on_change=_override_tag_changed)
o2.slider("Its own threshold", 0, 100, step=1, key="tune_override_value")
no_override = auth.refused(OVERRIDE, show=False)
o3.button("Set override", key="tune_override_set", on_click=_set_override, args=(False,),
          disabled=bool(no_override))
o4.button("Clear", key="tune_override_clear", on_click=_set_override, args=(True,),
          disabled=bool(no_override) or st.session_state["tune_override_tag"] not in overrides)
if no_override:
    st.caption(f":material/lock: {no_override}")
if overrides:
    st.caption("Overrides in use on every page: "
               + ", ".join(f"{literal(t)} → {v:g}" for t, v in sorted(overrides.items())))
