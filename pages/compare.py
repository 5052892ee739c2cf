"""Compare page: two taggers side by side on one image or over a set, and against the analyst's own verdicts.

Every answer goes through the shared result cache: an answer the Tag, Batch or this page already
has costs nothing. Over a set, new calls are counted first, bounded, and made only on a button.
"""

from __future__ import annotations

import hashlib
import math

import pandas as pd
import streamlit as st

from tagging import compare
from tagging.auth import RUN_BATCH
from tagging.errors import StoreError, TaggingError
from ui import auth, inputs, resources
from ui import compare as ui
from ui.batch import MAX_BATCH_IMAGES, MAX_FILE_MB
from ui.page import database_problem, start_page
from ui.text import literal

ONE, SET = "One image", "A set of images"
SOURCE_SAMPLE, SOURCE_UPLOAD = "Sample photo", "Upload"
SET_UPLOAD, SET_BATCH, SET_LIBRARY = "Upload images", "The Batch page's last batch", "Library images"
DEFAULT_NEW_CALLS = 50
# Without a second tagger the two sides start at different thresholds, so the page shows a difference.
SECOND_SETTING_THRESHOLD = 40
SCOPE_LABELS = {
    compare.POOLED: "Every tagger's verdicts in the language",
    compare.OWN: "Each side's own backend only",
}


def _fail(message: str) -> None:
    """Show a Markdown-safe message (escape user text with ``literal``) and stop the run."""
    st.error(message)
    st.stop()


def _pct(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.0%}"


def _names(keys, images) -> pd.DataFrame:
    names = {i.key: i.name for i in images}
    return pd.DataFrame({"image": [names[k] for k in keys]}, columns=["image"])


config, store = start_page()
try:
    overrides = store.tag_overrides()
except StoreError as exc:
    _fail(database_problem(config, exc, "read the feedback database"))

st.title("Compare taggers")
for problem in config.problems:
    st.warning(literal(problem))
choices = compare.available_taggers(
    config, [(m.id, m.title) for m in resources.embedded_manifests() if not m.shipped]
)
if notice := ui.choices_notice(choices, config.imagga_configured):
    st.info(notice)

col_a, col_b = st.columns(2, border=True, gap="medium")  # each side's controls in its own column
with col_a:
    side_a = ui.side_controls("A", choices, 0, int(st.session_state["threshold"]))
with col_b:
    side_b = ui.side_controls(
        "B", choices, 1, int(st.session_state["threshold"]) if len(choices) > 1 else SECOND_SETTING_THRESHOLD
    )
sides = {"A": side_a, "B": side_b}

col_a.text("A: " + side_a.describe())
col_b.text("B: " + side_b.describe())
if (side_a.spec, side_a.threshold, side_a.min_tags) == (side_b.spec, side_b.threshold, side_b.min_tags):
    st.info("Both sides are the same tagger with the same settings: change side B's tagger, threshold or floor.")
if side_a.spec.language != side_b.spec.language:
    st.warning(f"The sides answer in different languages ({side_a.spec.language} and {side_b.spec.language}); "
               "tags are compared by name, so they can hardly agree.")
cache = resources.result_cache(config.db_target)

mode = st.radio("Compare on", [ONE, SET], horizontal=True, key="compare_mode")

# --- one image -------------------------------------------------------------------------------------------
if mode == ONE:
    source = st.radio("Image source", [SOURCE_SAMPLE, SOURCE_UPLOAD], horizontal=True, key="compare_source")
    try:
        if source == SOURCE_SAMPLE:
            filename, data = inputs.sample_picker("compare_sample")
        else:
            upload = inputs.image_upload(config.max_upload_bytes, "compare_upload", "to compare the two taggers on")
            data, filename = upload.getvalue(), upload.name
        image = resources.load_image_cached(
            hashlib.sha256(data).hexdigest(), filename, config.max_upload_bytes, config.max_pixels, data
        )
    except TaggingError as exc:
        _fail(literal(exc))

    with st.spinner("Tagging with both taggers…"):
        answers = {name: ui.tag_one(side, image, config, cache) for name, side in sides.items()}

    col_image, col_summary = st.columns([1, 2], gap="large")
    with col_image:
        st.image(resources.display_jpeg(image.sha256, image), width="stretch")
        st.text(f"{image.filename} · {image.width}×{image.height} {image.format}")
    with col_summary:
        for name, answer in answers.items():
            if answer.error:
                st.error(f"Tagger {name}: {literal(answer.error)}")
            elif name == "B" and side_b.spec == side_a.spec:
                st.text("Cost of B: none of its own (the same tagger and parameters as A, so A's answer).")
            else:
                st.text(f"Cost of {name}: {ui.cost_text(answer, sides[name].spec)}")
        if all(a.error is None for a in answers.values()):
            tags_a, tags_b = answers["A"].tags, answers["B"].tags
            selected = {name: sides[name].select(answers[name].tags, overrides) for name in sides}
            agree = compare.agreement(selected["A"], selected["B"], tags_a, tags_b)
            m1, m2, m3, m4 = st.columns(4)
            m1.metric("Agreement", _pct(agree.jaccard),
                      help="Jaccard index of the two auto-selected sets: tags both select, of the tags either "
                           "selects. Undefined (—) when neither selects anything.")
            m2.metric("Selected by both", len(agree.both))
            m3.metric("Only A", len(agree.only_a))
            m4.metric("Only B", len(agree.only_b))
            frame = compare.side_by_side(tags_a, tags_b, selected["A"], selected["B"])
            st.dataframe(
                frame[frame["where"] != compare.NEITHER], hide_index=True, key="compare_where_table",
                column_config={"confidence A": st.column_config.NumberColumn(format="%.1f"),
                               "confidence B": st.column_config.NumberColumn(format="%.1f")},
            )

    columns = st.columns(2)
    for column, (name, side) in zip(columns, sides.items(), strict=True):
        answer = answers[name]
        with column:
            st.subheader(f"Tagger {name}")
            if answer.error:
                st.text("No answer (see the message above).")
                continue
            chosen = side.select(answer.tags, overrides)
            st.text(f"{len(chosen)} of {len(answer.tags)} tags selected at ≥ {side.threshold:g} "
                    f"or the top {side.min_tags}")
            st.dataframe(ui.tags_frame(answer.tags, chosen), hide_index=True, height=320,
                         key=f"compare_{name.lower()}_tags")
    if all(a.error is None for a in answers.values()):
        frame = compare.side_by_side(answers["A"].tags, answers["B"].tags, selected["A"], selected["B"])
        st.subheader("Both taggers' confidences")
        st.altair_chart(ui.comparison_chart(frame, side_a, side_b), width="stretch", key="compare_chart")
        if len(frame) > ui.CHART_TAGS:
            st.caption(f"The {ui.CHART_TAGS} best of {len(frame)} tags; the tables have them all.")
    st.stop()

# --- a set of images ----------------------------------------------------------------------------------------
kind = st.radio("Images", [SET_UPLOAD, SET_BATCH, SET_LIBRARY], horizontal=True, key="compare_set_source")
if kind == SET_UPLOAD:
    files = st.file_uploader(
        f"Images, or zip archives of images (JPEG, PNG, WebP, GIF, BMP, TIFF); each file up to {MAX_FILE_MB} MB",
        accept_multiple_files=True, key="compare_set_upload", max_upload_size=MAX_FILE_MB,
    )
    found = ui.from_uploads(files or [])
elif kind == SET_BATCH:
    found = ui.from_batch_page()
    if found is None:
        st.info("No finished batch on the Batch page in this session: tag one there, or upload images here.")
        st.stop()
    if found.tagged_by is not None:
        spec = found.tagged_by
        st.text("The batch was tagged by: " + spec.describe())
        if spec.backend in {c.backend for c in choices} and spec not in (side_a.spec, side_b.spec):
            st.caption("Answers are reused only for the same tagger and parameters.")
            b1, b2 = st.columns(2)
            b1.button("Use the batch's tagger for side A", key="compare_adopt_a", on_click=ui.adopt,
                      args=("A", spec.backend, spec.request))
            b2.button("Use the batch's tagger for side B", key="compare_adopt_b", on_click=ui.adopt,
                      args=("B", spec.backend, spec.request))
else:
    try:
        library_tags = [t for t, _ in store.library_tags()]  # kept totals, most images first
    except StoreError as exc:
        _fail(database_problem(config, exc, "read the library"))
    wanted = st.multiselect(
        "Library images carrying any of these tags (none = every image)", library_tags, key="compare_library_tags",
    )
    try:
        found = ui.from_library(store, wanted)
    except StoreError as exc:
        _fail(database_problem(config, exc, "read the library"))
    st.caption("The library keeps a small thumbnail, not the original photo: its images are compared where the "
               "result cache already holds both answers, and the others are listed, not tagged again.")
images = found.images
if found.skipped:
    with st.expander(f"{len(found.skipped)} files not used"):
        st.dataframe(pd.DataFrame(found.skipped, columns=["file", "reason"]), hide_index=True,
                     key="compare_skipped_table")
if not images:
    st.info("No images to compare yet." if kind != SET_LIBRARY else "No library image matches.")
    st.stop()

# --- what it costs, counted before any call ----------------------------------------------------------------
try:
    answers = {name: ui.gathered(side, images, config, cache) for name, side in sides.items()}
except StoreError as exc:
    _fail(database_problem(config, exc, "read the result cache"))
limit = int(st.number_input(
    "At most this many new calls per side and run", min_value=1, max_value=MAX_BATCH_IMAGES,
    value=DEFAULT_NEW_CALLS, step=10, key="compare_max_calls",
    help="Calls beyond it wait for another run; answers already in the cache are always free.",
))
plans = {name: compare.plan_side(images, answers[name], side.spec, limit) for name, side in sides.items()}
if side_b.spec == side_a.spec:
    del plans["B"]  # the same tagger and parameters: B's answers are A's, called once
st.dataframe(ui.plan_frame(plans, sides), hide_index=True, key="compare_plan_table")
if "B" not in plans:
    st.caption("Side B is the same tagger with the same parameters as A: it shares A's answers and calls.")
new_calls = sum(p.new_calls for p in plans.values())
if new_calls:
    requests = sum(p.requests for p in plans.values())
    label = f"Make {ui.count(new_calls, 'new call')}"
    if requests:
        label += f" ({ui.count(requests, 'Imagga request')})"
    no_run = auth.refused(RUN_BATCH)
    if st.button(label, key="compare_run", type="primary", disabled=bool(no_run)):
        bar = st.progress(0.0, text="Starting…")

        def _progress(name: str, done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"Tagger {name}: {done} of {total} images")

        try:
            summary = ui.run_sides(images, plans, sides, config, cache, _progress)
        except StoreError as exc:
            _fail(database_problem(config, exc, "write to the result cache") + " The answers received so far are kept.")
        try:  # the comparison run, with its paid calls, in the audit trail
            store.record_batch("compare", len(images),
                               sum(run["requests"] for name, run in summary.items() if sides[name].spec.remote))
        except StoreError as exc:
            st.warning(database_problem(config, exc, "note the run in the audit trail"))
        st.session_state["compare_last_run"] = summary
        st.session_state["compare_generation"] += 1
        st.rerun()
else:
    st.caption("No new call is needed: every answer that can be had is in the result cache.")

last_run = st.session_state["compare_last_run"]
if last_run:
    for name, run in last_run.items():
        imagga = f" ({ui.count(run['requests'], 'Imagga request')})" if sides[name].spec.remote else ""
        st.text(f"Last run, tagger {name}: {ui.count(run['calls'], 'call')} made{imagga}, "
                f"{len(run['failed'])} failed.")
        if run["aborted"]:
            st.warning(f"Tagger {name} stopped early: {literal(run['aborted'])}")
        if run["failed"]:
            with st.expander(f"Images tagger {name} could not tag"):
                st.dataframe(pd.DataFrame(run["failed"], columns=["image", "reason"]), hide_index=True,
                             key=f"compare_{name.lower()}_failed_table")
unavailable = sorted({k for p in plans.values() for k in p.unavailable})
if unavailable:
    with st.expander(f"{len(unavailable)} images cannot be tagged again (no original kept)"):
        st.dataframe(_names(unavailable, images), hide_index=True, key="compare_unavailable_table")

# --- agreement over the set -----------------------------------------------------------------------------
result = compare.compare_set(images, answers["A"], answers["B"], side_a, side_b, overrides)
if not result.compared:
    st.info("No image has an answer from both taggers yet: make the new calls above.")
    st.stop()
st.subheader("Agreement")
m1, m2, m3, m4 = st.columns(4)
m1.metric("Images compared", result.compared, help="Images both taggers answered (one per content).")
m2.metric("Mean agreement", _pct(result.mean_agreement),
          help="Mean Jaccard index of the two selections, over images where either side selects something.")
m3.metric("Same selection", result.identical)
m4.metric("Neither selects anything", result.undefined)
try:
    thumbnails = store.thumbnails(result.compared_keys[: ui.THUMBNAILS_SHOWN])
except StoreError:
    thumbnails = {}  # the table is complete without them
st.dataframe(
    ui.with_thumbnails(result.per_image, thumbnails), hide_index=True, key="compare_per_image_table",
    row_height=64 if thumbnails else None,
    column_config={"agreement": st.column_config.NumberColumn(format="percent"),
                   "thumbnail": st.column_config.ImageColumn("thumbnail", width="small")},
)
missed = compare.misses(result.compared_keys, answers["A"], answers["B"], side_a, side_b, overrides)
c1, c2 = st.columns(2)
for column, name in ((c1, "A"), (c2, "B")):
    with column:
        st.subheader(f"Tags {name} misses most often")
        own = missed[missed["missed by"] == name].drop(columns=["missed by"]).head(20)
        if own.empty:
            st.text(f"{name} selects every tag the other side selects.")
        else:
            st.dataframe(own, hide_index=True, key=f"compare_{name.lower()}_misses_table")

try:
    notes = store.missing_notes(result.compared_keys)
except StoreError as exc:
    _fail(database_problem(config, exc, "read the missing-tags notes"))
st.subheader("Tags reviewers noted as missing")
if notes:
    st.caption("Free-text tags a reviewer added on the Review page because no tagger offered them: what each "
               "tagger did with them on these images.")
    st.dataframe(compare.noted_misses(notes, answers, sides, overrides), hide_index=True,
                 key="compare_noted_table")
else:
    st.caption("No reviewer noted a missing tag on these images (the Review page's missing-tags box).")

# --- against the analyst's verdicts ------------------------------------------------------------------------
st.subheader("Against your verdicts")
scope = st.radio("Verdicts", list(SCOPE_LABELS), format_func=SCOPE_LABELS.__getitem__, horizontal=True,
                 key="compare_scope")
try:
    truths = {name: ui.truth_for(store, side, scope, result.compared_keys) for name, side in sides.items()}
except StoreError as exc:
    _fail(database_problem(config, exc, "read the verdicts"))
scores = [compare.score_side(side, answers[name], truths[name], overrides, result.compared_keys)
          for name, side in sides.items()]
if not any(s.evidence.verdicts for s in scores):
    st.info("None of these images has reviewed verdicts yet. Review their tags (the Tag page's Save feedback) "
            "and come back: each tagger is then scored at its own best threshold.")
    st.stop()
st.success(literal(compare.verdict_summary(*scores)))
for score in scores:
    if not score.evidence.trusted:
        st.warning(f"Tagger {score.side.name} rests on too few verdicts to trust: "
                   + "; ".join(score.evidence.problems) + ".")
conflicts = {truths[name].conflicts for name in sides}
if any(conflicts):
    n = max(conflicts)
    st.caption(f"{n} tag{' was' if n == 1 else 's were'} accepted under one tagger and rejected under another; "
               f"{'it is' if n == 1 else 'they are'} left out.")
st.dataframe(
    compare.verdict_table(scores), hide_index=True, key="compare_verdict_table",
    column_config={
        **{c: st.column_config.NumberColumn(format="percent") for c in ("precision", "recall", "F1",
                                                                       "F1 at its threshold")},
        "verdicts": st.column_config.NumberColumn(help="The verdicts that can move this side's scores."),
        "unjudged selected": st.column_config.NumberColumn(
            help="Tags selected at the best threshold that have no verdict: left out of precision."),
        "90% of resamples": st.column_config.TextColumn(
            help="Where the best threshold lands when the images are resampled (bootstrap)."),
    },
)
st.altair_chart(ui.f1_chart(scores), width="stretch", key="compare_f1_chart")
