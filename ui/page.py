"""What every page does first: route, read settings, open the store, initialise state; and who the analyst is."""

from __future__ import annotations

import streamlit as st

from tagging.auth import LOCAL, GuardedStore
from tagging.config import Settings
from tagging.errors import StoreError, StoreUnavailableError
from ui import auth, resources, state
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


def start_page() -> tuple[Settings, GuardedStore]:
    """Settings and the store as this session's identity may use it; signs in first when the team requires it.

    On a database error: an actionable message and ``st.stop()``. Without sign-in on a server others can
    reach, every page warns.
    """
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
    try:
        identity = auth.identify(config, store)
    except StoreError as exc:
        st.error(database_problem(config, exc, "read the team's roles"))
        st.stop()
    address = auth.exposed_address()
    if identity.source == LOCAL and address is not None:
        st.warning(f"This server listens on {literal(address)} without sign-in: anyone who reaches it can delete "
                   "the library, change the defaults and spend the team's Imagga calls. Set up sign-in (README, "
                   "“A signed-in team”) or start it with `--server.address 127.0.0.1`.", icon=":material/shield:")
    guarded = st.session_state.get("_guarded_store")
    if guarded is None or guarded.identity != identity or not guarded.guards(store):
        # one per session while who it is and the store stay the same (the Review page keeps its session by it)
        guarded = st.session_state["_guarded_store"] = GuardedStore(store, identity)
    return config, guarded


def analyst(config: Settings) -> str:
    """Who is saving: the signed-in identity; without sign-in the name set on Settings (remembered by this
    browser), else TAGGING_ANALYST, else this browser session's id."""
    identity = st.session_state.get("identity")
    return identity.subject if identity is not None else auth.local_name(config)


def note_export(store: GuardedStore, config: Settings, what: str, rows: int, notice_key: str) -> None:
    """A download button's ``on_click``: the export in the audit trail. A database that is down leaves a warning
    under ``notice_key`` (``(kind, message)``) and the download goes ahead.

    A function of this module, not the page's: a callback defined in a page keeps that run's namespace (and
    what it holds, such as a batch's uploads) alive in the button's state.
    """
    try:
        store.record_export(what, rows)
    except StoreError as exc:
        st.session_state[notice_key] = ("warning", database_problem(config, exc, "note the download in the audit "
                                                                                 "trail"))
