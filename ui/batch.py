"""Streamlit helpers of the Batch page: upload intake (zips expanded) and the tag chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from tagging.batch import ArchiveError, BatchItem, Skipped, extract_images, is_zip

MAX_BATCH_IMAGES = 500
CHART_TAGS = 30


@dataclass
class Intake:
    """What the uploads hold: images to tag, members not read, whole files refused."""

    items: list[BatchItem] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(len(item.read()) for item in self.items)


def _upload_key(files: Sequence[Any]) -> tuple[tuple[str, str, int], ...]:
    return tuple((str(getattr(f, "file_id", "")), f.name, int(getattr(f, "size", 0))) for f in files)


def collect_uploads(
    files: Sequence[Any] | None, max_images: int = MAX_BATCH_IMAGES, state_key: str = "_batch_intake"
) -> Intake:
    """Turn uploaded files (images and zip archives) into batch items, in upload order.

    Names from archives are shown as ``archive.zip › folder/photo.jpg``; at most
    ``max_images`` images are taken, the rest are listed as skipped. The result is kept
    in the session (under ``state_key``, one per page) for the same uploads, so reruns (a slider)
    neither unzip nor hash again.
    """
    files = list(files or [])
    key = _upload_key(files)
    held = st.session_state.get(state_key)
    if held is not None and held[0] == key:
        return held[1]
    with st.spinner("Reading the uploads…"):
        intake = _collect(files, max_images)
    st.session_state[state_key] = (key, intake)
    return intake


def _collect(files: Sequence[Any], max_images: int) -> Intake:
    intake = Intake()
    for upload in files:
        data = upload.getvalue()
        if not is_zip(data, upload.name):
            intake.items.append(BatchItem(upload.name, data))
            continue
        try:
            contents = extract_images(data, upload.name)
        except ArchiveError as exc:
            intake.problems.append(str(exc))
            continue
        prefix = f"{upload.name} › "
        intake.items.extend(BatchItem(prefix + name, body) for name, body in contents.images)
        intake.skipped.extend(Skipped(prefix + s.name, s.reason) for s in contents.skipped)
        if not contents.images:
            intake.problems.append(f"“{upload.name}” holds no images that can be read; see the files not read.")
    if len(intake.items) > max_images:
        extra = intake.items[max_images:]
        del intake.items[max_images:]
        intake.skipped.extend(
            Skipped(item.name, f"more than {max_images} images in one batch; tag it in another batch")
            for item in extra
        )
    return intake


def frequency_chart(frame: pd.DataFrame, top: int = CHART_TAGS) -> alt.Chart:
    """Horizontal bars: on how many images each tag is selected (the ``top`` most frequent)."""
    shown = frame.head(top)
    order = list(shown["tag"])
    return (
        alt.Chart(shown)
        .mark_bar(color="#e4572e")
        .encode(
            x=alt.X("images:Q", title="images where the tag is selected", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("tag:N", sort=order, title=None),
            tooltip=["tag", "images", alt.Tooltip("share:Q", format=".0%")],
        )
        .properties(height=max(120, 18 * len(shown)))
    )
