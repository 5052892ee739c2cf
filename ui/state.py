"""Session state: initialised in one place, behind a guard."""

from __future__ import annotations

from typing import Any

import streamlit as st

from tagging.rules import DEFAULT_MIN_TAGS, DEFAULT_THRESHOLD

# Values that outlive a widget (Streamlit drops a widget's state when its page is not shown).
DEFAULTS: dict[str, Any] = {
    "threshold": int(DEFAULT_THRESHOLD),
    "min_tags": DEFAULT_MIN_TAGS,
    "selection_context": None,  # (image, backend, language) the selection belongs to
    "selection_edited": False,  # True once the analyst edits the selection by hand
    "last_saved": None,
}


def init(default_threshold: float | None = None) -> None:
    """Create the session's state once; ``default_threshold`` comes from stored settings."""
    if st.session_state.get("_initialised"):
        return
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    if default_threshold is not None:
        st.session_state["threshold"] = int(round(default_threshold))
    st.session_state["_initialised"] = True


def bind(widget_key: str, state_key: str) -> None:
    """Give a widget its value from the persistent key before it is drawn."""
    if widget_key not in st.session_state:
        st.session_state[widget_key] = st.session_state[state_key]


def keep(widget_key: str, state_key: str) -> None:
    """on_change callback body: copy a widget's value to its persistent key."""
    st.session_state[state_key] = st.session_state[widget_key]
