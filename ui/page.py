"""What every page does first: route, read settings, open the store, initialise state."""

from __future__ import annotations

import sqlite3

import streamlit as st

from tagging.config import Settings
from tagging.store import Store
from ui import resources, state
from ui.router import ensure_router


def start_page() -> tuple[Settings, Store]:
    """Settings and the store for this run; on a database error, an actionable message and ``st.stop()``."""
    ensure_router()
    config = resources.settings()
    try:
        store = resources.store(str(config.db_path))
        default_threshold = store.get_setting("default_threshold")
    except (sqlite3.Error, OSError, RuntimeError) as exc:
        st.error(f"Cannot open the feedback database at {config.db_path}: {exc}. Set TAGGING_DB to a writable path.")
        st.stop()
    state.init(default_threshold)
    return config, store
