"""Where one image comes from on a page: a bundled sample or an upload (the Tag and Compare pages share these)."""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from tagging.images import format_size
from tagging.samples import sample_bytes, sample_names
from ui.text import literal

DEFAULT_SAMPLE = "cat.jpg"


def sample_picker(key: str) -> tuple[str, bytes]:
    """A sample photo chosen in a selectbox (the cat first): its name and bytes; a message and stop if none."""
    names = sample_names()
    if not names:
        st.error("No sample photos were found in the samples/ folder of this checkout.")
        st.stop()
    first = names.index(DEFAULT_SAMPLE) if DEFAULT_SAMPLE in names else 0
    name = st.selectbox("Sample photo", names, index=first, key=key)
    return name, sample_bytes(name)


def upload_cap_mb(max_bytes: int) -> int:
    """The uploader's own cap in whole MB: the app's limit, never above the server's."""
    return max(1, min(int(st.get_option("server.maxUploadSize")), math.ceil(max_bytes / (1024 * 1024))))


def image_upload(max_bytes: int, key: str, purpose: str) -> Any:
    """One uploaded file, or an explanation and ``st.stop()`` while there is none.

    Any file type is taken, so a HEIC or a PDF gets the intake's own message instead of a silent red
    file chip; the uploader's cap is the app's limit, so its tooltip and the label agree.
    """
    cap_mb = upload_cap_mb(max_bytes)
    limit = format_size(min(max_bytes, cap_mb * 1024 * 1024))  # the server's cap may be lower
    upload = st.file_uploader(
        f"Upload an image (JPEG, PNG, WebP, GIF, BMP, TIFF; up to {limit})", key=key, max_upload_size=cap_mb,
    )
    if upload is None:
        st.info(f"Choose an image file {literal(purpose)}, up to {limit}. A larger file is refused by the box "
                "above and marked in red there; any other file that cannot be read gets a message here.")
        st.stop()
    return upload
