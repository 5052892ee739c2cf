"""Streamlit helpers of the Library page: its session defaults and the results table."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import datetime

import pandas as pd

from tagging.backends import LABELS
from tagging.store import LibraryEntry


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
            "thumbnail": [data_url(thumbnails.get(e.image_key)) for e in entries],
            "file": [e.filename for e in entries],
            "tags": [", ".join(e.tags) for e in entries],
            "backend": [LABELS.get(e.backend, e.backend) for e in entries],
            "language": [e.language for e in entries],
            "verdicts": [e.provenance for e in entries],
            "saved": [when(e.saved_at) for e in entries],
            "saved by": [e.saved_by or "" for e in entries],
        }
    )


def entry_label(entry: LibraryEntry) -> str:
    """How an entry is named in pickers: file, backend, language, date."""
    return f"{entry.filename} · {LABELS.get(entry.backend, entry.backend)} · {entry.language} · {when(entry.saved_at)}"
