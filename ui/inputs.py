"""Where one image comes from on a page: a bundled sample or an upload (the Tag and Compare pages share these)."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from tagging.images import format_size
from tagging.samples import sample_bytes, sample_names
from ui.text import literal

DEFAULT_SAMPLE = "cat.jpg"
STREAMLIT_MB = 1_000_000
"""Bytes in one of the uploader's MB (``max_upload_size``): Streamlit's browser code counts decimal megabytes."""


def sample_picker(key: str) -> tuple[str, bytes]:
    """A sample photo chosen in a selectbox (the cat first): its name and bytes; a message and stop if none."""
    names = sample_names()
    if not names:
        st.error("No sample photos were found in the samples/ folder of this checkout.")
        st.stop()
    if st.session_state.get(key) not in names:  # a link may name a sample this checkout lacks
        st.session_state[key] = DEFAULT_SAMPLE if DEFAULT_SAMPLE in names else names[0]
    name = st.selectbox("Sample photo", names, key=key)
    return name, sample_bytes(name)


def server_cap_bytes() -> int:
    """The largest file Streamlit's uploader hands to the app at all (``server.maxUploadSize``), in bytes."""
    return int(st.get_option("server.maxUploadSize")) * STREAMLIT_MB


def limit_text(max_bytes: int) -> str:
    """A limit as the page states it, exact to the byte: ``25 MB (26,214,400 bytes)``."""
    return f"{format_size(max_bytes)} ({max_bytes:,} bytes)"


def uploader_note(key: str, text: str) -> None:
    """Replace the uploader's own "N MB per file" line (its cap, in decimal MB) with ``text`` (no user text)."""
    selector = f'.st-key-{key} [data-testid="stFileUploaderDropzoneInstructions"]'
    st.html(f"<style>{selector} > * {{display: none}} {selector}::after {{content: {json.dumps(text)}; "
            "font-size: 0.875rem; opacity: 0.7}</style>")


def image_upload(max_bytes: int, key: str, purpose: str, wait: bool = True) -> Any:
    """One uploaded file, or (``wait``) an explanation and ``st.stop()`` while there is none.

    Any file type and any size up to the server's cap reaches the app, so a HEIC, a PDF or a file
    over the app's limit gets the app's own message with the sizes instead of a silent red chip.
    The label, the line under the box and the app's check all state the same limit, to the byte.
    """
    cap = server_cap_bytes()
    limit = limit_text(min(max_bytes, cap))
    upload = st.file_uploader(
        f"Upload an image (JPEG, PNG, WebP, GIF, BMP, TIFF; up to {limit})", key=key,
        max_upload_size=int(st.get_option("server.maxUploadSize")),
    )
    uploader_note(key, f"Up to {limit} per file")
    if upload is None and wait:
        st.info(f"Choose an image file {literal(purpose)}, up to {limit}. A larger file gets a message here "
                f"with its size; only a file over {limit_text(cap)} is stopped by the browser before it is sent.")
        st.stop()
    return upload
