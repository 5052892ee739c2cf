"""Streamlit helpers of the Library page: its session defaults and the results table."""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import BinaryIO

import pandas as pd
import streamlit as st

from tagging.backends import LABELS
from tagging.store import LibraryEntry, Store, TagSearch, cursor_of, library
from tagging.store.library import TagTree
from ui.text import literal

MODE_WORDS = {"prefilled": "pre-filled", "blind": "blind"}
GALLERY_COLUMNS = 4
THUMB_ROW_HEIGHT = 96  # px: a table row tall enough to see what the thumbnail shows


NO_PICTURE = "data:image/svg+xml;base64," + base64.b64encode(
    b'<svg xmlns="http://www.w3.org/2000/svg" width="96" height="72"><rect width="96" height="72" fill="#f0f2f6"/>'
    b'<text x="48" y="40" font-family="sans-serif" font-size="11" fill="#808495" text-anchor="middle">'
    b'no picture</text></svg>').decode("ascii")
"""What the table's image column shows for an image saved without a picture (a blank cell reads "None")."""


def data_url(jpeg: bytes | None) -> str | None:
    """A JPEG as a ``data:`` URL for an image column."""
    return None if not jpeg else "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def when(saved_at: str) -> str:
    """``2025-05-01 14:03 UTC`` from a stored ISO timestamp (left as is if it does not parse)."""
    try:
        return datetime.fromisoformat(saved_at).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return saved_at


def results_frame(entries: Sequence[LibraryEntry], thumbnails: Mapping[str, bytes]) -> pd.DataFrame:
    """One row per entry: thumbnail, file, accepted tags, backend, language, date."""
    return pd.DataFrame(
        {
            "thumbnail": [data_url(thumbnails.get(e.image_key)) or NO_PICTURE for e in entries],
            "file": [e.filename for e in entries],
            "tags": [", ".join(e.tags) for e in entries],
            "backend": [LABELS.get(e.backend, e.backend) for e in entries],
            "language": [e.language for e in entries],
            "verdicts": [e.provenance for e in entries],
            "review": [MODE_WORDS.get(e.review_mode or "", "") for e in entries],
            "missing tags": [", ".join(e.missing_tags) for e in entries],
            "saved": [when(e.saved_at) for e in entries],
            "saved by": [e.saved_by or "" for e in entries],
        }
    )


def entry_label(entry: LibraryEntry) -> str:
    """How an entry is named in pickers: file, backend, language, date."""
    return f"{entry.filename} · {LABELS.get(entry.backend, entry.backend)} · {entry.language} · {when(entry.saved_at)}"


# --- reads, cached per data version (the store's change counter), never the whole library ---------
@st.cache_data(max_entries=16, show_spinner=False)
def tags(_store: Store, url: str, version: int, provenance: str | None) -> list[tuple[str, int]]:
    """``Store.library_tags``: (tag, images), most images first."""
    return _store.library_tags(provenance)


@st.cache_data(max_entries=16, show_spinner=False)
def parent_links(_store: Store, url: str, version: int) -> list[tuple[str, str, int]]:
    """``Store.tag_parents``."""
    return _store.tag_parents()


@st.cache_data(max_entries=64, show_spinner=False)
def size(_store: Store, url: str, version: int, search: TagSearch) -> tuple[int, int]:
    """``Store.library_size``: (records, images) matching."""
    return _store.library_size(search)


@st.cache_data(max_entries=8, show_spinner="Counting the images in each subtree…")
def subtree_images(_store: Store, url: str, version: int, subtrees: dict[str, list[str]],
                   provenance: str | None) -> dict[str, int]:
    """``Store.subtree_images`` of a tree's ``subtrees()``."""
    return _store.subtree_images(subtrees, provenance)


def page(store: Store, search: TagSearch, number: int, size: int, signature: object) -> list[LibraryEntry]:
    """Page ``number`` of the search, by keyset from the page shown before where it can be.

    The next page starts after the last row shown, the previous one ends before the first and a
    rerun keeps its first row, so saves meanwhile never repeat or skip a row; a jump reads by offset.
    """
    anchor = st.session_state.get("lib_anchor")
    items: list[LibraryEntry] = []
    if anchor is not None and anchor["signature"] == signature:
        if number == anchor["number"]:
            items = store.library_page(search, size, start=anchor["first"])
        elif number == anchor["number"] + 1:
            items = store.library_page(search, size, after=anchor["last"])
        elif number == anchor["number"] - 1:
            items = store.library_page(search, size, before=anchor["first"])
    if not items:
        items = store.library_page(search, size, offset=(number - 1) * size)
    st.session_state["lib_anchor"] = (
        {"signature": signature, "number": number, "first": cursor_of(items[0]), "last": cursor_of(items[-1])}
        if items else None
    )
    return items


def export(store: Store, search: TagSearch, kind: str) -> Callable[[], BinaryIO]:
    """The download's data, built only when the button is pressed: the matching entries streamed in chunks
    into a temporary file (memory holds one chunk while it is written)."""

    def build() -> BinaryIO:
        target = tempfile.TemporaryFile()
        chunks = store.iter_library(search)
        def analysis_of(chunk: Sequence[LibraryEntry]) -> dict:
            return store.analysis_summaries([e.image_key for e in chunk])

        stream = library.stream_csv if kind == "csv" else library.stream_json
        library.write_export(stream(chunks, analysis_of), target)
        target.seek(0)
        return target

    return build


def tree_frame(tree: TagTree) -> pd.DataFrame:
    """The tag tree drawn as a tree: each tag indented under its parent (depth first), with its counts."""
    rows = []
    for node in sorted(tree.nodes.values(), key=lambda n: n.path.split("/")):
        indent = "\u2003" * 2 * node.depth + ("└ " if node.depth else "")
        rows.append((indent + node.tag, node.images, node.images_in_subtree, node.path))
    frame = pd.DataFrame(rows, columns=["tag", "images", "images in subtree", "path"])
    frame["images in subtree"] = frame["images in subtree"].astype("Int64")  # blank until counted, never "None"
    return frame


@st.dialog("Image", width="large")
def enlarge(store: Store, entry: LibraryEntry) -> None:
    """The image as large as the store keeps it (its preview, else its thumbnail)."""
    picture = store.preview(entry.image_key)
    if picture is None:
        st.info("No picture of this image is stored (it was saved without one).")
    else:
        st.image(data_url(picture), width="stretch")
    st.caption(literal(entry_label(entry)))
    st.text("Tags: " + (", ".join(entry.tags) or "none accepted"))
    if entry.missing_tags:
        st.text("Missing tags noted: " + ", ".join(entry.missing_tags))


def gallery(entries: Sequence[LibraryEntry], thumbnails: Mapping[str, bytes], store: Store,
            ask_delete: Callable[[str], None], may_delete: bool = True) -> None:
    """The page's entries as large tiles, each with its tags and its own Enlarge and Delete."""
    for start in range(0, len(entries), GALLERY_COLUMNS):
        for offset, column in enumerate(st.columns(GALLERY_COLUMNS)):
            if start + offset >= len(entries):
                break
            entry = entries[start + offset]
            with column.container(border=True):
                thumb = thumbnails.get(entry.image_key)
                if thumb:  # as a data URL: bytes the browser cannot show become a broken image, not an error
                    st.image(data_url(thumb), width="stretch")
                st.caption(literal(entry.filename))
                st.text(", ".join(entry.tags) or "no tag accepted")
                b1, b2 = st.columns(2)
                if b1.button("Enlarge", key=f"lib_enlarge_{start + offset}", icon=":material/zoom_in:"):
                    enlarge(store, entry)
                b2.button("Delete…", key=f"lib_gallery_delete_{start + offset}", on_click=ask_delete,
                          args=(entry.image_key,), disabled=not may_delete)
