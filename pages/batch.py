"""Batch page: tag many images (and zips of images) at once; cached, stoppable, exportable.

The batch runs in a background thread (``tagging.batch.BatchJob``) held in the session
state, so reruns (moving a slider, even switching pages) never interrupt it; a fragment
polls it twice a second for the progress bar and the per-image status. "Stop" sets the
job's stop event: the images in progress finish, the rest are skipped, and everything
finished is kept (and already in the disk cache, so tagging again is free for them).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tagging.auth import RUN_BATCH, SAVE
from tagging.backends import EMBEDDED, IMAGGA, IMAGGA_LANGUAGES, IMAGGA_MODES, LABELS, MODE_UPLOAD, TagRequest
from tagging.batch import (
    CACHED,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CONCURRENCY,
    FAILED,
    MAX_CONCURRENCY,
    OK,
    SKIPPED,
    THUMBNAILS_KEPT,
    BatchJob,
    ClusterJob,
    PerThreadImagga,
    WorkSpec,
    export_csv,
    export_json,
    results_frame,
    save_batch,
    shared_target,
    tag_frequency,
)
from tagging.errors import StoreError, TaggingError
from tagging.images import format_size
from tagging.review import batch_label
from ui import auth, batch_analysis, inputs, persist, resources, state
from ui.batch import (
    MAX_FILE_BYTES,
    MAX_FILE_MB,
    MAX_SESSION_BYTES,
    adopt_shelved_batch,
    batch_id,
    collect_uploads,
    forget_last_batch,
    frequency_spec,
    keep_job,
    memory_note,
    stop_job,
)
from ui.library import data_url
from ui.page import analyst, note_export, start_page
from ui.text import count, literal

POLL_SECONDS = 0.5
WAITING = "waiting"
# Plain words: emoji render as empty boxes where the browser has no emoji font.
STATUS_LABELS = {OK: "tagged", CACHED: "from cache", FAILED: "failed", SKIPPED: "skipped", WAITING: "waiting…"}


def _fail(message: str) -> None:
    st.error(literal(message))
    st.stop()


def _start(
    items: list, backend_name: str, request: TagRequest, backend_key: str, concurrency: int, files: list
) -> BatchJob:
    """Build the backend, start the job in its thread and remember it in the session."""
    store.start_batch(backend_name, len(items))  # PermissionDeniedError for a viewer
    meter = auth.meter(config) if backend_name == IMAGGA else None  # each Imagga call charged to this identity
    if config.scheduler_address:  # the same job interface, run on the Dask cluster's workers
        spec = WorkSpec(
            backend=backend_name, request=request, backend_key=backend_key,
            cache_target=shared_target(config.db_target), cache_password=config.db_password,
            concurrency=concurrency, imagga_url=config.imagga_url,
            credentials=config.imagga if backend_name == IMAGGA else None, max_bytes=config.max_upload_bytes,
            max_pixels=config.max_pixels, meter=meter,
        )
        job: BatchJob = ClusterJob(items, spec, resources.dask_client(config.scheduler_address)).start()
    elif backend_name == IMAGGA:
        # one session per worker thread, with the same retry settings as the shared client
        factory = PerThreadImagga(config.imagga, config.imagga_url, meter, **resources.imagga_retry_options())
        job = _local_job(items, resources.imagga_backend(config), request, backend_key, concurrency, factory)
    else:
        job = _local_job(items, resources.embedded_backend(), request, backend_key, concurrency, None)
    meta = {"backend": backend_name, "language": request.language, "request": request,
            "cluster": bool(config.scheduler_address), "batch": batch_label(len(items), suffix=analyst(config)),
            "id": batch_id(files, backend_key, request.cache_key())}
    keep_job(job, meta)  # on the server's shelf of recent batches: a reload finds it, running or finished
    persist.publish({"batch": meta["id"]})
    return job


def _local_job(items: list, backend, request: TagRequest, backend_key: str, concurrency: int, factory) -> BatchJob:
    return BatchJob(
        items, backend, request,
        backend_key=backend_key, cache=resources.result_cache(config.db_target),
        concurrency=concurrency, chunk_size=DEFAULT_CHUNK_SIZE, backend_factory=factory,
        max_bytes=config.max_upload_bytes, max_pixels=config.max_pixels,
    ).start()


def _status_frame(job: BatchJob) -> pd.DataFrame:
    finished = {r.index: r for r in job.snapshot()}
    rows = []
    for index, item in enumerate(job.items):
        result = finished.get(index)
        status = result.status if result else WAITING
        rows.append({"image": item.name, "status": STATUS_LABELS[status], "note": result.reason if result else ""})
    return pd.DataFrame(rows, columns=["image", "status", "note"])


@st.fragment(run_every=POLL_SECONDS)
def _progress() -> None:
    """Progress bar, Stop button and per-image status of the running job (polled)."""
    job: BatchJob | None = st.session_state.get("batch_job")
    if job is None:
        return
    if job.done:
        st.rerun(scope="app")  # show the results
    finished = job.snapshot()
    failed = sum(1 for r in finished if r.status == FAILED)
    cached = sum(1 for r in finished if r.status == CACHED)
    text = f"{len(finished)} of {count(job.total, 'image')} · {cached} from the cache · {failed} failed"
    if job.stopping:
        text += " · stopping after the images in progress…"
    st.progress(len(finished) / max(job.total, 1), text=text)
    st.button("Stop", key="batch_stop", on_click=stop_job, disabled=job.stopping,
              help="Finish the images in progress and stop; everything finished is kept.")
    st.dataframe(_status_frame(job), hide_index=True, key="batch_status_table", height=260)


# --- page ------------------------------------------------------------------------------
config, store = start_page()

st.title("Tag a batch of images")
for problem in config.problems:
    st.warning(literal(problem))

restored = persist.restore("batch", {"batch": persist.content_key, "threshold": persist.int_between(0, 100),
                                      "floor": persist.int_between(0, 50)})
for param, key in (("threshold", "threshold"), ("floor", "min_tags")):
    if param in restored:
        st.session_state[key] = restored[param]
if "batch" in restored and not adopt_shelved_batch(restored["batch"]):
    st.warning("The batch this link refers to is no longer kept on the server (it keeps only the latest few); "
               "upload its files again to tag them: images tagged before come from the cache, free.")
job: BatchJob | None = st.session_state.get("batch_job")
busy = job is not None and not job.done
if job is not None:
    persist.publish({"batch": (st.session_state.get("batch_meta") or {}).get("id")})

# --- backend -------------------------------------------------------------------------------
backends = [IMAGGA, EMBEDDED] if config.imagga_configured else [EMBEDDED]
if st.session_state.get("batch_backend") not in backends:
    st.session_state["batch_backend"] = backends[0]
with st.sidebar:
    backend_name = st.radio(
        "Tagging backend", backends, format_func=LABELS.__getitem__, key="batch_backend",
        disabled=len(backends) == 1 or busy,
        help="Imagga is offered when IMAGGA_API_KEY and IMAGGA_API_SECRET are set.",
    )
    if backend_name == IMAGGA:
        language = st.selectbox("Tag language", IMAGGA_LANGUAGES, key="batch_language", disabled=busy)
        extra_languages = st.multiselect(
            "Also ask for", [lang for lang in IMAGGA_LANGUAGES if lang != language], key="batch_extra_languages",
            disabled=busy,
        )
        mode = st.selectbox(
            "Imagga request", list(IMAGGA_MODES), format_func=IMAGGA_MODES.__getitem__, key="batch_mode",
            disabled=busy,
        )
        downscale_to = st.number_input(
            "Downscale before upload (long side, px; 0 = off)",
            min_value=0, max_value=8192, value=0, step=256, key="batch_downscale", disabled=busy,
        )
        concurrency = st.number_input(
            "Requests in parallel", min_value=1, max_value=MAX_CONCURRENCY, value=DEFAULT_CONCURRENCY, step=1,
            key="batch_concurrency", disabled=busy,
            help="Never more Imagga requests in flight than this. Imagga's usage data gives the plan's "
                 "limit (concurrency.max; 3 on the basic plans); more only earns 429 answers.",
        )
        request = TagRequest(
            language=language, mode=mode, downscale_to=int(downscale_to) or None,
            extra_languages=tuple(extra_languages),
        )
    else:
        concurrency = 1
        request = TagRequest(language="en", mode=MODE_UPLOAD)  # exactly the Tag page's, so answers are shared
backend_key = resources.backend_id(backend_name, config)

# --- uploads -------------------------------------------------------------------------------
# Any type: a HEIC or a PDF gets the intake's own message instead of a silent red file chip.
files = st.file_uploader(
    f"Images, or zip archives of images (JPEG, PNG, WebP, GIF, BMP, TIFF); each file up to "
    f"{inputs.limit_text(MAX_FILE_BYTES)}, at most {format_size(MAX_SESSION_BYTES)} per batch",
    accept_multiple_files=True, key="batch_upload", disabled=busy, max_upload_size=MAX_FILE_MB,
)
inputs.uploader_note("batch_upload", f"Up to {inputs.limit_text(MAX_FILE_BYTES)} per file")
intake = collect_uploads(files)
for problem in intake.problems:
    st.error(literal(problem))
if intake.skipped:
    with st.expander(f"{len(intake.skipped)} files not read"):
        st.dataframe(
            pd.DataFrame([{"file": s.name, "reason": s.reason} for s in intake.skipped], columns=["file", "reason"]),
            hide_index=True, key="batch_skipped_table",
        )
if intake.items:
    st.caption(f"{count(len(intake.items), 'image')} ready ({format_size(intake.total_bytes)}) · {LABELS[backend_name]}"
               + (f" · {int(concurrency)} requests in parallel" if backend_name == IMAGGA else "")
               + (" · runs on the Dask cluster" if config.scheduler_address else ""))
elif not busy and job is None:
    st.info(f"Choose image files or zip archives to tag them all in one go. Only a file over "
            f"{inputs.limit_text(MAX_FILE_BYTES)} is stopped by the browser before it is sent (marked in red in "
            "the box above); every other file that cannot be used gets a message here.")
if files or job is not None:
    st.caption(memory_note(intake))

no_batch = auth.refused(RUN_BATCH)
if st.button(f"Tag {count(len(intake.items), 'image')}", key="batch_start", type="primary",
             disabled=busy or not intake.items or bool(no_batch)):
    try:
        _start(intake.items, backend_name, request, backend_key, int(concurrency), list(files or []))
    except TaggingError as exc:
        _fail(f"{LABELS[backend_name]}: {exc}")
    st.rerun()  # redraw everything as busy: the uploader, the sidebar and this button are disabled


# --- results of the last batch ------------------------------------------------------------------
def _last_batch(job: BatchJob, meta: dict) -> None:
    """The finished batch: what happened, the way on to the review, then the results (a fragment)."""
    report = job.report
    if job.error:
        st.error(literal(job.error))
    if report is not None and st.session_state.get("batch_recorded") != id(job):
        try:  # the batch run, with its paid calls, in the audit trail (once)
            store.record_batch(meta["backend"], job.total, report.calls_made if meta["backend"] == IMAGGA else 0,
                               "the Dask cluster" if meta.get("cluster") else "this server")
            st.session_state["batch_recorded"] = id(job)  # not the job: that would keep its uploads
        except StoreError as exc:
            st.warning(f"The batch could not be noted in the audit trail: {literal(exc)}")
    h1, h2 = st.columns([4, 1], vertical_alignment="bottom")
    h1.subheader(f"Last batch: {count(job.total, 'image')} · {LABELS[meta['backend']]}")
    h2.button("Forget the last batch", key="batch_forget", on_click=forget_last_batch,
              help="Drop these results and give back the memory their uploads hold (tagged images stay in the "
                   "cache).")
    notice = st.session_state.pop("batch_notice", None)
    if notice:
        st.success(notice, icon=":material/check_circle:")
    if meta.get("batch") and st.session_state["batch_saved"] == meta.get("batch"):
        r1, r2 = st.columns([3, 1], vertical_alignment="center")
        r1.markdown(f"Saved to the library as batch “{literal(meta['batch'])}”: the rule's picks wait for your review.")
        if r2.button("Review them now", key="batch_review", type="primary", icon=":material/rate_review:",
                     help="Open the Review page on this batch's images, to turn the rule's picks into your verdicts."):
            st.session_state["review_batch_request"] = meta["batch"]
            st.switch_page("pages/review.py")
    if report is not None:
        if report.aborted:
            st.warning(
                f"The batch ended early: {literal(report.aborted)} {count(report.count(SKIPPED), 'image')} not sent; "
                "tag again later to finish them (the finished ones come from the cache, free)."
            )
        elif report.stopped:
            st.info(
                f"Stopped. {count(report.count(OK) + report.count(CACHED), 'finished image')} kept; "
                f"{report.count(SKIPPED)} not tagged. Press “Tag” again to finish them: the finished "
                "ones come from the cache, free."
            )
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Tagged now", report.count(OK), help="Images sent to the backend in this batch.")
        m2.metric("From the cache", report.count(CACHED), help="Images answered without any call.")
        m3.metric("Failed", report.count(FAILED))
        m4.metric("Skipped", report.count(SKIPPED))
        st.caption(
            f"{LABELS[meta['backend']]} · {count(report.calls_made, 'call')} made · the cache saved "
            f"**{count(report.calls_saved, 'call')}** · {report.seconds:.1f} s "
            f"({report.images_per_second:.1f} images/s)"
            + (f" · at most {report.max_in_flight} requests in flight" if meta["backend"] == IMAGGA
               and not meta.get("cluster") else "")  # on a cluster each task sees only its own
            + (" · on the Dask cluster" if meta.get("cluster") else "")
        )


def _save(job: BatchJob, meta: dict, results: list, threshold: int, min_tags: int, overrides: dict,
          analysed: dict) -> None:
    """Save every tagged image to the library, with a progress bar; then show the outcome at the top."""
    bar = st.progress(0.0, text="Saving to the library…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Saving to the library: {done} of {count(total, 'image')}…")

    summary = save_batch(
        store, results, {item.known_sha256: item for item in job.items if item.known_sha256},
        backend=meta["backend"], language=meta["language"], threshold=float(threshold), min_tags=min_tags,
        overrides=overrides, max_bytes=config.max_upload_bytes, max_pixels=config.max_pixels,
        saved_by=analyst(config), batch=meta.get("batch"), progress=progress, analysis=analysed,
    )
    bar.empty()
    if summary.failed:
        st.error(f"{count(len(summary.failed), 'image')} could not be saved ({literal(summary.failed[0])}); "
                 "press Save again to retry.")
    outcome = (f"Saved {count(summary.saved, 'image')} to the library, awaiting your review "
               f"({summary.replaced} updated, {count(summary.accepted, 'tag')} picked by the rule"
               + (f"; {summary.kept} you had already reviewed were left as they were" if summary.kept else "")
               + ").")
    if summary.saved:
        st.session_state["batch_saved"] = meta.get("batch")
        st.session_state["batch_notice"] = outcome
        st.rerun(scope="app")  # "Review them now" is at the top of the page
    st.toast(outcome, icon=":material/check_circle:")


@st.fragment
def _results(job: BatchJob, meta: dict) -> None:
    """Threshold, floor, table, chart, downloads and save: a slider move reruns only this part."""
    # Always (not only when missing, as state.bind does): these widgets vanish while a batch runs, and
    # the browser then forgets their values; without set_value it would redraw them at 0 while the
    # server still holds the old value.
    st.session_state["batch_threshold"] = st.session_state["threshold"]
    st.session_state["batch_min_tags"] = st.session_state["min_tags"]
    c1, c2 = st.columns([3, 1])
    threshold = c1.slider(
        "Confidence threshold", 0, 100, key="batch_threshold", on_change=state.keep,
        args=("batch_threshold", "threshold"),
        help="Tags at or above this confidence are selected; moving it calls nothing.",
    )
    min_tags = int(c2.number_input(
        "Always keep the top", min_value=0, max_value=50, step=1, key="batch_min_tags",
        on_change=state.keep, args=("batch_min_tags", "min_tags"),
        help="This many of each image's best tags are selected even below the threshold (0 = none).",
    ))
    persist.publish({"threshold": threshold, "floor": min_tags})
    results = job.results()
    overrides = store.get_setting("tag_overrides", {}) or {}
    analysed = batch_analysis.summaries(job, meta, config.max_upload_bytes, config.max_pixels)
    frame = results_frame(results, threshold, min_tags, overrides, analysed)
    frame["status"] = frame["status"].map(STATUS_LABELS)
    frame[["top tag", "note"]] = frame[["top tag", "note"]].fillna("")  # a blank, not "None", for a failed image
    frame = batch_analysis.shown(frame)
    pictures = batch_analysis.thumbnails()
    frame.insert(0, "thumbnail", [data_url(pictures.get(k)) for k in frame["sha256"]])
    st.dataframe(
        frame, hide_index=True, key="batch_table", row_height=64 if pictures else None,
        column_order=[*(["thumbnail"] if pictures else []), "image", "status", "selected tags", "selected",
                      "suggested", "top tag", "top confidence", *batch_analysis.COLUMNS, "note"],
        column_config={"top confidence": st.column_config.NumberColumn(format="%.1f"),
                       "thumbnail": st.column_config.ImageColumn("thumbnail", width="small")},
    )
    if len(pictures) >= THUMBNAILS_KEPT and len(frame) > len(pictures):
        st.caption(f"Thumbnails for the first {count(len(pictures), 'image')} of the batch (memory stays bounded).")

    frequency = tag_frequency(results, threshold, min_tags, overrides)
    if frequency.empty:
        st.caption("No tag is selected on any image at this threshold.")
    else:
        st.subheader("How often each tag is selected")
        st.vega_lite_chart(frequency_spec(frequency), width="stretch", key="batch_chart")

    d1, d2, d3 = st.columns(3)
    d1.download_button(
        "Download CSV", export_csv(results, threshold, min_tags, overrides, analysed), file_name="batch-tags.csv",
        mime="text/csv", key="batch_download_csv", on_click=note_export,
        args=(store, config, "batch CSV", len(results), "batch_export_notice"),
    )
    d2.download_button(
        "Download JSON",
        export_json(results, threshold, min_tags, overrides, backend=meta["backend"], request=meta["request"],
                    analysis=analysed),
        file_name="batch-tags.json", mime="application/json", key="batch_download_json", on_click=note_export,
        args=(store, config, "batch JSON", len(results), "batch_export_notice"),
    )
    notice = st.session_state.pop("batch_export_notice", None)
    if notice:
        getattr(st, notice[0])(notice[1])  # Markdown-safe: database_problem's
    tagged = sum(1 for r in results if r.tagged)
    with d3:
        no_save = auth.refused(SAVE)
    if d3.button(f"Save {count(tagged, 'image')} to the library", key="batch_save",
                 disabled=not tagged or bool(no_save),
                 help="Stores every tagged image with the rule's picks, marked as not yet reviewed: they wait "
                      "for your review and are neither used for tuning nor sent to Imagga as feedback."):
        _save(job, meta, results, threshold, min_tags, overrides, analysed)
    images_n, items_n = store.counts()
    st.caption(f"Saved so far: {count(items_n, 'tag decision')} on {count(images_n, 'image')}.")


# No st.stop() on the way out: a run that stops keeps the last run's fragments (and the batch they refer to).
if busy:
    _progress()
elif job is not None:
    _meta = st.session_state.get("batch_meta") or {"backend": EMBEDDED, "language": "en", "request": None}
    _last_batch(job, _meta)
    _results(job, _meta)
