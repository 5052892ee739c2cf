"""Streamlit helpers of the Batch page: upload intake (zips read lazily), memory bounds, the tag chart.

Memory: an upload is kept as it came (a zip stays compressed; its images are decompressed
one at a time when they are hashed or tagged). What the batch intake and job of a session
keep referenced counts against ``MAX_SESSION_BYTES`` for that session and against
``SERVER_BUDGET`` for all sessions of this process together. Every item's source refers to
the budget hold of its upload, so the bytes count exactly as long as something can still
read them; when a session ends, Streamlit drops its state and the holds are given back
(``_StopWhenForgotten`` also stops a batch that was still running).
"""

from __future__ import annotations

import copy
import hashlib
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from tagging.batch import (
    ArchiveError,
    BatchItem,
    BatchJob,
    BudgetExceededError,
    ByteBudget,
    HeldBytes,
    Hold,
    Skipped,
    is_zip,
    scan_archive,
)
from tagging.images import format_size
from ui import persist
from ui.charts import BAR_STEP, COLORS, SELECTED
from ui.persist import BATCHES

MAX_BATCH_IMAGES = 500
CHART_TAGS = 30
MAX_FILE_MB = 64
"""Largest single upload, in Streamlit's MB of 1,000,000 bytes, the Batch page's uploader takes
(= server.maxUploadSize in .streamlit/config.toml)."""
MAX_FILE_BYTES = MAX_FILE_MB * 1_000_000
MAX_SESSION_BYTES = 256 * 1024 * 1024
"""Uploads one session's batch may keep on the server at once (a zip counts compressed)."""
SERVER_BUDGET = ByteBudget(1024 * 1024 * 1024)
"""Uploads all sessions' batches together may keep at once in this server process."""

_HOLDS = "_batch_holds"  # session state: {upload file id: weakref to its budget Hold}
_INTAKE = "_batch_intake"  # session state: (upload key, Intake) of the last uploads read
_GUARD = "_batch_guard"  # session state: stops the running job when the session's state is dropped


@dataclass
class Intake:
    """What the uploads hold: images to tag, members not read, whole files refused."""

    items: list[BatchItem] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    image_bytes: int = 0  # the images' size (a zip member's as declared), never read to count it

    @property
    def total_bytes(self) -> int:
        """The images' size, for the page (not what the server holds: see ``session_bytes``)."""
        return self.image_bytes


def _upload_key(files: Sequence[Any]) -> tuple[tuple[str, str, int], ...]:
    return tuple((str(getattr(f, "file_id", "")), f.name, int(getattr(f, "size", 0))) for f in files)


def _live_holds() -> dict[str, Hold]:
    """The session's holds still referred to by an intake or a job (dead references dropped)."""
    refs: dict[str, weakref.ref[Hold]] = st.session_state.setdefault(_HOLDS, {})
    live = {key: hold for key, ref in list(refs.items()) if (hold := ref()) is not None and not hold.released}
    for key in set(refs) - set(live):
        del refs[key]
    return live


def session_bytes() -> int:
    """Uploaded bytes this session's batch intake and job keep on the server now."""
    return sum(hold.bytes for hold in _live_holds().values())


def collect_uploads(
    files: Sequence[Any] | None, max_images: int = MAX_BATCH_IMAGES, state_key: str = _INTAKE
) -> Intake:
    """Turn uploaded files (images and zip archives) into batch items, in upload order.

    Names from archives are shown as ``archive.zip › folder/photo.jpg``; at most
    ``max_images`` images are taken, the rest are listed as skipped. Uploads that would take
    this session over ``MAX_SESSION_BYTES`` or the server over ``SERVER_BUDGET`` are refused
    as a whole, with the reason in ``problems``. The result is kept in the session for the
    same uploads (under ``state_key``, one per page), so reruns (a slider) neither scan nor hash again.
    """
    files = list(files or [])
    key = _upload_key(files)
    held = st.session_state.get(state_key)
    if held is not None and held[0] == key:
        return held[1]
    st.session_state.pop(state_key, None)  # what only the old intake referred to is given back now
    with st.spinner("Reading the uploads…"):
        intake = _collect(files, max_images)
    st.session_state[state_key] = (key, intake)
    return intake


def _collect(files: Sequence[Any], max_images: int) -> Intake:
    known = _live_holds()
    keys = [_file_key(f) for f in files]
    sizes = [len(f.getvalue()) for f in files]
    last_batch = sum(hold.bytes for key, hold in known.items() if key not in keys)  # a finished job's uploads
    if files and sum(sizes) + last_batch > MAX_SESSION_BYTES:
        held = (f" The last batch's uploads ({format_size(last_batch)}) are still held so its results can be "
                "saved; “Forget the last batch” gives them back." if last_batch else "")
        return Intake(problems=[
            f"These uploads are {format_size(sum(sizes))}; a batch may keep at most "
            f"{format_size(MAX_SESSION_BYTES)} per session on the server.{held} Remove some files, or tag them "
            "in several batches."
        ])
    fresh = [i for i, key in enumerate(keys) if key not in known]
    try:
        new_holds = SERVER_BUDGET.reserve_all([sizes[i] for i in fresh], "these uploads")
    except BudgetExceededError as exc:
        return Intake(problems=[str(exc)])
    holds = dict(known)
    refs: dict[str, weakref.ref[Hold]] = st.session_state[_HOLDS]
    for i, hold in zip(fresh, new_holds, strict=True):
        holds[keys[i]] = hold
        refs[keys[i]] = weakref.ref(hold)

    intake = Intake()
    for upload, key in zip(files, keys, strict=True):
        data, hold = upload.getvalue(), holds[key]
        if not is_zip(data, upload.name):
            intake.items.append(BatchItem(upload.name, source=HeldBytes(data, upload.name, hold)))
            intake.image_bytes += len(data)
            continue
        try:
            index = scan_archive(data, upload.name, keep=hold)
        except ArchiveError as exc:
            intake.problems.append(str(exc))
            continue
        prefix = f"{upload.name} › "
        intake.items.extend(BatchItem(prefix + name, source=member) for name, member in index.members)
        intake.image_bytes += index.declared_bytes
        intake.skipped.extend(Skipped(prefix + s.name, s.reason) for s in index.skipped)
        if not index.members:
            intake.problems.append(_nothing_to_read(upload.name, index.entries, bool(index.skipped)))
    if len(intake.items) > max_images:
        extra = intake.items[max_images:]
        del intake.items[max_images:]
        intake.skipped.extend(
            Skipped(item.name, f"more than {max_images} images in one batch; tag it in another batch")
            for item in extra
        )
    return intake


def _nothing_to_read(name: str, entries: int, skipped: bool) -> str:
    if not entries:
        return f"“{name}” is empty: the zip archive holds no files at all."
    if skipped:
        return f"“{name}” holds no images that can be read; the list of files not read below says why."
    return f"“{name}” holds only folders, no images."


def _file_key(upload: Any) -> str:
    return str(getattr(upload, "file_id", "")) or f"{upload.name}:{getattr(upload, 'size', 0)}"


# Callbacks live here, not in the page: a widget keeps its callback (and so the page function's
# globals: that run's intake and job) until the widget is gone, which would keep their uploads held.
def stop_job() -> None:
    """Ask the session's running batch to stop after the images in progress; on_click of Stop."""
    job: BatchJob | None = st.session_state.get("batch_job")
    if job is not None:
        job.stop()


def forget_last_batch() -> None:
    """Drop the session's last batch (its results and the uploads it held); on_click of a button."""
    job: BatchJob | None = st.session_state.pop("batch_job", None)
    if job is not None:
        job.stop()
    meta = st.session_state.pop("batch_meta", None) or {}
    BATCHES.forget(meta.get("id"))
    persist.publish({"batch": None})
    st.session_state.pop(_GUARD, None)


class _StopWhenForgotten:
    """Stops a job when the session's state, which alone refers to this guard, is dropped."""

    def __init__(self, job: BatchJob) -> None:
        weakref.finalize(self, job.stop)


def keep_job(job: BatchJob, meta: dict | None = None) -> None:
    """Remember a started job in the session.

    With a ``meta`` holding its ``id`` it also goes on the server's shelf of recent batches, so a
    reload (or the link) finds it running or finished; it is stopped, and its uploads given back,
    when it leaves the shelf. Without one, it is stopped if the session goes away while it runs.
    """
    st.session_state["batch_job"] = job
    if meta is not None and meta.get("id"):
        st.session_state["batch_meta"] = meta
        BATCHES.put(meta["id"], (job, meta), size=sum(h.bytes for h in _live_holds().values()), on_drop=job.stop)
        st.session_state.pop(_GUARD, None)
    else:
        st.session_state[_GUARD] = _StopWhenForgotten(job)


def batch_id(files: Sequence[Any], backend_key: str, request_key: str) -> str:
    """A batch's key: the SHA-256 of its uploads' contents, in order, and of how they are tagged."""
    digest = hashlib.sha256(f"{backend_key}\n{request_key}\n".encode())
    for upload in files:
        digest.update(hashlib.sha256(upload.getvalue()).digest())
    return digest.hexdigest()


def adopt_shelved_batch(wanted: str | None) -> bool:
    """Show the shelved batch ``wanted`` (from the URL) in this session, if the server still keeps it."""
    if wanted is None:
        return False
    current = st.session_state.get("batch_meta") or {}
    if current.get("id") == wanted and st.session_state.get("batch_job") is not None:
        return True
    shelved = BATCHES.get(wanted)
    if shelved is None:
        return False
    st.session_state["batch_job"], st.session_state["batch_meta"] = shelved
    return True


def memory_note(intake: Intake) -> str:
    """What the page says about the memory this session's batch holds (plain text, no Markdown)."""
    return (
        f"{format_size(session_bytes())} of uploads held on the server for this session (at most "
        f"{format_size(MAX_SESSION_BYTES)} per session; {format_size(SERVER_BUDGET.held)} of "
        f"{format_size(SERVER_BUDGET.capacity)} for all analysts together). Zip archives stay compressed and "
        f"their images are read one at a time. The server keeps the latest {BATCHES.max_entries} batches so that "
        "a reload or this page's link finds them; “Forget the last batch” gives one back at once."
    )


def frequency_chart(frame: pd.DataFrame, top: int = CHART_TAGS) -> alt.LayerChart:
    """Horizontal bars: on how many images each tag is selected (the ``top`` most frequent), every bar labelled."""
    shown = frame.head(top)
    base = alt.Chart(shown).encode(
        x=alt.X("images:Q", title="images where the tag is selected", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("tag:N", sort=list(shown["tag"]), title=None,
                axis=alt.Axis(labelOverlap=False, labelLimit=160, labelFontSize=12)),
        tooltip=["tag", "images", alt.Tooltip("share:Q", format=".0%")],
    )
    bars = base.mark_bar(color=COLORS[SELECTED], height={"band": 0.8})
    values = base.mark_text(align="left", baseline="middle", dx=4, fontSize=12, color="#222").encode(text="images:Q")
    # room on the right for the largest value, written at its bar's end
    padding = {"left": 5, "top": 5, "bottom": 5, "right": 28}
    return (bars + values).properties(height=alt.Step(BAR_STEP), padding=padding)


@lru_cache(maxsize=1)
def _frequency_template() -> dict[str, Any]:
    spec = frequency_chart(pd.DataFrame({"tag": ["a"], "images": [1], "share": [1.0]})).to_dict()
    spec.pop("datasets", None)
    return spec


def frequency_spec(frame: pd.DataFrame, top: int = CHART_TAGS) -> dict[str, Any]:
    """``frequency_chart`` as a Vega-Lite dict, its spec made once (Altair takes ~0.2 s a chart; a slider step)."""
    shown = frame.head(top)
    spec = copy.deepcopy(_frequency_template())
    spec["data"] = {"values": shown[["tag", "images", "share"]].to_dict("records")}
    for layer in spec["layer"]:
        layer["encoding"]["y"]["sort"] = list(shown["tag"])
    return spec
