"""Behaviours a mutation pass could break without any test failing (issue 20, item 2).

Each test names the mutation it kills (checked by applying it, running the test, reverting it).
Time is a fake clock wherever a duration matters (the look time, the cache lease); the store is a
real SQLite file, HTTP goes to the loopback Imagga stand-in, and nothing times the wall clock.
"""

from __future__ import annotations

import io
import math
import struct
import types
import zipfile

import numpy as np
import pytest
import sqlalchemy as sa

from tagging import metrics
from tagging.backends import ImaggaBackend, TagRequest
from tagging.batch import FAILED, OK, PerThreadImagga, run_batch, scan_archive
from tagging.batch._archive import ARCHIVE_RATIO_FLOOR_BYTES, ArchiveError
from tagging.compare import OWN, POOLED, Side, TaggerSpec
from tagging.embedded._people import MIN_FACE_FRACTION, Face, FaceDetector
from tagging.embedded._tagger import EmbeddedTagger
from tagging.embedded._vocabulary import Calibration, Vocabulary, normalised_entropy
from tagging.errors import RateLimitError
from tagging.imagga import ImaggaClient, ImaggaCredentials
from tagging.review import OLDEST, ReviewSession, Rule
from tagging.store import AUTOMATIC, REVIEWED, FeedbackItem, ResultCache, Store, _schema, deliver_pending
from tagging.store import _cache as cache_module
from tests.imagga_standin import TEST_API_KEY, TEST_API_SECRET, ImaggaStandin, serve

RULE = Rule(60.0, 3)
ITEMS = [FeedbackItem("cat", 90.0, True), FeedbackItem("pet", 55.0, False), FeedbackItem("rug", 20.0, False)]


class Clock:
    """A fake monotonic clock: moves only when the test says so."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _automatic(store: Store, key: str, *, backend: str = "embedded", saved_by: str = "batcher",
               language: str = "en", items=ITEMS) -> None:
    store.save_feedback(image_key=key, filename=f"{key}.jpg", source="batch", backend=backend, language=language,
                        threshold=60, min_tags=3, items=items, provenance=AUTOMATIC, saved_by=saved_by,
                        batch="b1")


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "tagging.db")


# --- review ----------------------------------------------------------------------------------------
def test_reviewing_batch_output_does_not_say_you_replaced_someones_review(store):
    # mutation: dropping "and result.previous_provenance == REVIEWED" reports the batch's signer as replaced
    _automatic(store, "k1", saved_by="batcher")
    session = ReviewSession(store, RULE, order=OLDEST, analyst="alice", clock=Clock())
    session.start()
    assert session.decide(["cat"]).replaced_others == ()
    # the same path does report a real review by someone else (the test can see the message at all)
    _automatic(store, "k2", saved_by="batcher")
    session.reconfigure()
    assert session.start().item.image_key == "k2"
    store.save_feedback(image_key="k2", filename="k2.jpg", source="batch", backend="embedded", language="en",
                        threshold=60, min_tags=3, items=ITEMS, provenance=REVIEWED, saved_by="bob")
    assert session.decide(["cat"]).replaced_others == ("bob",)


def test_undo_puts_back_the_automatic_set_signed_by_whoever_saved_it(store):
    # mutation: _restore signing with the analyst (saved_by=self.analyst) instead of the snapshot's signer
    _automatic(store, "k1", saved_by="batcher")
    session = ReviewSession(store, RULE, order=OLDEST, analyst="alice", clock=Clock())
    session.start()
    session.decide(["cat"])
    assert store.verdict_set("k1", "embedded", "en").saved_by == "alice"
    session.undo()
    restored = store.verdict_set("k1", "embedded", "en")
    assert (restored.provenance, restored.saved_by, restored.batch) == (AUTOMATIC, "batcher", "b1")


def test_the_look_time_runs_from_when_the_card_was_shown_not_from_the_session_start(store):
    # mutation: looked_at measuring from self.started instead of self.shown_at
    for key in ("k1", "k2"):
        _automatic(store, key)
    clock = Clock(1000.0)
    session = ReviewSession(store, RULE, order=OLDEST, analyst="alice", clock=clock)
    clock.now += 60.0  # the analyst opened the page a minute ago; the first card arrives now
    session.start()
    clock.now += 0.05
    assert not session.looked_at(0.2)
    clock.now += 0.2
    assert session.looked_at(0.2)
    session.decide(["cat"])  # the next card is shown at this instant
    clock.now += 0.05  # a key held down repeats after ~30-50 ms
    assert not session.looked_at(0.2)


def test_the_union_never_re_offers_a_tagger_already_reviewed_on_the_image(store):
    # mutation: other_sides dropping "or answer.backend in judged"
    _automatic(store, "k1", backend="embedded")
    store.save_feedback(image_key="k1", filename="k1.jpg", source="batch", backend="imagga", language="en",
                        threshold=60, min_tags=3, items=ITEMS, provenance=REVIEWED, saved_by="bob")
    cache = ResultCache(store)
    answer = {"result": {"tags": [{"confidence": 88.0, "tag": {"en": "dog"}}]}, "status": {"type": "success"}}
    cache.put("imagga:http://127.0.0.1:9/v2", "k1", "req", answer)
    cache.put("second-model", "k1", "req", answer)  # a tagger nobody judged on k1: offered
    session = ReviewSession(store, RULE, order=OLDEST, union=True, analyst="alice", cache=cache, clock=Clock())
    card = session.start()
    assert [side.backend for side in card.sides] == ["embedded", "second-model"]


def test_queue_pages_overlap_so_another_analysts_saves_never_hide_an_entry(store):
    # mutation: _fill reading each page at self._scan (no overlap) instead of self._scan - overlap
    keys = [f"k{i:02d}" for i in range(12)]
    for key in keys:
        _automatic(store, key)
    alice = ReviewSession(store, RULE, order=OLDEST, analyst="alice", clock=Clock(), page_size=6)
    bob = ReviewSession(store, RULE, order=OLDEST, analyst="bob", clock=Clock(), page_size=6)
    first = alice.start().item.image_key
    bob.start()
    bob.skip()  # bob judges two entries alice has read but not reached yet
    bob.decide(["cat"])
    bob.decide(["cat"])
    decided_by_bob = {k for k in keys if store.verdict_set(k, "embedded", "en").provenance == REVIEWED}
    assert len(decided_by_bob) == 2 and first not in decided_by_bob
    seen = [first]
    while alice.current is not None:
        alice.skip()
        if alice.current is not None:
            seen.append(alice.current.item.image_key)
    assert set(keys) - decided_by_bob <= set(seen)  # every entry still waiting was shown to alice


# --- compare ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("scope", [POOLED, OWN])
def test_compare_scores_against_reviewed_verdicts_only(store, scope):
    # mutation: truth_for reading feedback_by_image(..., reviewed_only=False) (or feedback_groups(False))
    from ui.compare import truth_for

    store.save_feedback(image_key="r1", filename="r1.jpg", source="Upload", backend="embedded", language="en",
                        threshold=60, min_tags=3, items=[FeedbackItem("cat", 90.0, True)], saved_by="alice")
    _automatic(store, "a1", items=[FeedbackItem("dog", 80.0, True), FeedbackItem("cat", 30.0, False)])
    _automatic(store, "a2", backend="imagga", items=[FeedbackItem("sofa", 70.0, True)])
    side = Side(TaggerSpec("embedded", TagRequest(language="en", mode="upload")))
    truth = truth_for(store, side, scope, ["r1", "a1", "a2"])
    assert truth.verdicts == {"r1": {"cat": True}}


# --- outbox -----------------------------------------------------------------------------------------
def _outbox_rows(store: Store) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT idempotency_key, status FROM outbox ORDER BY id"))]


def test_enqueue_never_deletes_the_record_of_a_message_already_sent(store):
    # mutation: enqueue's delete dropping "status == PENDING"
    sent = store.enqueue(image_key="k1", backend="imagga", payload={"n": 1})
    store.mark_sent(sent, {"status": {"type": "success"}})
    newer = store.enqueue(image_key="k1", backend="imagga", payload={"n": 2})
    replaced = store.enqueue(image_key="k1", backend="imagga", payload={"n": 3})  # the unsent one is replaced
    assert _outbox_rows(store) == [(sent, "sent"), (replaced, "pending")] and newer != replaced


def test_undo_cannot_withdraw_a_message_a_server_is_sending_and_says_so(store):
    # mutation: withdraw dropping the "claimed_until is None or lapsed" condition
    _automatic(store, "k1", backend="imagga")
    session = ReviewSession(store, RULE, order=OLDEST, analyst="alice", clock=Clock())
    session.start()
    session.decide(["cat"])
    (message,) = store.pending("imagga")
    claimed = store.claim_next("imagga", "server-2")  # another app server is sending it right now
    assert claimed is not None and claimed.idempotency_key == message.idempotency_key
    outcome = session.undo()
    assert outcome.not_withdrawn == 1
    assert [key for key, _ in _outbox_rows(store)] == [message.idempotency_key]  # still there, for its sender
    assert store.verdict_set("k1", "imagga", "en").provenance == AUTOMATIC  # the review itself is undone


def test_migration_6_sends_reviewed_feedback_of_an_image_that_also_has_automatic_sets(tmp_path):
    # mutation: _v6_outbox_claims dropping "no reviewed set of this image" (holding reviewed feedback back)
    before = next(m.version for m in _schema.MIGRATIONS if m.apply is _schema._v6_outbox_claims) - 1
    store = Store(tmp_path / "old.db", migrate=False)
    store.migrate(2)
    with store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO images VALUES ('m1', 'm.jpg', 'batch', 2, 2, NULL, 't0', 't0'), "
                             "('a1', 'a.jpg', 'batch', 2, 2, NULL, 't0', 't0')"))
        for key, language in (("m1", "en"), ("m1", "de"), ("a1", "en")):
            conn.execute(sa.text(
                "INSERT INTO feedback (image_key, backend, language, tag, confidence, accepted, threshold, min_tags, "
                "saved_at) VALUES (:k, 'imagga', :l, 'cat', 90, 1, 60, 3, 't0')"), {"k": key, "l": language})
    store.migrate(3)  # every set of a batch-saved image is automatic here
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE verdict_sets SET provenance = :p WHERE image_key = 'm1' AND language = 'de'"),
                     {"p": REVIEWED})  # reviewed later in German
    store.migrate(before)
    with store.engine.begin() as conn:
        for key, image in (("k-mixed", "m1"), ("k-auto", "a1")):
            conn.execute(sa.text("INSERT INTO outbox (idempotency_key, image_key, backend, payload, status, "
                                 "created_at) VALUES (:k, :i, 'imagga', '{}', 'pending', 't')"), {"k": key, "i": image})
    store.migrate(before + 1)
    assert [p.idempotency_key for p in store.pending("imagga")] == ["k-mixed"]


class _Sender:
    def __init__(self, *answers):
        self.answers, self.calls = list(answers), []

    def send_feedback(self, payload, *, idempotency_key):
        self.calls.append(idempotency_key)
        answer = self.answers.pop(0) if self.answers else {"status": {"type": "success"}}
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_a_429_stops_the_delivery_round(store):
    # mutation: RateLimitError left out of _STOP_ON (the round would hammer a server that asked it to wait)
    for key in ("a", "b", "c"):
        store.enqueue(image_key=key, backend="imagga", payload={"k": key})
    sender = _Sender(RateLimitError("HTTP 429: slow down", retry_after=30.0))
    report = deliver_pending(store, sender, "imagga")
    assert len(sender.calls) == 1 and (report.sent, report.failed, report.remaining) == (0, 1, 3)


# --- result cache: the lease ------------------------------------------------------------------------
@pytest.fixture
def db_clock(monkeypatch) -> Clock:
    """The database's clock as the cache reads it (``db_epoch``), frozen until the test moves it."""
    clock = Clock(1_000_000.0)
    monkeypatch.setattr(cache_module, "db_epoch", lambda conn: clock.now)
    return clock


def test_the_lease_lapses_after_its_documented_30_seconds(store, db_clock):
    # mutations: LEASE_SECONDS other than 30; "expires_at < now" as "<=" or ">" in _claim
    assert cache_module.LEASE_SECONDS == 30.0
    cache = ResultCache(store)
    assert cache.lease_seconds == 30.0
    assert cache._claim("key", "crashed") is True
    db_clock.now += 29.9
    assert cache._claim("key", "waiter") is False  # still held
    db_clock.now += 0.1
    assert cache._claim("key", "waiter") is False  # lapses only after 30 s, not at
    db_clock.now += 0.1
    assert cache._claim("key", "waiter") is True  # taken over


def test_an_answer_stored_while_taking_the_lease_is_used_not_computed_again(store, db_clock, monkeypatch):
    # mutation: _claim without its re-check of the answer after the lease is taken
    cache = ResultCache(store)
    looks = {"n": 0}
    original = ResultCache._lookup

    def late_lookup(self, key):  # our look misses; the other holder stores its answer right after it
        looks["n"] += 1
        found = original(self, key)
        if looks["n"] == 1:
            cache.put("b", "img", "req", {"from": "the other server"})
        return found

    monkeypatch.setattr(ResultCache, "_lookup", late_lookup)
    computed = []
    payload, fresh = cache.get_or_compute("b", "img", "req", lambda: computed.append(1) or {"from": "here"})
    assert (payload, fresh, computed) == ({"from": "the other server"}, False, [])


def test_a_failed_compute_releases_the_lease_at_once(store, db_clock):
    # mutation: get_or_compute not calling _release when compute raises (waiters would wait out the 30 s)
    cache = ResultCache(store)

    def fails():
        raise RuntimeError("the backend fell over")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("b", "img", "req", fails)
    assert cache._claim(cache_module.cache_key("b", "img", "req"), "next caller") is True  # same instant


# --- zip intake --------------------------------------------------------------------------------------
_NO_SIGNATURE = bytes(range(256)) * 40  # 10,240 bytes; "PK" never appears in it


def _stored_zip(members: int, size: int = len(_NO_SIGNATURE)) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(members):
            archive.writestr(f"m{i:02d}.png", _NO_SIGNATURE[:size])
    return buffer.getvalue()


def _declare(data: bytes, *, file_size: int | None = None, compress_size: int | None = None,
             extra_on_first: int = 0) -> bytes:
    """The archive with every central-directory header declaring these sizes (what a forged zip can say)."""
    raw = bytearray(data)
    end = raw.rindex(b"PK\x05\x06")
    position = struct.unpack_from("<I", raw, end + 16)[0]
    first = True
    while raw[position:position + 4] == b"PK\x01\x02":
        if compress_size is not None:
            struct.pack_into("<I", raw, position + 20, compress_size)
        if file_size is not None:
            struct.pack_into("<I", raw, position + 24, file_size + (extra_on_first if first else 0))
        first = False
        name, extra, comment = struct.unpack_from("<HHH", raw, position + 28)
        position += 46 + name + extra + comment
    return bytes(raw)


def test_the_whole_archive_check_clamps_lying_compressed_sizes_to_the_archive_size():
    # mutation: compressed = sum(compress_size) without min(..., archive_size)
    honest = _stored_zip(10)
    # Each member declares 1 MB (not a bomb on its own: 1 MB is the per-member floor) and, falsely, 1 MB
    # compressed: 10 MB from 10 MB claimed, 1:1. The archive really has 100 KB, so 10 MB is 100:1+.
    forged = _declare(honest, file_size=1024 * 1024, compress_size=1024 * 1024)
    with pytest.raises(ArchiveError, match="zip bomb"):
        scan_archive(forged, "forged.zip")


def test_the_whole_archive_ratio_is_100_to_1_exactly():
    # mutations: DEFAULT_MAX_RATIO other than 100; "expanded > max_ratio * compressed" as ">="
    archive = _stored_zip(10)  # 10 x 10,240 bytes stored: compressed 102,400 as declared
    compressed = 10 * len(_NO_SIGNATURE)
    each = 100 * compressed // 10  # 1,024,000: at the per-member floor, so only the whole-archive check applies
    assert 10 * each > ARCHIVE_RATIO_FLOOR_BYTES and 10 * each == 100 * compressed
    index = scan_archive(_declare(archive, file_size=each), "exactly-100.zip")
    assert len(index.members) == 10 and index.declared_bytes == 100 * compressed
    with pytest.raises(ArchiveError, match="zip bomb"):
        scan_archive(_declare(archive, file_size=each, extra_on_first=1), "just-over.zip")


# --- batch: 429 retries -------------------------------------------------------------------------------
def _png(index: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (index * 37 % 256, 90, 200)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(("refusals", "status", "posts"), [(2, OK, 3), (3, FAILED, 3)])
def test_the_batch_makes_exactly_the_configured_429_retries(refusals, status, posts, monkeypatch):
    # mutations: range(RATE_LIMIT_RETRIES) (one retry fewer), "attempt == RATE_LIMIT_RETRIES - 1", more retries
    from tagging.batch import _engine

    assert _engine.RATE_LIMIT_RETRIES == 2
    with serve(ImaggaStandin()) as (standin, url):
        standin.fail("rate_limit", times=refusals, retry_after="0.01", path="/v2/tags")
        credentials = ImaggaCredentials(TEST_API_KEY, TEST_API_SECRET)
        backend = ImaggaBackend(ImaggaClient(credentials, base_url=url, retries=0))
        report = run_batch([("a.png", _png(1))], backend, TagRequest(language="en", mode="upload"),
                           backend_key="imagga:test", concurrency=1,
                           backend_factory=PerThreadImagga(credentials, url, retries=0))
        assert [r.status for r in report.results] == [status]
        assert standin.count("POST", "/v2/tags") == posts


# --- embedded: the calibration, the person formula, the smallest face ---------------------------------
def _vocabulary(setting: bool = False) -> Vocabulary:
    # terms: "a" (class 0), "broad" (classes 0 and 1: half the classes), "person" (class 2); 4 classes
    return Vocabulary(
        names=["a", "broad", "person"], parents=[-1, -1, -1], depths=[0, 0, 0],
        setting=np.array([False, setting, False]),
        pair_classes=np.array([0, 0, 1, 2]), pair_terms=np.array([0, 1, 1, 2]),
        pair_weights=np.array([1.0, 1.0, 1.0, 1.0]), num_classes=4,
    )


def test_the_chance_correction_divides_by_one_minus_c_for_an_unsure_photo():
    # mutation: (masses - chance) without "/ (1 - chance)"
    vocabulary = _vocabulary()
    probabilities = np.array([0.4, 0.3, 0.2, 0.1])
    u = -sum(p * math.log(p) for p in probabilities) / math.log(4)
    assert normalised_entropy(probabilities) == pytest.approx(u)
    confidences = vocabulary.confidences(probabilities, Calibration(chance_weight=1.0, certainty_power=0.0))
    c = u * 0.5  # the broad term covers half the classes
    assert confidences[1] == pytest.approx(100 * (0.7 - c) / (1 - c))
    assert confidences[0] == pytest.approx(100 * (0.4 - u * 0.25) / (1 - u * 0.25))


def _tagger(vocabulary: Vocabulary) -> EmbeddedTagger:
    tagger = object.__new__(EmbeddedTagger)  # the response step only: no model is loaded
    tagger.vocabulary, tagger.calibration = vocabulary, Calibration()
    tagger.min_confidence, tagger.max_tags, tagger._person = 1.0, 10, vocabulary.index["person"]
    return tagger


def test_a_face_and_the_clothing_cue_combine_as_independent_evidence_of_a_person():
    # mutations of person = 100 * (1 - (1 - face/100) * (1 - cue/100)): max, sum, product, face alone
    tagger = _tagger(_vocabulary())
    answer = tagger.response(np.array([0.0, 0.5, 0.5, 0.0]), [])  # no face: "person" is the cue alone
    assert {t["tag"]["en"]: t["confidence"] for t in answer["result"]["tags"]}["person"] == pytest.approx(50.0)
    answer = tagger.response(np.array([0.0, 0.5, 0.5, 0.0]), [Face(0.6, (0.1, 0.1, 0.3, 0.3))])
    tags = {t["tag"]["en"]: t for t in answer["result"]["tags"]}
    assert tags["person"]["confidence"] == pytest.approx(80.0)  # 1 - 0.4 x 0.5
    assert tags["face"]["confidence"] == pytest.approx(60.0) and tags["face"]["parent"] == {"en": "person"}


def test_the_smallest_face_is_4_percent_of_the_photo_wide(monkeypatch):
    # mutations: MIN_FACE_FRACTION other than 0.04; "<" as "<="
    from tagging.embedded import _people

    assert MIN_FACE_FRACTION == 0.04
    boxes = np.array([[0.10, 0.1, 0.10 + 0.0399, 0.14], [0.0, 0.5, 0.04, 0.54], [0.80, 0.8, 0.8401, 0.84]])
    scores = np.array([0.9, 0.8, 0.7])
    monkeypatch.setattr(_people, "decode", lambda raw_boxes, raw_scores: (boxes, scores))
    detector = types.SimpleNamespace(min_score=0.5)
    faces = FaceDetector._faces(detector, boxes, scores, (0.0, 0.0, 1.0, 1.0))
    assert [round(f.score, 2) for f in faces] == [0.8, 0.7]  # 3.99 % is too small; exactly 4 % is a face


# --- metrics: the stability interval -----------------------------------------------------------------
def _feedback(images: dict[str, list[tuple[str, float, bool]]]) -> dict[str, list[FeedbackItem]]:
    return {key: [FeedbackItem(t, c, a) for t, c, a in items] for key, items in images.items()}


def test_resamples_that_recommend_nothing_count_against_stability():
    # mutation: within = (share of the resamples that recommend something) instead of all resamples
    feedback = _feedback({"yes": [("cat", 80.0, True), ("dog", 20.0, False)],
                          **{f"no{i}": [("cat", 70.0, False), ("dog", 30.0, False)] for i in range(4)}})
    stability = metrics.threshold_stability(feedback, 1, resamples=200, seed=3)
    assert stability.threshold is not None and stability.undecided > 40  # (4/5)^5 of resamples miss "yes"
    assert stability.within <= (stability.resamples - stability.undecided) / stability.resamples
    assert not stability.stable


def test_the_stability_interval_is_the_5th_to_95th_percentile_of_the_resamples(monkeypatch):
    # mutations: percentiles other than [5, 95] (e.g. [0, 100], [10, 90], [2.5, 97.5])
    rng = np.random.default_rng(3)  # 40 images, one tag each; accepted more often the higher its confidence
    feedback = {}
    for i in range(40):
        confidence = float(rng.integers(1, 100))
        accepted = bool(rng.random() < 1 / (1 + math.exp(-(confidence - 50) / 8)))
        feedback[f"i{i}"] = [FeedbackItem("t", confidence, accepted)]
    picks: list[int | None] = []
    original = metrics._pick

    def spy(*args):
        picks.append(original(*args))
        return picks[-1]

    monkeypatch.setattr(metrics, "_pick", spy)
    stability = metrics.threshold_stability(feedback, 0, resamples=400, seed=0)
    found = np.sort([metrics.THRESHOLDS[p] for p in picks[1:] if p is not None])  # picks[0] is the point itself
    n = len(found)
    assert n == stability.resamples - stability.undecided and len(set(found)) > 8  # spread enough to tell
    # nearest-rank percentiles: at least 5 % of the resamples at or below low, at most 5 % strictly below
    assert np.sum(found < stability.low) <= 0.05 * n < np.sum(found <= stability.low)
    assert np.sum(found > stability.high) <= 0.05 * n < np.sum(found >= stability.high)
    assert found[0] < stability.low and stability.high < found[-1]  # not the extremes
