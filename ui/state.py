"""Session state: initialised in one place, behind a guard."""

from __future__ import annotations

import uuid
from typing import Any

import streamlit as st

from tagging.rules import DEFAULT_MIN_TAGS, DEFAULT_THRESHOLD

# Values that outlive a widget (Streamlit drops a widget's state when its page is not shown).
DEFAULTS: dict[str, Any] = {
    "threshold": int(DEFAULT_THRESHOLD),
    "min_tags": DEFAULT_MIN_TAGS,
    "selection_context": None,  # (image, backend, language) the selection belongs to
    "selection_edited": False,  # True once the analyst edits the selection by hand
    "recent_auto": [],  # the rule's latest selections, to tell a stale echo from an edit
    "last_saved": None,
    "analysis_on": False,  # the Tag page's Analysis view, shown once asked for (issue 21)
    # Tune page
    "tune_notice": None,  # a message to show once after a callback (applied threshold, override)
    "tune_apply_pending": None,  # the threshold "make it the default" waits to have confirmed
    # Library page
    "lib_confirm": None,  # image key waiting for the delete confirmation
    "lib_notice": None,  # a message to show once after a callback
    "lib_signature": None,  # (query, mode, children, page size) the page number belongs to
    # Compare page (replace, never mutate, these values: a default object is shared by every session)
    "compare_costs": {},  # (backend key, image key, request key) -> "call" or "cache": what an answer cost
    "compare_generation": 0,  # bumped after each run over a set, so the cache is read again
    "compare_last_run": None,  # what the last run over a set cost, per side
    # Review page
    "review_session": None,  # the session's tagging.review.ReviewSession (its cursor, history, undo stack)
    "review_signature": None,  # (database, rule, filters, order, union) the session was last set up for
    "review_shown": -1,  # the card counter of the card on screen (its accepted-tags box is review_selection_<n>)
    "review_notice": None,  # a message to show once after a step
    "review_batch_request": None,  # a batch id the Batch page asks the queue to show ("Review them now")
    # Batch page
    "batch_saved": None,  # the batch id of the last "Save to the library" (offers "Review them now")
    # Who saves verdicts: a name set on the Settings page (else TAGGING_ANALYST, else the session id below)
    "analyst_name": "",
}


def init(default_threshold: float | None = None) -> None:
    """Create the session's state once; ``default_threshold`` comes from stored settings. Called once a run
    (``ui.page.start_page``), it also counts the runs, which ``bind`` needs."""
    st.session_state["_run_count"] = st.session_state.get("_run_count", 0) + 1
    if st.session_state.get("_initialised"):
        return
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    st.session_state.setdefault("analyst_session", f"session-{uuid.uuid4().hex[:8]}")  # one per browser session
    if default_threshold is not None:
        st.session_state["threshold"] = int(round(default_threshold))
    st.session_state["_initialised"] = True


def bind(widget_key: str, state_key: str) -> None:
    """Give a widget its value from the persistent key before it is drawn.

    Only a value set through the Session State API is sent to the browser, and the browser then shows it even
    over keys pressed since the run started (five quick ArrowRight presses on the Tag page's slider ended at 3
    when a rerun landed between them). So the value is written only when the browser may not have it: the
    widget's state is missing or differs from ``state_key`` (changed elsewhere: another page, Tune's "make it
    the default"), or the widget was not drawn in the previous run of its page or fragment. That last case is a
    run that ended in ``st.stop()`` before the widget (the Tag page waiting for an upload): the server keeps the
    widget's state, while the browser forgets it and would redraw the widget at its default (0). The widget's
    ``on_change`` (``keep``) has already copied a new value to ``state_key`` when this runs, so an edit is never
    undone.
    """
    value = st.session_state[state_key]
    run = st.session_state.get("_run_count", 0)
    drawn: dict[str, int] = st.session_state.setdefault("_bound_in_run", {})
    previous = drawn.get(widget_key)
    drawn[widget_key] = run
    # ``run`` counts full runs only; a fragment's rerun (the Tag page's editor) draws again in the same count.
    drawn_last_run = previous is not None and run - previous <= 1
    if drawn_last_run and widget_key in st.session_state and st.session_state[widget_key] == value:
        return
    st.session_state[widget_key] = value


def keep(widget_key: str, state_key: str) -> None:
    """on_change callback body: copy a widget's value to its persistent key."""
    st.session_state[state_key] = st.session_state[widget_key]
