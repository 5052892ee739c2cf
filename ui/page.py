"""What every page does first: route, read settings, open the store, initialise state; and who the analyst is."""

from __future__ import annotations

import streamlit as st

from tagging.config import Settings
from tagging.errors import StoreError, StoreUnavailableError
from tagging.store import Store
from ui import resources, state
from ui.router import ensure_router
from ui.text import literal


def database_problem(config: Settings, exc: StoreError, doing: str = "use the feedback database") -> str:
    """An actionable message (Markdown-safe, no password) for a store error."""
    if isinstance(exc, StoreUnavailableError) and "://" in config.db_target:
        hint = ("Check that the PostgreSQL server is running and reachable, and that TAGGING_DB (and "
                "TAGGING_DB_PASSWORD) are right, then try again.")
    elif "://" in config.db_target:
        hint = "Try again in a moment."
    else:
        hint = "Set TAGGING_DB to a writable file path (or a PostgreSQL URL) and reload the page."
    return f"Could not {doing}: {literal(str(exc))} {hint}"


# Streamlit's multiselect keeps its chips on one line and scrolls them sideways (and caps the box's
# height), so with a few chips (fewer on a phone) some are out of sight: let them wrap, all shown.
PAGE_STYLE = ('<style>[data-testid="stMultiSelectTagsContainer"] > span[role="group"] {flex-wrap: wrap; '
              'row-gap: 4px} [data-testid="stMultiSelect"] div[role="group"] {max-height: none}</style>')


def start_page() -> tuple[Settings, Store]:
    """Settings and the store for this run; on a database error, an actionable message and ``st.stop()``."""
    ensure_router()
    st.html(PAGE_STYLE)
    config = resources.settings()
    try:
        store = resources.store(config.db_target)
        default_threshold = store.get_setting("default_threshold")
    except StoreError as exc:
        state.init()  # the session keeps its state (and gets an analyst id) even while the database is away
        st.error(database_problem(config, exc, "open the feedback database") + " Nothing in this session is lost.")
        st.stop()
    state.init(default_threshold)
    return config, store


def analyst(config: Settings) -> str:
    """Who is saving: the name set on the Settings page, else TAGGING_ANALYST, else this browser session's id."""
    name = " ".join(str(st.session_state.get("analyst_name") or "").split())
    return name or config.analyst or st.session_state["analyst_session"]
