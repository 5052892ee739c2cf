"""The batch engine: chunked forward passes, the concurrency limit, partial failure, the cache, export."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from tagging.backends import EMBEDDED, MODE_TWO_STEP, EmbeddedBackend, ImaggaBackend, TagRequest
from tagging.batch import (
    CACHED,
    FAILED,
    OK,
    SKIPPED,
    BatchItem,
    BatchJob,
    PerThreadImagga,
    export_csv,
    export_json,
    results_frame,
    run_batch,
    save_batch,
    tag_frequency,
)
from tagging.errors import BadImageError, SourceReadError
from tagging.imagga import ImaggaClient, ImaggaCredentials
from tagging.store import ResultCache, Store
from tests.conftest import SAMPLES
from tests.imagga_standin import TEST_API_KEY, TEST_API_SECRET, ImaggaStandin, serve, standin_tags

CREDENTIALS = ImaggaCredentials(TEST_API_KEY, TEST_API_SECRET)
REQUEST = TagRequest(language="en", mode="upload")


def _png(index: int, size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (index * 37 % 256, index * 91 % 256, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def _images(n: int) -> list[tuple[str, bytes]]:
    return [(f"img{i:02d}.png", _png(i)) for i in range(n)]


def _payload(color: tuple[int, ...]) -> dict:
    red = color[0]
    tags = [("bright" if red > 127 else "dark", 90.0), ("shape", 65.0), (f"red{red // 64}", 40.0), ("noise", 5.0)]
    return {"result": {"tags": [{"confidence": c, "tag": {"en": t}} for t, c in tags]},
            "status": {"text": "", "type": "success"}}


class FakeTagger:
    """Answers from the top-left pixel; records the size of every forward pass."""

    def __init__(self, fail_on: tuple[int, ...] | None = None, gate: threading.Event | None = None) -> None:
        self.batches: list[int] = []
        self.fail_on = fail_on
        self.gate = gate
        self.entered = threading.Event()

    def tag_batch(self, images: list[Image.Image]) -> list[dict]:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        self.batches.append(len(images))
        out = []
        for image in images:
            color = image.getpixel((0, 0))
            if color == self.fail_on:
                raise BadImageError("this one cannot be tagged")
            out.append(_payload(color))
        return out


def _embedded(tagger: FakeTagger) -> EmbeddedBackend:
    return EmbeddedBackend(tagger=tagger)


@pytest.fixture
def cache(tmp_path: Path) -> ResultCache:
    return ResultCache(tmp_path / "tagging.db")


@pytest.fixture(scope="module")
def _server():
    with serve(ImaggaStandin()) as (server, base_url):
        server.base_url = base_url
        yield server


@pytest.fixture
def standin(_server):
    """The module's stand-in, reset, with 200 ms added to every request."""
    _server.reset()
    _server.latency = 0.2
    return _server


def _imagga(base_url: str) -> tuple[ImaggaBackend, PerThreadImagga]:
    # backoff 0: a retried 500 in a test costs no sleeping
    factory = PerThreadImagga(CREDENTIALS, base_url, backoff_factor=0)
    return ImaggaBackend(ImaggaClient(CREDENTIALS, base_url=base_url)), factory


def _tag_posts(standin: ImaggaStandin) -> int:
    return standin.count("POST", "/v2/tags")


# --- embedded: batched forward passes ---------------------------------------------------------
def test_embedded_tags_in_chunks_of_one_forward_pass_each(cache):
    tagger = FakeTagger()
    seen: list[tuple[str, int, int]] = []
    report = run_batch(_images(20), _embedded(tagger), REQUEST, backend_key=EMBEDDED, cache=cache, chunk_size=8,
                       on_result=lambda r, done, total: seen.append((r.name, done, total)))
    assert tagger.batches == [8, 8, 4]
    assert [r.status for r in report.results] == [OK] * 20
    assert report.calls_made == 20 and report.requests == 3 and report.calls_saved == 0
    assert [done for _, done, _ in seen] == list(range(1, 21)) and {t for *_, t in seen} == {20}
    assert report.results[0].tags[0].name in ("bright", "dark")
    assert report.results[0].width == 40 and report.results[0].height == 30


def test_real_embedded_tagger_finds_the_cat_and_the_coffee_in_one_pass(cache, embedded_backend):
    samples = [(name, (SAMPLES / name).read_bytes()) for name in ("cat.jpg", "coffee.jpg", "rocket.jpg")]
    report = run_batch(samples, embedded_backend, REQUEST, backend_key=EMBEDDED, cache=cache)
    assert report.requests == 1 and report.calls_made == 3
    names = {r.name: [t.name for t in r.tags] for r in report.results}
    assert "cat" in names["cat.jpg"][:10]
    assert any("coffee" in t or "cup" in t for t in names["coffee.jpg"][:10])


def test_embedded_partial_failure_bad_file_and_a_failing_image_in_a_chunk(cache):
    items = _images(6)
    items.insert(2, ("notes.jpg", b"this is not an image at all"))
    bad_color = Image.open(io.BytesIO(items[4][1])).convert("RGB").getpixel((0, 0))
    tagger = FakeTagger(fail_on=bad_color)
    report = run_batch(items, _embedded(tagger), REQUEST, backend_key=EMBEDDED, cache=cache, chunk_size=4)
    statuses = {r.name: r.status for r in report.results}
    assert statuses == {name: OK for name, _ in items} | {"notes.jpg": FAILED, items[4][0]: FAILED}
    assert "not an image" in report.results[2].reason
    assert "cannot be tagged" in report.results[4].reason
    # the failed chunk of 3 good + 1 bad was retried one by one, so only the bad one failed
    assert tagger.batches[0] == 3  # notes.jpg never reached the tagger
    assert len(cache) == 5  # failures are never cached


# --- Imagga: the concurrency limit ------------------------------------------------------------
@pytest.mark.parametrize(("limit", "n"), [(1, 4), (3, 9)])
def test_imagga_never_has_more_requests_in_flight_than_the_limit(standin, cache, limit, n):
    backend, factory = _imagga(standin.base_url)
    report = run_batch(_images(n), backend, REQUEST, backend_key="imagga:test", cache=cache,
                       concurrency=limit, backend_factory=factory)
    assert [r.status for r in report.results] == [OK] * n
    assert standin.max_in_flight == limit  # reached, never exceeded
    assert report.max_in_flight == limit
    assert _tag_posts(standin) == n == report.calls_made
    assert factory.built == limit  # one client and session per worker thread
    assert [t.name for t in report.results[0].tags] == [t["tag"]["en"] for t in standin_tags(_png(0))]


def test_two_step_requests_of_one_image_run_in_one_worker(standin, cache):
    standin.latency = 0.05
    backend, factory = _imagga(standin.base_url)
    request = TagRequest(language="en", mode=MODE_TWO_STEP)
    report = run_batch(_images(6), backend, request, backend_key="imagga:test", cache=cache,
                       concurrency=2, backend_factory=factory)
    assert report.count(OK) == 6
    assert standin.max_in_flight == 2
    assert standin.count("POST", "/v2/uploads") == standin.count("GET", "/v2/tags") == 6
    assert standin.stats()["live_uploads"] == []


def test_imagga_partial_failure_a_500_for_one_image_and_the_batch_goes_on(standin, cache):
    standin.latency = 0.0
    items = _images(5)
    standin.fail("server_error", image_sha256=hashlib.sha256(items[1][1]).hexdigest())
    backend, factory = _imagga(standin.base_url)
    report = run_batch(items, backend, REQUEST, backend_key="imagga:test", cache=cache, backend_factory=factory)
    assert [r.status for r in report.results] == [OK, FAILED, OK, OK, OK]
    assert "server error (HTTP 500)" in report.results[1].reason
    assert len(cache) == 4
    # the next run only pays for the image that failed
    standin.reset()
    again = run_batch(items, backend, REQUEST, backend_key="imagga:test", cache=cache, backend_factory=factory)
    assert [r.status for r in again.results] == [CACHED, OK, CACHED, CACHED, CACHED]
    assert _tag_posts(standin) == 1 and again.calls_saved == 4


def test_a_429_pauses_the_workers_and_the_image_is_retried(standin, cache):
    standin.latency = 0.05
    standin.fail("rate_limit", times=2, retry_after="0.2", path="/v2/tags")
    backend = ImaggaBackend(ImaggaClient(CREDENTIALS, base_url=standin.base_url))
    factory = PerThreadImagga(CREDENTIALS, standin.base_url, retries=0)  # the batch handles the 429 itself
    report = run_batch(_images(6), backend, REQUEST, backend_key="imagga:test", cache=cache,
                       concurrency=3, backend_factory=factory)
    assert report.count(OK) == 6
    assert _tag_posts(standin) == 8 == report.calls_made  # 6 answers + 2 refused and retried
    assert standin.max_in_flight <= 3


def test_a_429_asking_for_hours_ends_the_batch_instead_of_failing_every_image(standin, cache):
    standin.latency = 0.0
    standin.fail("rate_limit", retry_after="3600")
    backend, factory = _imagga(standin.base_url)
    report = run_batch(_images(8), backend, REQUEST, backend_key="imagga:test", cache=cache,
                       concurrency=2, backend_factory=factory)
    assert report.aborted and "HTTP 429" in report.aborted
    assert 1 <= report.count(FAILED) <= 2  # only the requests already in flight
    assert report.count(SKIPPED) == 8 - report.count(FAILED)
    assert all(r.reason.startswith("not sent: ") for r in report.results if r.status == SKIPPED)
    assert _tag_posts(standin) <= 2


def test_wrong_credentials_end_the_batch(standin, cache):
    standin.latency = 0.0
    bad = ImaggaCredentials("wrong-key", "wrong-secret")
    report = run_batch(_images(5), ImaggaBackend(ImaggaClient(bad, base_url=standin.base_url)), REQUEST,
                       backend_key="imagga:test", cache=cache, concurrency=1)
    assert [r.status for r in report.results] == [FAILED] + [SKIPPED] * 4
    assert "IMAGGA_API_KEY" in report.results[0].reason
    assert standin.count() == 1


# --- stopping -----------------------------------------------------------------------------------
def test_stop_keeps_what_finished_and_skips_the_rest(standin, cache):
    standin.latency = 0.0
    stop = threading.Event()
    backend, factory = _imagga(standin.base_url)
    report = run_batch(_images(5), backend, REQUEST, backend_key="imagga:test", cache=cache, concurrency=1,
                       backend_factory=factory, stop=stop, on_result=lambda r, done, total: stop.set())
    assert [r.status for r in report.results] == [OK] + [SKIPPED] * 4
    assert report.stopped and report.results[1].reason == "stopped before it was tagged"
    assert _tag_posts(standin) == 1 and len(cache) == 1


def test_stop_on_embedded_ends_after_the_chunk_in_progress(cache):
    tagger = FakeTagger()
    calls = iter(range(100))
    report = run_batch(_images(10), _embedded(tagger), REQUEST, backend_key=EMBEDDED, cache=cache, chunk_size=4,
                       stop=lambda: next(calls) >= 1)  # the first check passes, the second stops
    assert tagger.batches == [4]
    assert [r.status for r in report.results] == [OK] * 4 + [SKIPPED] * 6


def test_batch_job_runs_in_the_background_and_can_be_stopped(cache):
    gate = threading.Event()
    tagger = FakeTagger(gate=gate)
    job = BatchJob(_images(10), _embedded(tagger), REQUEST, backend_key=EMBEDDED, cache=cache, chunk_size=4).start()
    assert tagger.entered.wait(10)  # the first forward pass is under way
    assert job.running and job.snapshot() == []
    job.stop()
    gate.set()
    assert job.wait(10)
    assert [r.status for r in job.results()] == [OK] * 4 + [SKIPPED] * 6
    assert job.report is not None and job.report.stopped and not job.error


# --- never billed twice -------------------------------------------------------------------------
def test_second_run_makes_zero_calls_and_counts_the_saved_ones(standin, cache):
    standin.latency = 0.0
    backend, factory = _imagga(standin.base_url)
    items = _images(6)
    first = run_batch(items, backend, REQUEST, backend_key="imagga:test", cache=cache, backend_factory=factory)
    assert first.calls_made == 6 and _tag_posts(standin) == 6
    second = run_batch(items, backend, REQUEST, backend_key="imagga:test", cache=cache, backend_factory=factory)
    assert second.calls_made == 0 and second.calls_saved == 6 and _tag_posts(standin) == 6
    assert [r.status for r in second.results] == [CACHED] * 6
    assert [r.tags for r in second.results] == [r.tags for r in first.results]
    # other parameters are another answer: one new call per image
    german = run_batch(items[:2], backend, TagRequest(language="de"), backend_key="imagga:test", cache=cache,
                       backend_factory=factory)
    assert german.calls_made == 2 and german.results[0].tags[0].name != first.results[0].tags[0].name


def test_two_batches_of_the_same_images_at_once_are_billed_once(standin, open_db):
    """Two servers (each its own connection pool) tag the same images at the same moment: one call per image."""
    standin.latency = 0.3
    items = _images(4)
    reports = []
    barrier = threading.Barrier(2)

    def server() -> None:
        backend, factory = _imagga(standin.base_url)
        cache = ResultCache(open_db())
        barrier.wait()
        reports.append(run_batch(items, backend, REQUEST, backend_key="imagga:test", cache=cache, concurrency=2,
                                 backend_factory=factory))

    threads = [threading.Thread(target=server) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _tag_posts(standin) == 4
    assert sum(r.calls_made for r in reports) == 4 and sum(r.calls_saved for r in reports) == 4
    assert [r.tags for r in reports[0].results] == [r.tags for r in reports[1].results]
    assert all(r.status in (OK, CACHED) for report in reports for r in report.results)


def test_the_cache_survives_a_restart(tmp_path):
    tagger = FakeTagger()
    path = tmp_path / "results-cache.db"
    run_batch(_images(4), _embedded(tagger), REQUEST, backend_key=EMBEDDED, cache=ResultCache(path))
    reopened = ResultCache(path)  # a new process would open the same file
    report = run_batch(_images(4), _embedded(tagger), REQUEST, backend_key=EMBEDDED, cache=reopened)
    assert tagger.batches == [4] and report.calls_made == 0 and report.calls_saved == 4
    assert reopened.hits == 4


def test_identical_images_in_one_batch_are_tagged_once(cache):
    tagger = FakeTagger()
    items = [("a.png", _png(1)), ("copy of a.png", _png(1)), ("b.png", _png(2)), ("again a.png", _png(1))]
    report = run_batch(items, _embedded(tagger), REQUEST, backend_key=EMBEDDED, cache=cache)
    assert tagger.batches == [2]
    assert [r.status for r in report.results] == [OK, CACHED, OK, CACHED]
    assert report.results[1].reason == "same image as “a.png” in this batch"
    assert report.calls_saved == 2 and report.results[3].tags == report.results[0].tags


def test_cache_keys_are_the_tag_pages(cache):
    data = _png(3)
    run_batch([("x.png", data)], _embedded(FakeTagger()), TagRequest(language="en", mode="upload"),
              backend_key=EMBEDDED, cache=cache)
    # ui.resources.tag_cached looks the answer up with exactly these keys
    assert cache.get(EMBEDDED, hashlib.sha256(data).hexdigest(), TagRequest(language="en", mode="upload").cache_key())


def test_a_damaged_cache_entry_is_asked_again(cache):
    data = _png(4)
    cache.put(EMBEDDED, hashlib.sha256(data).hexdigest(), REQUEST.cache_key(), {"result": "garbage"})
    tagger = FakeTagger()
    report = run_batch([("x.png", data)], _embedded(tagger), REQUEST, backend_key=EMBEDDED, cache=cache)
    assert report.results[0].status == OK and tagger.batches == [1]


# --- views, export and saving -----------------------------------------------------------------------
@pytest.fixture
def finished(cache):
    items = [("bright.png", _png(5)), ("broken.jpg", b"nope"), ("dark.png", _png(0))]
    return run_batch(items, _embedded(FakeTagger()), REQUEST, backend_key=EMBEDDED, cache=cache)


def test_table_recomputes_selection_from_threshold_and_floor(finished):
    results = finished.results
    at_60 = results_frame(results, 60, 0)
    assert list(at_60["selected tags"]) == ["bright, shape", "", "dark, shape"]
    assert list(at_60["status"]) == [OK, FAILED, OK]
    assert "not an image" in at_60["note"][1]
    assert list(results_frame(results, 100, 1)["selected tags"]) == ["bright", "", "dark"]  # the floor
    assert list(results_frame(results, 0, 0)["selected"]) == [4, 0, 4]
    assert list(results_frame(results, 60, 0, {"shape": 70})["selected tags"]) == ["bright", "", "dark"]
    frequency = tag_frequency(results, 30, 0)
    assert frequency.to_dict("records")[:2] == [{"tag": "shape", "images": 2, "share": 1.0},
                                                {"tag": "bright", "images": 1, "share": 0.5}]


def test_export_csv(finished):
    rows = list(csv.DictReader(io.StringIO(export_csv(finished.results, 30, 0))))
    assert [r["image"] for r in rows] == ["bright.png", "broken.jpg", "dark.png"]
    assert rows[0]["selected tags"] == "bright; shape; red2"
    assert rows[0]["status"] == "ok" and rows[0]["selected"] == "3" and rows[0]["suggested"] == "4"
    assert rows[0]["sha256"] == hashlib.sha256(_png(5)).hexdigest()
    assert rows[1]["status"] == "failed" and "not an image" in rows[1]["note"] and rows[1]["selected tags"] == ""


def test_export_json(finished):
    document = json.loads(export_json(finished.results, 60, 1, backend=EMBEDDED, request=REQUEST))
    assert document["backend"] == EMBEDDED and document["threshold"] == 60 and document["min_tags"] == 1
    assert document["request"]["language"] == "en"
    first = document["images"][0]
    assert first["image"] == "bright.png" and first["status"] == "ok" and first["selected"] == ["bright", "shape"]
    assert first["tags"][2] == {"tag": "red2", "confidence": 40.0, "selected": False}
    assert document["images"][1]["status"] == "failed" and document["images"][1]["tags"] == []


def test_save_batch_into_the_library_and_feedback_store(finished, isolated_env):
    store = Store(isolated_env)
    data = {hashlib.sha256(_png(i)).hexdigest(): BatchItem(f"{i}.png", _png(i)) for i in (0, 5)}
    summary = save_batch(store, finished.results, data, backend=EMBEDDED, language="en", threshold=60, min_tags=0)
    assert (summary.saved, summary.replaced, summary.accepted, summary.failed) == (2, 0, 4, [])
    assert store.counts() == (2, 8)
    rows = store.feedback_for(hashlib.sha256(_png(5)).hexdigest(), EMBEDDED, "en")
    assert {r.tag for r in rows if r.accepted} == {"bright", "shape"}
    with sqlite3.connect(isolated_env) as conn:
        thumbs = conn.execute("SELECT COUNT(*) FROM images WHERE thumbnail IS NOT NULL AND width = 40").fetchone()
    conn.close()
    assert thumbs == (2,)
    preview = Image.open(io.BytesIO(store.preview(hashlib.sha256(_png(5)).hexdigest())))
    assert preview.format == "JPEG" and preview.size == (40, 30)  # small images are kept at their size
    again = save_batch(store, finished.results, data, backend=EMBEDDED, language="en", threshold=30, min_tags=0,
                       saved_by="bob", batch="b-1")
    assert again.replaced == 2 and store.counts() == (2, 8)
    key = hashlib.sha256(_png(5)).hexdigest()
    stored = store.verdict_set(key, EMBEDDED, "en")
    assert (stored.provenance, stored.saved_by, stored.batch) == ("automatic", "bob", "b-1")
    assert store.feedback_groups() == [] and store.awaiting_review() == 2  # the rule's selection is not a review
    store.save_feedback(image_key=key, filename="x.png", source="Upload", backend=EMBEDDED, language="en",
                        threshold=60, min_tags=0, items=[], saved_by="alice")
    steps = []
    third = save_batch(store, finished.results, data, backend=EMBEDDED, language="en", threshold=30, min_tags=0,
                       progress=lambda done, total: steps.append((done, total)))
    assert steps == [(0, 2), (1, 2), (2, 2)]  # each image reported, a kept one too
    assert (third.saved, third.kept) == (1, 1)  # the reviewed image is left as the analyst saved it
    assert store.verdict_set(key, EMBEDDED, "en").saved_by == "alice"


def test_items_accept_tuples_and_hash_their_bytes():
    item = BatchItem("a.png", b"abc")
    assert item.sha256 == hashlib.sha256(b"abc").hexdigest()
    with pytest.raises(ValueError):
        BatchItem("neither.png")
    with pytest.raises(ValueError):
        BatchItem("both.png", b"abc", source=_Source(b"abc"))
    with pytest.raises(ValueError):
        run_batch([], _embedded(FakeTagger()), REQUEST, backend_key=EMBEDDED, concurrency=0)


@dataclass(frozen=True)
class _Source:
    """Bytes read on demand, counting the reads; ``None`` data fails like a vanished file."""

    data: bytes | None
    reads: list[int] = field(default_factory=list, compare=False)

    def read(self) -> bytes:
        self.reads.append(1)
        if self.data is None:
            raise SourceReadError("“gone.png” could not be read: the file is gone")
        return self.data


def test_items_read_from_a_source_only_when_needed_and_a_bad_source_fails_alone():
    good = _Source(_png(3))
    gone = _Source(None)
    items = [BatchItem("good.png", source=good), BatchItem("gone.png", source=gone)]
    assert good.reads == []  # nothing read when the batch is assembled
    report = run_batch(items, _embedded(FakeTagger()), REQUEST, backend_key=EMBEDDED)
    assert [r.status for r in report.results] == [OK, FAILED]
    assert report.results[0].image_key == hashlib.sha256(_png(3)).hexdigest()
    assert "could not be read" in report.results[1].reason and report.results[1].image_key == ""
    assert len(good.reads) == 2  # hashed once, decoded once: the bytes are not kept in between


def test_analyse_batch_keeps_bounded_thumbnails_from_the_same_read(monkeypatch):
    """Issue 18 item 11: the Batch table's thumbnails come from the analysis read, at most THUMBNAILS_KEPT."""
    import io as _io

    from PIL import Image as _Image

    from tagging.batch import _analysis
    from tagging.batch._engine import BatchItem, ItemResult
    from tagging.models import Tag

    monkeypatch.setattr(_analysis, "THUMBNAILS_KEPT", 2)
    items, results = {}, []
    for i, colour in enumerate([(250, 0, 0), (0, 250, 0), (0, 0, 250)]):
        buffer = _io.BytesIO()
        _Image.new("RGB", (400, 200), colour).save(buffer, "PNG")
        item = BatchItem(f"{i}.png", data=buffer.getvalue())
        items[item.known_sha256] = item
        results.append(ItemResult(i, item.name, item.known_sha256, "ok", payload={"result": {"tags": []}},
                                  tags=(Tag("x", 90.0),)))
    thumbs: dict[str, bytes] = {}
    found = _analysis.analyse_batch(results, items, faces_known=False, thumbnails=thumbs)
    assert len(found) == 3 and list(thumbs) == [r.image_key for r in results[:2]]
    with _Image.open(_io.BytesIO(thumbs[results[0].image_key])) as picture:
        assert picture.format == "JPEG" and max(picture.size) == _analysis.THUMBNAIL_SIDE
        assert picture.getpixel((10, 10))[0] > 200  # the red image's
