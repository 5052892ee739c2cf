"""tagging.review on SQLite and PostgreSQL: the queue walked step by step, undo, the union, cached answers."""

from __future__ import annotations

import pytest

from tagging.errors import SelectionError, StoreError
from tagging.review import (
    CACHE_BATCH,
    CACHED,
    QUEUE,
    STORED,
    ReviewSession,
    Rule,
    batch_label,
    queue_cached_answers,
)
from tagging.store import AUTOMATIC, REVIEWED, FeedbackItem, ResultCache, ReviewFilters, Store, store_backend

IMAGGA_KEY = "imagga:http://127.0.0.1:9/v2"  # how the pages key Imagga's answers in the result cache


def auto(store: Store, key: str, items, *, backend="embedded", language="en", batch="b1", saved_by="bob",
         filename=None):
    return store.save_feedback(image_key=key, filename=filename or f"{key}.jpg", source="batch", backend=backend,
                               language=language, threshold=60, min_tags=1, items=items, provenance=AUTOMATIC,
                               saved_by=saved_by, batch=batch, thumbnail=b"thumb-" + key.encode())


def seed(store: Store, n: int, **kw) -> None:
    """n automatic sets; image i's best tag is at 50 + i, so "nearest 57" starts at img07."""
    for i in range(n):
        auto(store, f"img{i:02}", [FeedbackItem(f"tag{i}", 50.0 + i, True), FeedbackItem("common", 5.0, False)], **kw)


def payload(*pairs: tuple[str, float], language: str = "en") -> dict:
    return {"result": {"tags": [{"confidence": c, "tag": {language: n}} for n, c in pairs]}}


@pytest.fixture
def store(open_db) -> Store:
    return open_db()


def session(store: Store, **kw) -> ReviewSession:
    kw.setdefault("rule", Rule(57.0, 1))
    kw.setdefault("analyst", "alice")
    return ReviewSession(store, **kw)


def walk(review: ReviewSession) -> list[str]:
    """Skip through the whole queue; the image keys in the order shown."""
    shown = []
    while review.current is not None:
        shown.append(review.current.item.image_key)
        review.skip()
    return shown


# --- order, paging, progress -------------------------------------------------------------------------
def test_nearest_first_then_every_entry_once_in_pages(store):
    seed(store, 12)
    review = session(store, page_size=3)
    assert review.start().item.image_key == "img07"
    shown = walk(review)
    # equal gaps: the later saved first, then the higher key (the store's tie rule)
    assert shown == ["img07", "img08", "img06", "img09", "img05", "img10", "img04", "img11", "img03", "img02",
                     "img01", "img00"]
    assert review.queries <= 12 // (3 - 1) + 2  # pages of 3, read with an overlap, not a query per step


def test_an_image_without_tags_is_reached_last_in_nearest_order_and_skips_are_counted_truly(store):
    seed(store, 3)
    auto(store, "empty", [])  # the tagger suggested nothing: still an entry to review
    review = session(store, page_size=2)
    review.start()
    assert review.total == 4
    assert walk(review) == ["img02", "img01", "img00", "empty"]
    assert review.skipped_count == 4 and review.remaining == 4
    review.reconfigure()  # "Go through them again"
    assert review.start().item.image_key == "img02" and review.skipped_count == 0
    review.decide([])
    review.skip()
    assert review.skipped_count == 1
    review.back()
    assert review.current_decided is None  # back on the skipped one: not decided
    review.back()
    assert review.current_decided == ()  # back on the decided one: what was accepted (nothing)


def test_blind_review_prefills_nothing_and_records_its_mode_and_missing_tags(store):
    seed(store, 2)
    review = session(store, blind=True)
    card = review.start()
    assert card.prefill and review.selection == ()  # the rule has a selection; a blind review does not show it
    review.decide(["tag1"], missing=[" dog", "dog ", ""])
    saved = store.verdict_set("img01", "embedded", "en")
    assert (saved.provenance, saved.review_mode, saved.missing_tags) == (REVIEWED, "blind", ("dog",))
    review.reconfigure(blind=False)
    assert review.start().item.image_key == "img00" and review.selection == review.current.prefill
    review.decide(list(review.selection))
    assert store.verdict_set("img00", "embedded", "en").review_mode == "prefilled"
    review.undo()
    review.undo()  # back on the first card: its note comes back with it; the set is automatic again
    assert review.current.item.image_key == "img01" and review.missing == ()
    assert store.verdict_set("img01", "embedded", "en").provenance == AUTOMATIC
    review.decide(["tag1"], missing=["cat"])
    review.back()
    assert review.missing == ("cat",) and review.current_decided == ("tag1",)


def test_newest_and_oldest_orders_and_filters(store):
    seed(store, 4)
    seed_b = [FeedbackItem("cat", 70.0, True)]
    auto(store, "x1", seed_b, backend="imagga", batch="b2")
    lazy = session(store)
    assert lazy.current is None and lazy.queries == 0  # nothing is read before start()
    newest = session(store, order="newest")
    newest.start()
    assert walk(newest) == ["x1", "img03", "img02", "img01", "img00"]
    oldest = session(store, order="oldest")
    oldest.start()
    assert walk(oldest) == ["img00", "img01", "img02", "img03", "x1"]
    for filters, expected in [(ReviewFilters(backend="imagga"), ["x1"]), (ReviewFilters(batch="b1"), 4),
                              (ReviewFilters(tag="tag2"), ["img02"]), (ReviewFilters(language="de"), [])]:
        review = session(store, order="oldest", filters=filters)
        review.start()
        found = walk(review)
        assert (len(found) if isinstance(expected, int) else found) == expected
    with pytest.raises(ValueError):
        session(store, order="random")


def test_decide_saves_a_review_and_moves_on_counting_progress_and_pace(store):
    seed(store, 5)
    now = [1000.0]
    review = session(store, clock=lambda: now[0])
    card = review.start()
    assert card.item.image_key == "img04"  # the nearest to 57 of 50..54
    assert review.selection == ("tag4",) and card.names == ["tag4", "common"]  # the rule (>= 57, at least 1)
    assert (review.reviewed_count, review.total, review.pace().images_per_minute) == (0, 5, None)
    now[0] += 30
    outcome = review.decide(["tag4"])
    assert (outcome.sets, outcome.accepted) == (1, 1)
    stored = store.verdict_set("img04", "embedded", "en")
    assert (stored.provenance, stored.saved_by, stored.threshold, stored.batch) == (REVIEWED, "alice", 57.0, "b1")
    assert store.feedback_for("img04", "embedded", "en") == [FeedbackItem("tag4", 54.0, True),
                                                             FeedbackItem("common", 5.0, False)]
    assert review.current.item.image_key == "img03"
    now[0] += 30
    review.decide([])  # reject all
    assert [it.accepted for it in store.feedback_for("img03", "embedded", "en")] == [False, False]
    assert (review.reviewed_count, review.remaining, review.total) == (2, 3, 5)
    assert store.review_count() == 3
    pace = review.pace()
    assert pace.images_per_minute == pytest.approx(2.0)  # two reviews in one minute
    assert pace.verdicts_per_minute == pytest.approx(4.0)  # two tags each
    now[0] += 3600  # an hour later, nothing in the last five minutes
    assert review.pace().images_per_minute is None


def test_whitelist_only_suggested_tags_and_nothing_saved(store):
    seed(store, 2)
    review = session(store)
    review.start()
    with pytest.raises(SelectionError, match="dog"):
        review.decide(["tag1", "dog"])
    assert store.verdict_set("img01", "embedded", "en").provenance == AUTOMATIC
    assert review.current.item.image_key == "img01" and review.reviewed_count == 0


def test_skip_back_and_undo(store):
    seed(store, 4)
    review = session(store, order="oldest")
    review.start()
    review.decide(["tag0"])  # img00 reviewed
    review.skip()  # img01 skipped
    assert review.current.item.image_key == "img02"
    assert review.back() and review.current.item.image_key == "img01"
    assert review.selection == ("tag1",)  # skipped: the rule's selection again
    assert review.back() and review.current.item.image_key == "img00"
    assert review.selection == ("tag0",)  # what was accepted on it
    review.decide([])  # judged again: now all rejected
    assert review.current.item.image_key == "img01" and review.reviewed_count == 1
    assert [it.accepted for it in store.feedback_for("img00", "embedded", "en")] == [False, False]

    review.undo()  # back to the first verdict on img00, shown again
    assert review.current.item.image_key == "img00" and review.selection == ("tag0",)
    assert store.verdict_set("img00", "embedded", "en").provenance == REVIEWED
    assert [it.accepted for it in store.feedback_for("img00", "embedded", "en")] == [True, False]
    review.undo()  # and back to the automatic verdicts, as saved by the batch
    assert store.verdict_set("img00", "embedded", "en").provenance == AUTOMATIC
    assert store.verdict_set("img00", "embedded", "en").batch == "b1"
    assert store.feedback_for("img00", "embedded", "en") == [FeedbackItem("tag0", 50.0, True),
                                                             FeedbackItem("common", 5.0, False)]
    assert review.undo() is None and review.reviewed_count == 0 and store.review_count() == 4
    assert review.current.item.image_key == "img00"
    assert walk(review) == ["img00", "img01", "img02", "img03"]  # nothing lost, nothing repeated


@pytest.mark.parametrize("order", ["nearest", "newest", "oldest"])
def test_undo_between_steps_keeps_the_queue_whole(store, order):
    seed(store, 9)
    expected = _started(session(store, order=order))  # skipping through changes nothing
    review = session(store, order=order, page_size=3)
    review.start()
    first_shown: list[str] = []
    decisions = 0
    while review.current is not None:
        key = review.current.item.image_key
        if key not in first_shown:
            first_shown.append(key)
        review.decide([])
        decisions += 1
        if decisions % 3 == 0:
            review.undo()  # the last one is shown again, then decided again
            assert review.current.item.image_key == key
    assert first_shown == expected  # every entry once, in the queue's order, none lost to the offsets
    assert store.review_count() == 0 and review.reviewed_count == 9


def _started(review: ReviewSession) -> list[str]:
    review.start()
    return walk(review)


def test_a_colleagues_review_in_between_is_named(store):
    seed(store, 1)
    review = session(store)
    review.start()
    store.save_feedback(image_key="img00", filename="img00.jpg", source="batch", backend="embedded", language="en",
                        threshold=60, min_tags=1, items=[FeedbackItem("tag0", 50.0, False)], saved_by="carol")
    assert review.decide(["tag0"]).replaced_others == ("carol",)


def test_history_and_undo_are_bounded(store, monkeypatch):
    from tagging import review as module

    monkeypatch.setattr(module, "HISTORY", 3)
    seed(store, 6)
    review = session(store)
    review.start()
    for _ in range(5):
        review.decide([])
    assert len(review.history) == 3 and len(review.undo_stack) == 3


# --- the union of two taggers -------------------------------------------------------------------------
def test_union_with_a_cached_answer_is_judged_once_saved_per_backend_and_undone(store):
    auto(store, "p1", [FeedbackItem("cat", 90.0, True), FeedbackItem("pet", 40.0, False)])
    cache = ResultCache(store)
    cache.put(IMAGGA_KEY, "p1", "req", payload(("cat", 80.0), ("grass", 62.0), ("pet", 30.0)))
    cache.put(IMAGGA_KEY, "p1", "req-de", payload(("Katze", 80.0), language="de"))  # another language: not a side
    cache.hits = cache.misses = 0
    review = session(store, union=True, cache=cache, rule=Rule(60.0, 1))
    card = review.start()
    assert [s.backend for s in card.sides] == ["embedded", "imagga"] and card.origins == (QUEUE, CACHED)
    assert card.names == ["cat", "grass", "pet"] and review.selection == ("cat", "grass")
    assert card.confidences("pet") == [40.0, 30.0] and card.confidences("grass") == [None, 62.0]
    review.decide(["cat", "pet"])
    assert store.feedback_for("p1", "embedded", "en") == [FeedbackItem("cat", 90.0, True),
                                                          FeedbackItem("pet", 40.0, True)]
    assert store.feedback_for("p1", "imagga", "en") == [FeedbackItem("cat", 80.0, True),
                                                        FeedbackItem("grass", 62.0, False),
                                                        FeedbackItem("pet", 30.0, True)]
    assert store.verdict_set("p1", "imagga", "en").provenance == REVIEWED
    [message] = store.pending("imagga")  # reviewed Imagga verdicts are queued for Imagga, not sent
    assert message.payload == {"image_sha256": "p1", "language": "en", "tags": [
        {"tag": "cat", "feedback": "positive"}, {"tag": "pet", "feedback": "positive"},
        {"tag": "grass", "feedback": "negative"}]}
    assert review.reviewed_count == 1  # one queue entry (the cached answer was never in the queue)

    review.undo()
    assert store.verdict_set("p1", "imagga", "en") is None  # judged from the cache: no set again
    assert store.verdict_set("p1", "embedded", "en").provenance == AUTOMATIC
    assert store.pending("imagga") == []  # the message was withdrawn before anyone sent it
    assert review.current.item.image_key == "p1"


def test_union_with_two_automatic_sets_takes_both_out_of_the_queue(store):
    auto(store, "p1", [FeedbackItem("cat", 90.0, True)], filename="one.jpg")
    auto(store, "p1", [FeedbackItem("cat", 70.0, True), FeedbackItem("dog", 65.0, True)], backend="imagga")
    auto(store, "p2", [FeedbackItem("car", 80.0, True)])
    review = session(store, union=True, order="oldest", rule=Rule(60.0, 1))
    card = review.start()
    assert card.origins == (QUEUE, STORED) and card.names == ["cat", "dog"]
    review.decide(["cat"])
    assert store.verdict_set("p1", "imagga", "en").provenance == REVIEWED
    assert [it.accepted for it in store.feedback_for("p1", "imagga", "en")] == [True, False]
    assert review.current.item.image_key == "p2"  # p1's Imagga entry is not shown again
    assert (review.reviewed_count, review.remaining) == (2, 1)
    review.decide([])
    assert review.current is None and store.review_count() == 0
    review.undo()
    review.undo()
    assert store.review_count() == 3 and review.current.item.image_key == "p1"


def test_without_union_the_other_tagger_waits_for_its_own_turn(store):
    auto(store, "p1", [FeedbackItem("cat", 90.0, True)])
    auto(store, "p1", [FeedbackItem("cat", 70.0, True)], backend="imagga")
    review = session(store, order="oldest")
    assert len(review.start().sides) == 1
    review.decide(["cat"])
    assert review.current.key == ("p1", "imagga", "en")


def test_a_failed_save_puts_back_what_it_saved(store, monkeypatch):
    auto(store, "p1", [FeedbackItem("cat", 90.0, True)])
    auto(store, "p1", [FeedbackItem("cat", 70.0, True)], backend="imagga")
    review = session(store, union=True, rule=Rule(60.0, 1))
    review.start()
    real = store.save_feedback

    def flaky(**kw):
        if kw["backend"] == "imagga" and kw["provenance"] == REVIEWED:
            raise StoreError("the database went away")
        return real(**kw)

    monkeypatch.setattr(store, "save_feedback", flaky)
    with pytest.raises(StoreError):
        review.decide(["cat"])
    assert store.verdict_set("p1", "embedded", "en").provenance == AUTOMATIC  # put back
    assert review.current.item.image_key == "p1" and review.reviewed_count == 0


# --- cached answers of known images into the queue ----------------------------------------------------
def test_cached_answers_of_known_images_join_the_queue_as_automatic(store):
    auto(store, "p1", [FeedbackItem("cat", 90.0, True)])
    auto(store, "p2", [FeedbackItem("Katze", 90.0, True)], backend="imagga", language="de")
    cache = ResultCache(store)
    cache.put(IMAGGA_KEY, "p1", "req", payload(("cat", 80.0), ("grass", 40.0)))
    cache.put("embedded", "p2", "req", payload(("cat", 70.0)))
    cache.put("embedded", "p1", "req", payload(("cat", 90.0)))  # judged already (automatic set exists)
    cache.put("embedded", "unknown", "req", payload(("cat", 70.0)))  # no images row: not in the library
    assert cache.count_unjudged() == 2
    assert queue_cached_answers(store, cache, Rule(60.0, 1), saved_by="alice") == 2
    assert cache.count_unjudged() == 0
    made = store.verdict_set("p1", "imagga", "en")
    assert (made.provenance, made.batch, made.saved_by) == (AUTOMATIC, CACHE_BATCH, "alice")
    assert store.feedback_for("p1", "imagga", "en") == [FeedbackItem("cat", 80.0, True),
                                                        FeedbackItem("grass", 40.0, False)]
    assert store.verdict_set("p2", "embedded", "en").provenance == AUTOMATIC  # "de" not in the answer: English
    review = session(store, filters=ReviewFilters(batch=CACHE_BATCH))
    review.start()
    assert sorted(walk(review)) == ["p1", "p2"]


def test_store_backend_names_and_batch_labels():
    from datetime import UTC, datetime

    assert store_backend(IMAGGA_KEY) == "imagga" and store_backend("embedded") == "embedded"
    assert store_backend("embedded:clip-b32") == "embedded:clip-b32"
    assert batch_label(12, datetime(2025, 6, 1, 14, 3, 7, tzinfo=UTC)) == "2025-06-01 14:03:07 UTC · 12 images"
