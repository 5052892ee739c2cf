"""The Library's analysis columns and filters (face count, dominant colour, text found): small functions the
Library page calls, kept apart from its search and paging."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from tagging.analysis import Summary
from tagging.store import LibraryEntry, Store

ANY = "any"
PRESENCE = {ANY: "Any", "yes": "With", "no": "Without"}
COLUMNS = ("faces", "dominant colour", "colour family", "text found")


def summaries(store: Store, entries: Sequence[LibraryEntry]) -> dict[tuple[str, str], Summary]:
    """The stored analysis of the entries' images (read once per run)."""
    return store.analysis_summaries([e.image_key for e in entries])


@st.cache_data(max_entries=16, show_spinner=False)
def colour_names(_store: Store, url: str, version: int) -> list[str]:
    """The colour filter's names, read again only when the data version moves (a changed summary moves it)."""
    return _store.colour_names()


def filters(store: Store, version: int) -> dict[str, Any]:
    """The colour and faces/text filter widgets; their values as ``TagSearch``'s colour, faces and text."""
    options = [ANY, *colour_names(store, store.url, version)]
    f1, f2, f3 = st.columns(3)
    colour = f1.selectbox("Dominant colour", options, format_func=lambda c: "Any" if c == ANY else c,
                          key="lib_colour", help="A palette colour or its family (red, blue ...), from the analysis "
                                                 "kept when the image was analysed on the Tag page or in a batch.")
    faces = f2.radio("Faces", list(PRESENCE), format_func=PRESENCE.__getitem__, key="lib_faces", horizontal=True)
    text = f3.radio("Text", list(PRESENCE), format_func=PRESENCE.__getitem__, key="lib_text", horizontal=True)
    return {"colour": None if colour == ANY else colour,
            "faces": None if faces == ANY else faces == "yes", "text": None if text == ANY else text == "yes"}


def columns(entries: Sequence[LibraryEntry], found: Mapping[tuple[str, str], Summary]) -> pd.DataFrame:
    """The analysis columns of a page of entries, in the entries' order: blank cells where an image was not
    analysed (never "None" on the page)."""
    rows = [found.get((e.image_key, e.backend)) or Summary() for e in entries]
    return pd.DataFrame({
        "faces": [faces_cell(r.face_count) for r in rows],
        "dominant colour": [r.dominant_color or "" for r in rows],
        "colour family": [r.dominant_parent or "" for r in rows],
        "text found": [text_cell(r.text_found) for r in rows],
    })


def faces_cell(count: object) -> str:
    """A face count as a table cell: blank when not analysed (None or a missing value), never "None"."""
    return "" if count is None or pd.isna(count) else str(int(count))


def text_cell(found: object) -> str:
    """Whether text was found, as a table cell: "yes", "no", or blank when not analysed."""
    return "" if found is None or pd.isna(found) else ("yes" if found else "no")
