"""AppTest tests of the Batch page: uploads and zips, status, cache across pages and restarts, stop, save."""

from __future__ import annotations

import gc
import io
import threading
import zipfile

import pandas as pd
import pytest
import streamlit as st
from PIL import Image

import ui.batch as batch_ui
from tagging.batch import DEFAULT_CHUNK_SIZE, ByteBudget
from tagging.embedded import EmbeddedTagger
from tagging.store import Store
from tests.conftest import SAMPLES
from tests.imagga_standin import TEST_API_KEY, TEST_API_SECRET, ImaggaStandin, serve
from tests.markdown import shown
from ui import persist

CAT = (SAMPLES / "cat.jpg").read_bytes()
COFFEE = (SAMPLES / "coffee.jpg").read_bytes()


def _png(index: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (index * 41 % 256, 120, index * 67 % 256)).save(buffer, "PNG")
    return buffer.getvalue()


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def table(at, column: str = "selected tags"):
    """The first table with this column (AppTest does not expose keys of read-only tables)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.fixture
def forward_passes(monkeypatch):
    """Sizes of the embedded tagger's forward passes (the Tag page's calls are passes of 1)."""
    sizes: list[int] = []
    original = EmbeddedTagger.tag_batch

    def counting(self, images):
        sizes.append(len(images))
        return original(self, images)

    monkeypatch.setattr(EmbeddedTagger, "tag_batch", counting)
    return sizes


def batch_page(app):
    at = app()
    at.switch_page("pages/batch.py")
    return at.run()


def run_batch(at, files: list[tuple[str, bytes, str]] | None = None):
    """Upload (if given), press Tag, wait for the background job, and render its results."""
    if files is not None:
        at.file_uploader(key="batch_upload").set_value(files).run()
    at.button(key="batch_start").click().run()
    assert not at.exception
    assert at.session_state["batch_job"].wait(60)
    return at.run()


def test_batch_of_uploads_and_a_zip_reports_every_image_and_goes_on_after_a_failure(app, forward_passes):
    at = batch_page(app)
    assert not at.exception and "Choose image files" in texts(at.info)
    archive = _zip([("trip/day 1/cat.jpg", CAT), ("trip/readme.txt", b"hello"), ("../../evil.png", _png(9)),
                    ("trip/inner.zip", _zip([("x.png", _png(8))]))])
    files = [(f"p{i}.png", _png(i), "image/png") for i in range(3)]
    files += [("notes.jpg", b"this is not an image at all", "image/jpeg"), ("more.zip", archive, "application/zip")]
    at = run_batch(at, files)
    assert not at.exception and not at.error
    rows = table(at)
    assert list(rows["image"]) == ["p0.png", "p1.png", "p2.png", "notes.jpg", "more.zip › trip/day 1/cat.jpg",
                                    "more.zip › evil.png"]
    assert list(rows["status"]).count("tagged") == 5
    failed = rows[rows["image"] == "notes.jpg"].iloc[0]
    assert failed["status"] == "failed" and "not an image" in failed["note"]
    assert "cat" in rows[rows["image"].str.endswith("cat.jpg")].iloc[0]["selected tags"].split(", ")
    skipped = table(at, "reason")
    assert set(skipped["file"]) == {"more.zip › trip/readme.txt", "more.zip › trip/inner.zip"}
    assert metrics(at) == {"Tagged now": "5", "From the cache": "0", "Failed": "1", "Skipped": "0"}
    assert "the cache saved **0 calls**" in texts(at.caption)
    assert sum(forward_passes) == 5  # five good images, a forward pass per chunk
    assert len(forward_passes) == -(-5 // DEFAULT_CHUNK_SIZE) and max(forward_passes) <= DEFAULT_CHUNK_SIZE
    assert at.get("vega_lite_chart")  # how often each tag is selected
    assert [b.proto.label for b in at.get("download_button")] == ["Download CSV", "Download JSON"]


def test_second_run_and_a_restart_make_zero_calls(app, forward_passes):
    files = [(f"p{i}.png", _png(i), "image/png") for i in range(4)] + [("cat.jpg", CAT, "image/jpeg")]
    at = run_batch(batch_page(app), files)
    assert sum(forward_passes) == 5
    at = run_batch(at)  # the same uploads again
    assert sum(forward_passes) == 5
    assert metrics(at)["From the cache"] == "5" and metrics(at)["Tagged now"] == "0"
    assert "0 calls made · the cache saved **5 calls**" in texts(at.caption)

    st.cache_data.clear()  # a restart: every in-memory cache and resource is gone, the disk cache stays
    st.cache_resource.clear()
    at = run_batch(batch_page(app), files)
    assert sum(forward_passes) == 5
    assert metrics(at)["From the cache"] == "5"


def test_threshold_and_floor_recompute_the_table_without_calling(app, forward_passes):
    at = run_batch(batch_page(app), [("cat.jpg", CAT, "image/jpeg"), ("coffee.jpg", COFFEE, "image/jpeg")])
    calls = len(forward_passes)
    at.slider(key="batch_threshold").set_value(100).run()
    assert list(table(at)["selected"]) == [3, 3]  # the floor
    at.number_input(key="batch_min_tags").set_value(0).run()
    assert list(table(at)["selected"]) == [0, 0]
    assert "No tag is selected" in texts(at.caption)
    at.slider(key="batch_threshold").set_value(0).run()
    rows = table(at)
    assert list(rows["selected"]) == list(rows["suggested"])
    assert len(forward_passes) == calls and not at.exception


def test_cache_is_shared_with_the_tag_page_both_ways(app, forward_passes):
    at = run_batch(batch_page(app), [("cat.jpg", CAT, "image/jpeg"), ("coffee.jpg", COFFEE, "image/jpeg")])
    assert forward_passes == [2]
    at.switch_page("pages/tag.py").run()
    calls = len(forward_passes)  # the sample it opens on may or may not be one of the batch's
    at.radio(key="tag_source").set_value("Upload").run()
    at.file_uploader(key="tag_upload").upload("my cat.jpg", CAT, "image/jpeg").run()
    assert not at.exception and not at.error
    assert "cat" in at.multiselect(key="tag_selection").value
    assert len(forward_passes) == calls  # tagged in the batch: no new call

    at.radio(key="tag_source").set_value("Sample photo").run()
    at.selectbox(key="tag_sample").set_value("rocket.jpg").run()
    assert len(forward_passes) == calls + 1  # not in the batch: tagged now
    at.switch_page("pages/batch.py").run()
    rocket = (SAMPLES / "rocket.jpg").read_bytes()
    at = run_batch(at, [("rocket.jpg", rocket, "image/jpeg"), ("cat.jpg", CAT, "image/jpeg")])
    assert len(forward_passes) == calls + 1  # tagged on the Tag page and in the first batch
    assert metrics(at)["From the cache"] == "2" and metrics(at)["Tagged now"] == "0"


def test_stop_keeps_what_finished(app, monkeypatch):
    gate, entered = threading.Event(), threading.Event()
    original = EmbeddedTagger.tag_batch

    def gated(self, images):
        if threading.current_thread().name == "batch-job":
            entered.set()
            assert gate.wait(30)
        return original(self, images)

    monkeypatch.setattr(EmbeddedTagger, "tag_batch", gated)
    n = DEFAULT_CHUNK_SIZE + 3
    at = batch_page(app)
    at.file_uploader(key="batch_upload").set_value([(f"p{i}.png", _png(i), "image/png") for i in range(n)]).run()
    at.button(key="batch_start").click().run()
    assert entered.wait(30)
    assert at.get("progress") and f"0 of {n} images" in at.get("progress")[0].proto.text
    assert at.button(key="batch_start").disabled
    at.button(key="batch_stop").click().run()
    assert "stopping" in at.get("progress")[0].proto.text
    gate.set()
    assert at.session_state["batch_job"].wait(30)
    at.run()
    assert not at.exception
    statuses = list(table(at)["status"])
    assert statuses == ["tagged"] * DEFAULT_CHUNK_SIZE + ["skipped"] * 3
    assert "Stopped." in texts(at.info)
    assert metrics(at)["Skipped"] == "3"


def test_save_button_stores_the_batch(app, isolated_env):
    at = run_batch(batch_page(app), [("cat.jpg", CAT, "image/jpeg"), ("bad.png", b"nope", "image/png")])
    at.button(key="batch_save").click().run()
    assert not at.exception and not at.error
    assert "Saved 1 image to the library, awaiting your review" in texts(at.success)
    assert list(table(at, "top tag")["top tag"])[1] == ""  # issue 18: a blank, not "None", for the failed image
    # issue 18 item 15: the way on to the review is at the top, before the table and the chart
    assert at.button(key="batch_review") is not None
    store = Store(isolated_env)
    images, items = store.counts()
    assert images == 1 and items == table(at)["suggested"][0]
    [entry] = store.library_entries()
    assert entry.provenance == "automatic" and entry.saved_by.startswith("session-")
    assert store.awaiting_review() == 1 and store.feedback_groups() == []  # not a review: Tune ignores it


def test_analysis_columns_in_table_exports_and_library(app, isolated_env):
    import csv
    import json


    astronaut = (SAMPLES / "astronaut.jpg").read_bytes()
    red = io.BytesIO()
    Image.new("RGB", (64, 48), (220, 10, 10)).save(red, "PNG")
    files = [("astronaut.jpg", astronaut, "image/jpeg"), ("red.png", red.getvalue(), "image/png"),
             ("broken.jpg", b"not an image at all", "image/jpeg")]
    at = run_batch(batch_page(app), files)
    rows = table(at).set_index("image")
    assert rows.loc["astronaut.jpg", "faces"] == "1" and rows.loc["red.png", "faces"] == "0"
    assert rows.loc["red.png", "dominant colour"] == "red"
    assert (rows["text found"] == "").all()  # text is read only on request
    # Issue 18 item 11: a thumbnail per image read; the broken one has none, and no cell reads "None"
    assert rows.loc["astronaut.jpg", "thumbnail"].startswith("data:image/jpeg;base64,")
    assert rows.loc["red.png", "thumbnail"].startswith("data:image/jpeg;base64,")
    assert pd.isna(rows.loc["broken.jpg", "thumbnail"])
    shown_cells = rows.drop(columns=["thumbnail"]).astype(str).to_numpy()
    assert "None" not in shown_cells and "<NA>" not in shown_cells and "nan" not in shown_cells
    at.checkbox(key="batch_read_text").check().run()
    assert not at.exception and not at.error
    assert table(at).set_index("image").loc["red.png", "text found"] == "no"
    from tagging.batch import export_csv, export_json  # what the download buttons send

    job = at.session_state["batch_job"]
    analysis = at.session_state["batch_analysis"][1]
    csv_rows = {r["image"]: r for r in csv.DictReader(io.StringIO(export_csv(job.results(), 60, 3, {}, analysis)))}
    assert csv_rows["red.png"]["dominant colour"] == "red" and csv_rows["astronaut.jpg"]["faces"] == "1"
    images = {i["image"]: i for i in json.loads(export_json(job.results(), 60, 3, {}, analysis=analysis))["images"]}
    assert images["red.png"]["dominant_color_parent"] == "red" and images["red.png"]["text_found"] is False
    at.button(key="batch_save").click().run()
    store = Store(isolated_env)
    kept = store.analysis_summaries([r.image_key for r in job.results()])  # red.png has no tags: not listed
    assert sorted((s.face_count, s.dominant_parent, s.text_found) for s in kept.values())[0] == (0, "red", False)
    assert len(kept) == 2


def test_unreadable_zip_gets_a_clear_message(app):
    at = batch_page(app)
    at.file_uploader(key="batch_upload").set_value([("broken.zip", b"PK\x03\x04garbage", "application/zip")]).run()
    assert not at.exception
    assert "not a zip archive that can be read" in texts(at.error)
    assert at.button(key="batch_start").disabled


@pytest.fixture
def standin(monkeypatch):
    with serve(ImaggaStandin(latency=0.1)) as (server, base_url):
        monkeypatch.setenv("IMAGGA_API_KEY", TEST_API_KEY)
        monkeypatch.setenv("IMAGGA_API_SECRET", TEST_API_SECRET)
        monkeypatch.setenv("IMAGGA_API_URL", base_url)
        yield server


def test_imagga_batch_keeps_the_limit_and_shares_the_cache_with_the_tag_page(app, standin):
    at = batch_page(app)
    assert at.number_input(key="batch_concurrency").value == 3
    files = [(f"p{i}.png", _png(i), "image/png") for i in range(8)] + [("cat.jpg", CAT, "image/jpeg")]
    at = run_batch(at, files)
    assert not at.exception and not at.error
    assert metrics(at)["Tagged now"] == "9"
    assert standin.max_in_flight == 3 and standin.count("POST", "/v2/tags") == 9
    assert "at most 3 requests in flight" in texts(at.caption)

    at = run_batch(at)
    assert standin.count("POST", "/v2/tags") == 9 and metrics(at)["From the cache"] == "9"

    at.switch_page("pages/tag.py").run()
    before = standin.count("POST", "/v2/tags")  # the Tag page's first sample
    at.radio(key="tag_source").set_value("Upload").run()
    at.file_uploader(key="tag_upload").upload("cat.jpg", CAT, "image/jpeg").run()
    assert not at.exception and not at.error
    assert "Tagged by **Imagga API**" in texts(at.caption)
    assert standin.count("POST", "/v2/tags") == before


def test_imagga_batch_save_queues_no_feedback(app, standin, isolated_env):
    """The rule's selection saved without review must not teach Imagga its own predictions."""
    files = [(f"img{i}.png", _png(i), "image/png") for i in range(3)]
    at = run_batch(batch_page(app), files)
    at.button(key="batch_save").click().run()
    assert not at.exception and not at.error
    store = Store(isolated_env)
    assert store.counts()[0] == 3 and store.awaiting_review("imagga", "en") == 3
    assert store.pending() == [] and standin.feedback == [] and standin.count("POST", "/v2/tags/feedback") == 0


# --- issue 10, defect 1: bounded memory, said on the page, released at the end ------------------
@pytest.fixture
def budget(monkeypatch):
    """A fresh server-wide upload budget for the test (the page reads ui.batch's at every run)."""
    fresh = ByteBudget(64 * 1024 * 1024)
    monkeypatch.setattr(batch_ui, "SERVER_BUDGET", fresh)
    return fresh


def _zeros_zip(members: int) -> bytes:
    return _zip([(f"z{i:03d}.bmp", b"\0" * 1024 * 1024) for i in range(members)])


def test_a_zip_of_many_zero_members_is_refused_and_holds_nothing(app, budget):
    at = batch_page(app)
    at.file_uploader(key="batch_upload").set_value([("zeros.zip", _zeros_zip(9), "application/zip")]).run()
    assert not at.exception
    assert "zip bomb" in shown(at.error) and "zeros.zip" in shown(at.error)
    assert at.button(key="batch_start").disabled
    assert budget.held == 0


def test_a_zip_is_held_compressed_and_the_page_says_what_it_holds(app, budget):
    archive = _zip([(f"p{i}.png", _png(i)) for i in range(6)])
    at = batch_page(app)
    at.file_uploader(key="batch_upload").set_value([("six.zip", archive, "application/zip"),
                                                      ("cat.jpg", CAT, "image/jpeg")]).run()
    assert not at.exception and not at.error
    assert budget.held == len(archive) + len(CAT)  # the upload as it came, not the images expanded
    caption = shown(at.caption)
    assert "7 images ready" in caption
    assert "held on the server" in caption and "per session" in caption and "all analysts" in caption


def test_uploads_over_the_server_budget_are_refused_with_the_reason(app, monkeypatch):
    small = ByteBudget(len(CAT) + 10)
    monkeypatch.setattr(batch_ui, "SERVER_BUDGET", small)
    other = small.reserve(len(CAT))  # another analyst's batch, still running
    at = batch_page(app)
    at.file_uploader(key="batch_upload").set_value([("cat.jpg", CAT, "image/jpeg")]).run()
    assert not at.exception
    assert "cannot keep" in shown(at.error) and "all analysts" in shown(at.error)
    assert at.button(key="batch_start").disabled
    assert small.held == other.bytes  # nothing more was taken


def test_uploads_over_the_session_limit_are_refused_with_the_reason(app, budget, monkeypatch):
    monkeypatch.setattr(batch_ui, "MAX_SESSION_BYTES", len(CAT) + len(COFFEE) - 1)
    at = batch_page(app)
    at.file_uploader(key="batch_upload").set_value([("cat.jpg", CAT, "image/jpeg"),
                                                      ("coffee.jpg", COFFEE, "image/jpeg")]).run()
    assert not at.exception
    assert "per session" in shown(at.error)
    assert at.button(key="batch_start").disabled
    assert budget.held == 0


def test_a_finished_session_gives_back_what_it_held_when_its_batch_leaves_the_shelf(app, budget):
    at = run_batch(batch_page(app), [(f"p{i}.png", _png(i), "image/png") for i in range(3)])
    assert budget.held > 0  # the results can still be saved with thumbnails
    batch = at.query_params["batch"]  # the page's link names its batch
    del at  # the session ends: Streamlit drops its state, the server's shelf keeps the batch for a reload
    gc.collect()
    assert budget.held > 0 and batch in persist.BATCHES
    persist.BATCHES.forget(batch)  # it leaves the shelf (the latest few are kept)
    gc.collect()
    assert budget.held == 0 and budget.holds == 0


def test_a_batch_reloaded_mid_run_shows_the_finished_result(app, budget, monkeypatch):
    # issue 18 item 4: the analyst reloads (a new session, the same URL) while the batch runs
    gate, entered = threading.Event(), threading.Event()
    original = EmbeddedTagger.tag_batch

    def gated(self, images):
        entered.set()
        assert gate.wait(30)
        return original(self, images)

    monkeypatch.setattr(EmbeddedTagger, "tag_batch", gated)
    at = batch_page(app)
    at.file_uploader(key="batch_upload").set_value(
        [(f"p{i}.png", _png(i), "image/png") for i in range(DEFAULT_CHUNK_SIZE + 3)]).run()
    at.button(key="batch_start").click().run()
    assert entered.wait(30)
    job = at.session_state["batch_job"]
    url = dict(at.query_params)
    del at  # the tab is reloaded mid-batch
    gc.collect()
    assert not job.stopping  # the server goes on with it
    gate.set()
    assert job.wait(30)
    reloaded = app()
    reloaded.switch_page("pages/batch.py")
    for name, value in url.items():
        reloaded.query_params[name] = value
    reloaded.run()
    assert not reloaded.exception
    assert reloaded.session_state["batch_job"] is job
    assert metrics(reloaded)["Tagged now"] == str(DEFAULT_CHUNK_SIZE + 3)
    assert len(table(reloaded)) == DEFAULT_CHUNK_SIZE + 3
    del job, reloaded
    persist.BATCHES.clear()
    gc.collect()
    assert budget.held == 0


def test_a_link_to_a_batch_the_server_no_longer_keeps_says_so(app):
    at = app()
    at.switch_page("pages/batch.py")
    at.query_params["batch"] = "0" * 64
    at.run()
    assert not at.exception and "no longer kept on the server" in shown(at.warning)


def test_an_empty_zip_says_it_is_empty(app, budget):
    at = batch_page(app)
    at.file_uploader(key="batch_upload").set_value([("empty.zip", _zip([]), "application/zip")]).run()
    assert not at.exception
    assert "“empty.zip” is empty" in shown(at.error)
    assert "see the files not read" not in shown(at.error)
    notes = _zip([("readme.txt", b"hello")])
    at.file_uploader(key="batch_upload").set_value([("notes.zip", notes, "application/zip")]).run()
    assert "“notes.zip” holds no images" in shown(at.error) and "files not read" in shown(at.error)
    assert at.expander and "1 files not read" in at.expander[0].label


def test_the_batch_uploader_takes_any_file_up_to_the_servers_cap(app):
    at = batch_page(app)
    uploader = at.file_uploader(key="batch_upload")
    assert list(uploader.proto.type) == []  # a PDF gets the intake's message, not a red chip
    assert uploader.proto.max_upload_size_mb == batch_ui.MAX_FILE_MB == st.get_option("server.maxUploadSize")
    # Streamlit's MB is 1,000,000 bytes: the label and the message say the cap to the byte
    assert "each file up to 61 MB (64,000,000 bytes)" in uploader.label
    assert "over 61 MB (64,000,000 bytes)" in shown(at.info) and "red" in shown(at.info)


def test_forgetting_the_last_batch_gives_back_its_uploads(app, budget):
    at = run_batch(batch_page(app), [(f"p{i}.png", _png(i), "image/png") for i in range(2)])
    at.file_uploader(key="batch_upload").set_value([]).run()  # the files are removed from the uploader
    assert budget.held == len(_png(0)) + len(_png(1))  # the results can still be saved with thumbnails
    assert "held on the server" in shown(at.caption)
    at.button(key="batch_forget").click().run()
    assert not at.exception and "batch_job" not in at.session_state
    at.run()  # the next rerun: Streamlit keeps the previous run's script namespace until then,
    gc.collect()  # and that namespace sits in reference cycles the collector (which runs anyway) frees
    assert budget.held == 0
    assert "Choose image files" in shown(at.info)
