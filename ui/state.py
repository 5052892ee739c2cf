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
    """Create the session's state once; ``default_threshold`` comes from stored settings."""
    if st.session_state.get("_initialised"):
        return
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    st.session_state.setdefault("analyst_session", f"session-{uuid.uuid4().hex[:8]}")  # one per browser session
    if default_threshold is not None:
        st.session_state["threshold"] = int(round(default_threshold))
    st.session_state["_initialised"] = True


def bind(widget_key: str, state_key: str) -> None:
    """Give a widget its value from the persistent key before it is drawn, on every run.

    Always, not only when the widget key is missing: a run that ends in ``st.stop()`` before
    the widget (the Tag page waiting for an upload) keeps the widget's state on the server,
    while the browser forgets it and redraws the widget at its default (0). Only a value set
    through the Session State API is sent to the browser, so writing it each run keeps the two
    in step. The widget's ``on_change`` (``keep``) has already copied a new value to
    ``state_key`` when this runs, so an edit is never undone.
    """
    st.session_state[widget_key] = st.session_state[state_key]


def keep(widget_key: str, state_key: str) -> None:
    """on_change callback body: copy a widget's value to its persistent key."""
    st.session_state[state_key] = st.session_state[widget_key]
