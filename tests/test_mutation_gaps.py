"""Behaviours a mutation pass could break without any test failing (issue 10).

Each test names the mutation it kills. They use the real store (SQLite), the loopback Imagga
stand-in with its request timestamps, and the real engine; nothing here times the wall clock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import sqlite3
import threading
from typing import Any

import pytest
from PIL import Image

from tagging.backends import EMBEDDED, EmbeddedBackend, ImaggaBackend, TagRequest
from tagging.batch import FAILED, MAX_CONCURRENCY, OK, BatchItem, BatchJob, PerThreadImagga, run_batch, tag_frequency
from tagging.batch import _engine as engine
from tagging.images import LoadedImage
from tagging.imagga import ImaggaClient, ImaggaCredentials
from tagging.models import Tag
from tagging.rules import auto_select
from tagging.store import FeedbackItem, LibraryEntry, ResultCache, Store, open_result_cache
from tagging.store.library import tag_counts
from tests.imagga_standin import TEST_API_KEY, TEST_API_SECRET, ImaggaStandin, serve
from tests.markdown import shown

CREDENTIALS = ImaggaCredentials(TEST_API_KEY, TEST_API_SECRET)
REQUEST = TagRequest(language="en", mode="upload")


def _png(index: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (index * 37 % 256, index * 91 % 256, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def _answer(*tags: tuple[str, float]) -> dict[str, Any]:
    return {"result": {"tags": [{"confidence": c, "tag": {"en": t}} for t, c in tags]},
            "status": {"text": "", "type": "success"}}


# --- ties are broken by name, whatever order the names arrive in -------------------------------
def test_tag_counts_ties_are_by_name_when_the_names_do_not_arrive_alphabetically():
    # mutation: dropping "tag" from the sort keeps insertion order, which was alphabetical in every test
    entries = [LibraryEntry(k, f"{k}.jpg", "Upload", "embedded", "en", tags, len(tags), "2025-01-01")
               for k, tags in [("a", ("zebra", "mango")), ("b", ("zebra", "apple", "mango")), ("c", ("kiwi",))]]
    counts = tag_counts(entries)
    assert list(counts["tag"]) == ["mango", "zebra", "apple", "kiwi"]  # 2, 2 by name; then 1, 1 by name


def test_tag_frequency_ties_are_by_name_when_the_names_do_not_arrive_alphabetically():
    class Tagger:
        def tag_batch(self, images):
            return [_answer(("zebra", 90), ("mango", 80), ("apple", 70)) for _ in images]

    report = run_batch([("x.png", _png(1)), ("y.png", _png(2))], EmbeddedBackend(tagger=Tagger()),
                       REQUEST, backend_key=EMBEDDED)
    frame = tag_frequency(report.results, 60, 0)
    assert list(frame["tag"]) == ["apple", "mango", "zebra"]  # all on 2 images: by name


def test_auto_select_ties_at_the_floor_keep_the_backends_order_not_the_alphabet():
    # mutation: sorting by (-confidence, name) gives ["top", "alpha", "mid"]
    tied = [Tag("top", 90), Tag("zeta", 40), Tag("alpha", 40), Tag("mid", 40)]
    assert auto_select(tied, threshold=60, min_tags=3) == ["top", "zeta", "alpha"]


def test_an_override_plus_the_floor_keeps_confidence_order():
    # mutation: without the final sort the floor's tags come after the override's
    tags = [Tag("sky", 95), Tag("cloud", 70), Tag("bird", 30), Tag("wing", 20)]
    assert auto_select(tags, threshold=99, min_tags=3, overrides={"wing": 10}) == ["sky", "cloud", "wing"]


# --- the cache key ------------------------------------------------------------------------------
ALTERED = {
    "language": "de", "mode": "two_step", "downscale_to": 800, "limit": 5, "threshold": 30.0,
    "decrease_parents": True, "verbose": True, "tagger_id": "mine", "extra_languages": ("fr",),
}


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(TagRequest)])
def test_every_tag_request_field_changes_the_cache_key(name):
    # mutation: leaving a field out of cache_key() answers one parameter set with another's tags
    assert name in ALTERED, f"a new TagRequest field {name!r} needs a value here"
    assert TagRequest().cache_key() != dataclasses.replace(TagRequest(), **{name: ALTERED[name]}).cache_key()


# --- the store ----------------------------------------------------------------------------------
def _save(store: Store, key: str, filename: str, **kw) -> Any:
    return store.save_feedback(image_key=key, filename=filename, source="Upload", backend="embedded", language="en",
                               threshold=60, min_tags=3, items=[FeedbackItem("cat", 90, True)], **kw)


def test_saving_again_without_a_thumbnail_keeps_the_stored_one(tmp_path):
    # mutation: writing excluded.thumbnail instead of COALESCE(...) drops it on a URL re-save
    store = Store(tmp_path / "t.db")
    _save(store, "k", "cat.jpg", thumbnail=b"\xff\xd8first")
    _save(store, "k", "cat.jpg", thumbnail=None)
    assert store.thumbnail("k") == b"\xff\xd8first"
    _save(store, "k", "cat.jpg", thumbnail=b"\xff\xd8second")
    assert store.thumbnail("k") == b"\xff\xd8second"


def test_the_library_lists_the_newest_first(tmp_path):
    # mutation: an ascending sort, or one by name, lists them b, c, a or a, b, c
    db = tmp_path / "t.db"
    store = Store(db)
    for key, filename, when in [("k1", "b.jpg", "2024-01-01T10:00:00+00:00"),
                                ("k2", "a.jpg", "2025-03-01T10:00:00+00:00"),
                                ("k3", "c.jpg", "2024-06-01T10:00:00+00:00")]:
        _save(store, key, filename)
        with sqlite3.connect(db) as conn:  # saved at different times, without waiting for them
            conn.execute("UPDATE feedback SET saved_at = ? WHERE image_key = ?", (when, key))
            conn.execute("UPDATE verdict_sets SET saved_at = ? WHERE image_key = ?", (when, key))
    assert [e.filename for e in store.library_entries()] == ["a.jpg", "c.jpg", "b.jpg"]


# --- the engine against the Imagga stand-in -------------------------------------------------------
@pytest.fixture(scope="module")
def _server():
    with serve(ImaggaStandin()) as (server, base_url):
        server.base_url = base_url
        yield server


@pytest.fixture
def standin(_server):
    _server.reset()
    _server.latency = 0.0
    return _server


def test_a_429_pauses_every_worker_for_the_retry_after_window(standin, monkeypatch):
    # mutations: no shared pause (only the refused image waits), or no wait before a request
    images = [("a.png", _png(1)), ("b.png", _png(2)), ("c.png", _png(3))]
    digest = {name: hashlib.sha256(data).hexdigest() for name, data in images}
    held = threading.Event()
    holds: list[float] = []
    original_hold = engine._Pause.hold

    def hold(self, seconds):
        original_hold(self, seconds)
        holds.append(self._until)
        held.set()

    monkeypatch.setattr(engine._Pause, "hold", hold)
    standin.fail("rate_limit", times=1, retry_after="0.5", path="/v2/tags", image_sha256=digest["a.png"])
    # b's first answer comes only once the batch has paused, so its worker's next image (c) is sent
    # during the pause window unless the pause holds every worker.
    standin.fail("slow", times=1, delay=10, gate=held, path="/v2/tags", image_sha256=digest["b.png"])
    factory = PerThreadImagga(CREDENTIALS, standin.base_url, retries=0)  # the batch handles the 429 itself
    report = run_batch(images, ImaggaBackend(ImaggaClient(CREDENTIALS, base_url=standin.base_url)), REQUEST,
                       backend_key="imagga:test", concurrency=2, backend_factory=factory)
    assert [r.status for r in report.results] == [OK, OK, OK]
    (until,) = holds
    posts = [r for r in standin.requests if r.path == "/v2/tags"]
    refused = next(r for r in posts if hashlib.sha256(r.files["image"][1]).hexdigest() == digest["a.png"])
    later = [r for r in posts if r.received > refused.received and r is not refused
             and hashlib.sha256(r.files["image"][1]).hexdigest() != digest["b.png"]]
    assert {hashlib.sha256(r.files["image"][1]).hexdigest() for r in later} == {digest["a.png"], digest["c.png"]}
    assert until - refused.received >= 0.5  # the window starts when the 429 came back
    assert all(r.received >= until for r in later)  # a's retry and c, on the other worker, both waited


def test_never_more_than_sixteen_requests_in_flight(standin):
    # mutation: min(concurrency, MAX_CONCURRENCY) -> concurrency lets 24 workers run at once
    gate = threading.Event()
    standin.fail("slow", delay=20, gate=gate, path="/v2/tags")

    def open_when_full() -> None:
        for _ in range(400):  # at most 20 s
            if standin.in_flight >= MAX_CONCURRENCY:
                threading.Event().wait(0.3)  # room for any request beyond the cap to arrive too
                break
            threading.Event().wait(0.05)
        gate.set()

    opener = threading.Thread(target=open_when_full, daemon=True)
    opener.start()
    try:
        factory = PerThreadImagga(CREDENTIALS, standin.base_url, retries=0)
        report = run_batch([(f"p{i}.png", _png(i)) for i in range(24)], ImaggaBackend(ImaggaClient(
            CREDENTIALS, base_url=standin.base_url)), REQUEST, backend_key="imagga:test", concurrency=24,
            backend_factory=factory)
    finally:
        gate.set()
        opener.join(30)
    assert report.count(OK) == 24
    assert MAX_CONCURRENCY == 16
    assert standin.max_in_flight == MAX_CONCURRENCY == report.max_in_flight


def _key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Backend:
    """A per-image backend (thread pool path) with scripted answers by image bytes."""

    name = "scripted"
    languages = ("en",)

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers

    def tag_image(self, image: LoadedImage, request: TagRequest) -> dict[str, Any]:
        answer = self.answers[image.sha256]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_an_answer_the_parser_rejects_is_never_cached(tmp_path):
    # mutation: storing the payload before parse_tags caches a broken answer for good
    cache = ResultCache(tmp_path / "cache.db")
    good, bad = _png(1), _png(2)
    backend = _Backend({_key(good): _answer(("cat", 90)), _key(bad): {"result": {"tags": [{"tag": {"en": "dog"}}]}}})
    report = run_batch([("good.png", good), ("bad.png", bad)], backend, REQUEST, backend_key="x", cache=cache)
    assert [r.status for r in report.results] == [OK, FAILED]
    assert "could not be read" in report.results[1].reason
    assert cache.get("x", hashlib.sha256(bad).hexdigest(), REQUEST.cache_key()) is None
    assert len(cache) == 1


def test_an_unexpected_error_in_one_image_fails_only_that_image():
    # mutation: without the engine's catch-all, a RuntimeError ends the whole batch
    one, two, three = _png(1), _png(2), _png(3)
    backend = _Backend({_key(one): _answer(("a", 90)), _key(two): RuntimeError("boom in a plugin"),
                        _key(three): _answer(("c", 90))})
    report = run_batch([("1.png", one), ("2.png", two), ("3.png", three)], backend, REQUEST, backend_key="x",
                       concurrency=1)
    assert [r.status for r in report.results] == [OK, FAILED, OK]
    assert "unexpected error (RuntimeError): boom in a plugin" in report.results[1].reason


class _Unreadable:
    """A source whose read fails with an error no source documents (not SourceReadError)."""

    def read(self) -> bytes:
        raise OSError("the disk went away")


def test_a_crashed_batch_job_sets_its_error_and_keeps_what_finished():
    # mutation: without the except in BatchJob._run, the thread dies and error stays None
    class Tagger:
        def tag_batch(self, images):
            return [_answer(("cat", 90)) for _ in images]

    items = [BatchItem("ok.png", _png(1)), BatchItem("gone.png", source=_Unreadable())]
    job = BatchJob(items, EmbeddedBackend(tagger=Tagger()), REQUEST, backend_key=EMBEDDED).start()
    assert job.wait(30)
    assert job.error is not None and "ended unexpectedly" in job.error and "the disk went away" in job.error
    assert job.report is None
    assert [r.status for r in job.results()] == ["skipped", "skipped"]


def test_the_tag_page_never_caches_an_answer_the_parser_rejects(app, httpserver, monkeypatch, isolated_env):
    # mutation: dropping parse_tags from the page's _tag() stores the broken answer on disk for good
    broken = {"status": {"text": "", "type": "success"}, "result": {"tags": [{"tag": {"en": "dog"}}]}}
    httpserver.expect_request("/v2/tags", method="POST").respond_with_json(broken)
    monkeypatch.setenv("IMAGGA_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("IMAGGA_API_SECRET", TEST_API_SECRET)
    monkeypatch.setenv("IMAGGA_API_URL", httpserver.url_for("/v2"))
    at = app().run()
    assert not at.exception and "confidence" in shown(at.error)
    assert len(open_result_cache(str(isolated_env))) == 0
    at.run()
    assert len([r for r, _ in httpserver.log if r.path == "/v2/tags"]) == 2  # asked again, not answered from disk
