"""The Batch page's analysis columns (faces, dominant colour, text found), computed once per finished batch."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from tagging.analysis import Summary
from tagging.backends import EMBEDDED
from tagging.batch import analyse_batch
from ui import resources
from ui.library_analysis import faces_cell, text_cell

COLUMNS = ["faces", "dominant colour", "text found"]


def summaries(job: Any, meta: dict[str, Any], max_bytes: int, max_pixels: int) -> dict[str, Summary]:
    """Image key -> summary for the job's tagged images; asks whether to read text (slower) first."""
    read_text = st.checkbox("Also look for text in the images (offline, about half a second per photo)",
                            key="batch_read_text")
    results = job.results()
    marker = (meta.get("batch"), job.total, sum(1 for r in results if r.tagged), read_text)
    kept = st.session_state.get("batch_analysis")
    if kept is not None and kept[0] == marker:
        return kept[1]
    items = {item.known_sha256: item for item in job.items if item.known_sha256}
    pictures: dict[str, bytes] = {}
    with st.spinner("Finding faces and colours" + (" and reading text…" if read_text else "…")):
        found = analyse_batch(results, items, faces_known=meta.get("backend") == EMBEDDED,
                              text_reader=resources.text_reader() if read_text else None,
                              max_bytes=max_bytes, max_pixels=max_pixels, thumbnails=pictures)
    st.session_state["batch_analysis"] = (marker, found, pictures)
    return found


def thumbnails() -> dict[str, bytes]:
    """Image key -> thumbnail JPEG of the batch ``summaries`` last read (the first images only)."""
    kept = st.session_state.get("batch_analysis")
    return kept[2] if kept is not None else {}


def shown(frame: pd.DataFrame) -> pd.DataFrame:
    """The analysis columns as the table shows them: blanks where an image was not analysed, never "None"."""
    frame = frame.copy()
    frame["faces"] = [faces_cell(v) for v in frame["faces"]]
    frame["dominant colour"] = frame["dominant colour"].fillna("")
    frame["text found"] = [text_cell(v) for v in frame["text found"]]
    return frame
