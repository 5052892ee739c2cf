"""The store on SQLite and on a real PostgreSQL: saves, migrations, concurrency, provenance, errors."""

from __future__ import annotations

import sqlite3
import threading

import pytest
import sqlalchemy as sa

from tagging.errors import SchemaVersionError, StoreConfigError, StoreError, StoreUnavailableError
from tagging.store import (
    AUTOMATIC,
    BLIND,
    MIGRATIONS,
    REVIEWED,
    SCHEMA_VERSION,
    FeedbackItem,
    ReviewFilters,
    Store,
    cache_key,
    display,
    open_result_cache,
    without_password,
)
from tagging.store import _review_queue as queue_module
from tests.legacy_schema import make_legacy_cache, make_legacy_db

ITEMS = [FeedbackItem("cat", 91.0, True, "feline"), FeedbackItem("dog", 12.5, False)]


def save(store: Store, key: str = "abc", items=ITEMS, **kw):
    args = dict(image_key=key, filename="cat.jpg", source="Upload", backend="embedded", language="en",
                threshold=60.0, min_tags=3, items=items)
    args.update(kw)
    return store.save_feedback(**args)


def raw_counts(store: Store) -> tuple[int, int]:
    """(images with a verdict, verdicts) counted over the rows, at any schema version."""
    return tuple(sql(store, "SELECT COUNT(DISTINCT image_key), COUNT(*) FROM feedback")[0])


def sql(store: Store, statement: str, **params) -> list:
    """Run raw SQL on the store's database in its own transaction; rows if it returns any."""
    with store.engine.begin() as conn:
        result = conn.execute(sa.text(statement), params)
        return result.all() if result.returns_rows else []


# --- basics, on both databases ------------------------------------------------------------------
def test_new_database_is_migrated(open_db):
    store = open_db()
    assert store.schema_version() == SCHEMA_VERSION
    if store.dialect == "sqlite":
        with sqlite3.connect(store.path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION  # old apps refuse it
        conn.close()


def test_save_and_read_back(open_db):
    store = open_db()
    result = save(store, thumbnail=b"\xff\xd8thumb", width=10, height=20)
    assert (result.items, result.accepted, result.replaced, result.replaced_other) == (2, 1, False, False)
    assert store.feedback_for("abc", "embedded", "en") == ITEMS
    assert store.counts() == (1, 2)
    assert store.thumbnail("abc") == b"\xff\xd8thumb"


def test_saving_same_image_again_replaces_and_says_whose(open_db):
    store = open_db()
    first = save(store, saved_by="alice")
    alice_at = store.verdict_set("abc", "embedded", "en").saved_at
    result = save(store, items=[FeedbackItem("cat", 91.0, False)], saved_by="bob")
    assert result.replaced and result.replaced_other and first.previous_saved_by is None
    assert (result.previous_saved_by, result.previous_saved_at, result.previous_provenance) == (
        "alice", alice_at, REVIEWED)
    assert store.feedback_for("abc", "embedded", "en") == [FeedbackItem("cat", 91.0, False)]
    assert store.verdict_set("abc", "embedded", "en").saved_by == "bob"
    assert store.counts() == (1, 1)
    own = save(store, saved_by="bob")  # your own earlier verdict: replaced, but nobody else's
    assert own.replaced and not own.replaced_other
    save(store, backend="imagga")  # another backend or language is a separate record
    assert store.counts() == (1, 4)


def test_resave_without_thumbnail_keeps_the_stored_one(open_db):
    store = open_db()
    save(store, thumbnail=b"\xff\xd8one", width=4, height=3)
    save(store, filename="renamed.jpg")
    assert store.thumbnail("abc") == b"\xff\xd8one"
    [entry] = store.library_entries()
    assert (entry.filename, entry.width, entry.height) == ("renamed.jpg", 4, 3)


def test_data_survives_reopen(open_db):
    save(open_db())
    assert open_db().counts() == (1, 2)


def test_settings_roundtrip(open_db):
    store = open_db()
    assert store.get_setting("default_threshold", 60) == 60
    store.set_setting("default_threshold", 42.5)
    store.set_setting("default_threshold", 43)
    assert open_db().get_setting("default_threshold") == 43


def test_outbox_lifecycle(open_db):
    store = open_db()
    k1 = store.enqueue(image_key="abc", backend="imagga", payload={"tags": ["cat"]})
    k2 = store.enqueue(image_key="abc", backend="imagga", payload={"tags": ["dog"]})
    pending = store.pending()
    assert [p.idempotency_key for p in pending] == [k2] and k1 != k2  # newest verdict replaces unsent
    store.mark_failed(k2, "429")
    again = open_db().pending("imagga")  # survives a restart
    assert again[0].attempts == 1 and again[0].last_error == "429" and again[0].payload == {"tags": ["dog"]}
    store.mark_sent(k2, {"status": {"type": "success"}})
    assert store.pending() == []
    k3 = store.enqueue(image_key="abc", backend="imagga", payload={"tags": ["cow"]})
    assert [p.idempotency_key for p in store.pending()] == [k3]  # sent record kept, new one queued


def test_a_claimed_message_is_not_claimed_again_until_its_lease_lapses(open_db):
    store = open_db()
    key = store.enqueue(image_key="a", backend="imagga", payload={"n": 1})
    first = store.claim_next("imagga", "server-1")
    assert first.idempotency_key == key
    assert store.claim_next("imagga", "server-2") is None  # server 1 is sending it
    # enqueueing a newer verdict does not pull the message out from under its sender
    newer = store.enqueue(image_key="a", backend="imagga", payload={"n": 2})
    assert [p.idempotency_key for p in store.pending()] == [key, newer]
    assert store.claim_next("imagga", "server-2").idempotency_key == newer
    store.mark_failed(key, "timeout")  # a failure lets go of the claim at once
    assert store.claim_next("imagga", "server-2").idempotency_key == key
    lapsed = store.enqueue(image_key="b", backend="imagga", payload={"n": 3})
    assert store.claim_next("imagga", "crashed", after_id=10**9) is None  # nothing after that id
    assert store.claim_next("imagga", "crashed", lease_seconds=-1).idempotency_key == lapsed
    assert store.claim_next("imagga", "server-3").idempotency_key == lapsed  # the crashed claim has lapsed


def test_delete_image_takes_its_verdicts(open_db):
    store = open_db()
    save(store, "a")
    save(store, "a", backend="imagga", provenance=AUTOMATIC)
    save(store, "b")
    assert store.delete_image("a") == 4
    assert store.counts() == (1, 2)
    assert store.verdict_set("a", "imagga", "en") is None and store.review_count() == 0
    assert store.delete_image("a") == 0


# --- provenance -----------------------------------------------------------------------------
def test_automatic_save_never_replaces_a_review(open_db):
    store = open_db()
    save(store, saved_by="alice")
    kept = save(store, items=[FeedbackItem("cat", 91.0, False)], provenance=AUTOMATIC, saved_by="batch-bob")
    assert kept.kept and not kept.replaced and kept.items == 0 and kept.previous_saved_by == "alice"
    assert store.feedback_for("abc", "embedded", "en") == ITEMS
    assert store.verdict_set("abc", "embedded", "en").provenance == REVIEWED
    # the other way round: a review replaces automatic verdicts
    save(store, "img2", provenance=AUTOMATIC, saved_by="bob")
    reviewed = save(store, "img2", items=[FeedbackItem("cat", 91.0, False)], saved_by="alice")
    assert reviewed.replaced and reviewed.replaced_other and reviewed.previous_provenance == AUTOMATIC
    assert store.verdict_set("img2", "embedded", "en").provenance == REVIEWED
    undone = save(store, "img2", provenance=AUTOMATIC, saved_by="bob", replace_reviewed=True)  # undo a review
    assert undone.replaced and not undone.kept and store.verdict_set("img2", "embedded", "en").provenance == AUTOMATIC
    assert store.feedback_for("img2", "embedded", "en") == ITEMS
    with pytest.raises(ValueError, match="provenance"):
        save(store, provenance="guessed")


def test_tune_queries_use_reviewed_verdicts_unless_asked(open_db):
    store = open_db()
    save(store, "r", [FeedbackItem("cat", 90, True)])
    save(store, "a", [FeedbackItem("cat", 80, True), FeedbackItem("dog", 10, False)], provenance=AUTOMATIC)
    save(store, "x", [FeedbackItem("car", 70, True)], backend="imagga", provenance=AUTOMATIC)
    assert [(g.backend, g.images, g.verdicts) for g in store.feedback_groups()] == [("embedded", 1, 1)]
    assert [(g.backend, g.images, g.verdicts) for g in store.feedback_groups(reviewed_only=False)] == [
        ("embedded", 2, 3), ("imagga", 1, 1)]
    assert store.feedback_by_image("embedded", "en") == {"r": [FeedbackItem("cat", 90, True)]}
    assert set(store.feedback_by_image("embedded", "en", reviewed_only=False)) == {"r", "a"}
    assert store.awaiting_review() == 2 and store.awaiting_review("embedded", "en") == 1
    assert store.provenance_counts() == {REVIEWED: 1, AUTOMATIC: 2}
    assert store.provenance_counts("imagga") == {REVIEWED: 0, AUTOMATIC: 1}


def test_library_entries_carry_and_filter_provenance(open_db):
    store = open_db()
    save(store, "r", saved_by="alice")
    save(store, "a", provenance=AUTOMATIC, saved_by="bob")
    entries = {e.image_key: e for e in store.library_entries()}
    assert (entries["r"].provenance, entries["r"].saved_by) == (REVIEWED, "alice")
    assert (entries["a"].provenance, entries["a"].saved_by) == (AUTOMATIC, "bob")
    assert [e.image_key for e in store.library_entries(provenance=AUTOMATIC)] == ["a"]
    assert [e.image_key for e in store.library_entries(provenance=REVIEWED)] == ["r"]
    with pytest.raises(ValueError):
        store.library_entries(provenance="maybe")


def _seed_queue(store: Store, n: int) -> None:
    """n automatic sets saved a second apart (image i newest last); image i's best tag is at 50 + i."""
    for i in range(n):
        sql(store, "INSERT INTO images (image_key, filename, source, created_at, updated_at) "
                   "VALUES (:k, :f, 'batch', 't', 't')", k=f"img{i:03}", f=f"{i}.jpg")
        sql(store, "INSERT INTO verdict_sets (image_key, backend, language, provenance, threshold, min_tags, "
                   "saved_at, batch, saved_by) VALUES (:k, :b, 'en', 'automatic', 60, 1, :t, :batch, 'bob')",
            k=f"img{i:03}", b="embedded" if i % 2 == 0 else "imagga", t=f"2025-01-01T00:{i // 60:02}:{i % 60:02}",
            batch="b1" if i < 5 else "b2")
        for tag, confidence, accepted in ((f"tag{i}", 50.0 + i, True), ("common", 5.0, False)):
            sql(store, "INSERT INTO feedback (image_key, backend, language, tag, confidence, accepted, threshold, "
                       "min_tags, saved_at) VALUES (:k, :b, 'en', :tag, :c, :a, 60, 1, 't')",
                k=f"img{i:03}", b="embedded" if i % 2 == 0 else "imagga", tag=tag, c=confidence, a=accepted)


@pytest.mark.parametrize("small_queue", [500, 0], ids=["one-pass", "windows"])
def test_review_queue_pages_orders_and_filters(open_db, monkeypatch, small_queue):
    monkeypatch.setattr(queue_module, "NEAREST_SMALL_QUEUE", small_queue)  # 0: widening windows, as on long queues
    store = open_db()
    _seed_queue(store, 12)
    save(store, "img011", backend="imagga", saved_by="alice")  # reviewed now: leaves the queue
    page = store.review_queue(offset=0, limit=4)
    assert page.total == 11 and [i.image_key for i in page.items] == ["img010", "img009", "img008", "img007"]
    rest = store.review_queue(offset=4, limit=10)
    assert [i.image_key for i in rest.items] == [f"img{i:03}" for i in range(6, -1, -1)]
    oldest = store.review_queue(limit=2, order="oldest")
    assert [i.image_key for i in oldest.items] == ["img000", "img001"]
    first = oldest.items[0]
    assert (first.filename, first.backend, first.saved_by, first.batch, first.threshold) == (
        "0.jpg", "embedded", "bob", "b1", 60.0)
    assert first.items == (FeedbackItem("tag0", 50.0, True), FeedbackItem("common", 5.0, False))
    nearest = store.review_queue(limit=3, order="nearest", threshold=57.2)
    assert [i.image_key for i in nearest.items] == ["img007", "img008", "img006"]
    assert nearest.items[0].gap == pytest.approx(0.2)
    further = store.review_queue(offset=3, limit=20, order="nearest", threshold=57.2)
    assert [i.image_key for i in further.items] == ["img009", "img005", "img010", "img004", "img003", "img002",
                                                    "img001", "img000"]
    assert [i.gap for i in further.items][-1] == pytest.approx(7.2)
    assert store.review_queue(filters=ReviewFilters(backend="imagga")).total == 5
    assert [i.image_key for i in store.review_queue(filters=ReviewFilters(batch="b1", backend="embedded")).items] == [
        "img004", "img002", "img000"]
    assert [i.image_key for i in store.review_queue(filters=ReviewFilters(tag="tag3")).items] == ["img003"]
    assert store.review_count(ReviewFilters(tag="common")) == 11
    assert store.review_queue(offset=100).items == []
    for bad in (dict(order="random"), dict(order="nearest"), dict(limit=0), dict(offset=-1)):
        with pytest.raises(ValueError):
            store.review_queue(**bad)


def test_review_helpers_facets_sets_of_an_image_and_withdrawing(open_db):
    store = open_db()
    _seed_queue(store, 6)
    save(store, "img000", saved_by="alice")  # reviewed: its batch b1 still has automatic sets
    facets = store.review_facets()
    assert (facets.backends, facets.languages, facets.batches) == (("embedded", "imagga"), ("en",), ("b2", "b1"))
    save(store, "img001", backend="embedded", provenance=AUTOMATIC)  # img001 now has two automatic sets
    assert [(i.backend, [t.tag for t in i.items]) for i in store.unreviewed_sets("img001")] == [
        ("embedded", ["cat", "dog"]), ("imagga", ["tag1", "common"])]
    assert store.unreviewed_sets("img001", language="de") == []
    assert [(v.backend, v.provenance) for v in store.verdict_sets_of("img000")] == [("embedded", REVIEWED)]
    assert store.delete_verdict_set("img001", "embedded", "en") == 2
    assert store.verdict_set("img001", "embedded", "en") is None and store.feedback_for("img001", "imagga", "en")
    key = store.enqueue(image_key="img000", backend="imagga", payload={})
    assert store.withdraw(key) and store.pending() == [] and not store.withdraw(key)
    sent = store.enqueue(image_key="img000", backend="imagga", payload={})
    store.mark_sent(sent, {"ok": True})
    assert not store.withdraw(sent)  # a message already sent stays the record of what was sent


# --- concurrency ---------------------------------------------------------------------------------
def test_concurrent_writers_lose_nothing(open_db):
    open_db()
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        store = open_db()
        try:
            for i in range(25):
                save(store, key=f"{prefix}{i}", items=[FeedbackItem(f"t{j}", j, j % 2 == 0) for j in range(5)])
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert open_db().counts() == (100, 500)


def test_concurrent_saves_of_one_image_are_atomic_and_each_knows_whom_it_replaced(open_db):
    """Eight analysts save the same image at once: one set of rows remains, and the saves form one chain."""
    open_db()
    barrier = threading.Barrier(8)
    results: dict[str, object] = {}
    errors: list[BaseException] = []

    def analyst(name: str) -> None:
        store = open_db()
        barrier.wait()
        try:
            results[name] = save(store, items=[FeedbackItem(f"{name}-tag{j}", j, True) for j in range(6)],
                                 saved_by=name)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    names = [f"analyst{i}" for i in range(8)]
    threads = [threading.Thread(target=analyst, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = open_db()
    final = store.verdict_set("abc", "embedded", "en").saved_by
    rows = store.feedback_for("abc", "embedded", "en")
    assert len(rows) == 6 and {r.tag.split("-")[0] for r in rows} == {final}  # one save's rows, never mixed
    firsts = [n for n, r in results.items() if not r.replaced]
    assert len(firsts) == 1
    # Every other save replaced exactly one earlier save, and no save was replaced twice: a chain.
    replaced = [r.previous_saved_by for r in results.values() if r.replaced]
    assert all(r.replaced_other for r in results.values() if r.replaced)
    assert sorted(replaced) == sorted(n for n in names if n != final)


def test_two_servers_migrating_at_once_both_succeed(open_db):
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def start() -> None:
        barrier.wait()
        try:
            open_db()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert open_db().schema_version() == SCHEMA_VERSION


# --- migrations: each one from the previous version, with data, on both databases ----------------------
def test_each_migration_upgrades_the_previous_version_with_data(open_db, tmp_path):
    store = open_db(migrate=False)
    assert store.schema_version() == 0
    assert store.migrate(1) == 1
    sql(store, "INSERT INTO images VALUES ('b1', 'b.jpg', 'batch', 2, 2, NULL, 't0', 't0'), "
               "('u1', 'u.jpg', 'Upload', 3, 3, NULL, 't0', 't0')")
    for key, backend, language, tag, confidence, accepted, saved in [
        ("b1", "embedded", "en", "cat", 90, True, "2025-01-01T00:00:00+00:00"),
        ("b1", "embedded", "en", "dog", 20, False, "2025-01-01T00:00:01+00:00"),
        ("b1", "imagga", "en", "cat", 80, True, "2025-01-01T00:00:00+00:00"),
        ("u1", "embedded", "en", "car", 70, True, "2025-01-02T00:00:00+00:00"),
        ("u1", "imagga", "de", "auto", 60, False, "2025-01-03T00:00:00+00:00"),
    ]:
        sql(store, "INSERT INTO feedback (image_key, backend, language, tag, confidence, accepted, threshold, "
                   "min_tags, saved_at) VALUES (:k, :b, :l, :t, :c, :a, 55, 2, :s)",
            k=key, b=backend, l=language, t=tag, c=confidence, a=accepted, s=saved)

    # 1 -> 2: outbox and settings arrive; feedback stays
    assert store.migrate(2) == 2
    assert raw_counts(store) == (2, 5)
    for key, image, status in [("k-auto", "b1", "pending"), ("k-rev", "u1", "pending"), ("k-sent", "b1", "sent")]:
        sql(store, "INSERT INTO outbox (idempotency_key, image_key, backend, payload, status, created_at) "
                   "VALUES (:k, :i, 'imagga', '{}', :s, 't')", k=key, i=image, s=status)
    sql(store, "INSERT INTO settings VALUES ('default_threshold', '42')")

    # 2 -> 3: a verdict set per image, backend and language; batch-saved ones are automatic
    assert store.migrate(3) == 3
    sets = {tuple(r[:3]): tuple(r[3:]) for r in sql(
        store, "SELECT image_key, backend, language, provenance, saved_at, threshold, min_tags FROM verdict_sets")}
    assert {k: v[0] for k, v in sets.items()} == {
        ("b1", "embedded", "en"): AUTOMATIC, ("b1", "imagga", "en"): AUTOMATIC,
        ("u1", "embedded", "en"): REVIEWED, ("u1", "imagga", "de"): REVIEWED}
    assert sets[("b1", "embedded", "en")][1:] == ("2025-01-01T00:00:01+00:00", 55.0, 2)
    assert store.feedback_for("b1", "embedded", "en") == [FeedbackItem("cat", 90, True), FeedbackItem("dog", 20, False)]
    assert store.get_setting("default_threshold") == 42

    # 3 -> 4: who saved: unknown for the sets that existed
    assert store.migrate(4) == 4
    assert sql(store, "SELECT saved_by FROM verdict_sets WHERE image_key = 'u1' AND backend = 'embedded'") == [
        (None,)]
    assert store.review_count() == 2

    # 4 -> 5: the result cache moves in; on SQLite the old file's answers are imported, the file kept
    legacy = None
    if store.dialect == "sqlite":
        legacy = store.path.with_name("results-cache.db")
        make_legacy_cache(legacy, [(cache_key("embedded", "img", "req"), "embedded", "img", '{"result": 1}', "t"),
                                   (cache_key("imagga", "img", "req"), "imagga", "img", '{"result": 2}', "t")])
    assert store.migrate(5) == 5
    cache = open_result_cache(store)
    if legacy is not None:
        assert len(cache) == 2 and cache.get("imagga", "img", "req") == {"result": 2}
        assert legacy.exists()
        with sqlite3.connect(legacy) as conn:
            assert conn.execute("SELECT COUNT(*) FROM results").fetchone() == (2,)
        conn.close()
    else:
        assert len(cache) == 0
    cache.put("embedded", "new", "req", {"ok": True})

    # 5 -> 6: outbox claims; a pending message of automatic verdicts only is held back, never sent
    assert store.migrate(6) == 6
    assert [p.idempotency_key for p in store.pending()] == ["k-rev"]
    rows = dict(sql(store, "SELECT idempotency_key, held FROM outbox"))
    assert rows["k-auto"] and rows["k-rev"] is None and rows["k-sent"] is None
    assert raw_counts(store) == (2, 5) and cache.get("embedded", "new", "req") == {"ok": True}

    # 6 -> 7: a preview column for the review queue; images saved before keep their thumbnail as the view
    sql(store, "UPDATE images SET thumbnail = :t WHERE image_key = 'b1'", t=b"\xff\xd8thumb")
    before = {table: sql(store, f"SELECT COUNT(*) FROM {table}")[0][0]
              for table in ("images", "feedback", "verdict_sets", "outbox", "settings", "result_cache")}
    assert store.migrate(7) == 7
    assert store.schema_version() == 7
    assert before == {table: sql(store, f"SELECT COUNT(*) FROM {table}")[0][0] for table in before}
    assert sql(store, "SELECT image_key, filename, source, width, preview FROM images ORDER BY image_key") == [
        ("b1", "b.jpg", "batch", 2, None), ("u1", "u.jpg", "Upload", 3, None)]
    assert store.preview("b1") == b"\xff\xd8thumb" and store.preview("u1") is None and store.preview("x") is None
    assert store.review_count() == 2
    store.migrate()  # the later migrations have their own tests below
    assert store.verdict_set("b1", "embedded", "en").provenance == AUTOMATIC
    save(store, "u1", preview=b"\xff\xd8preview", thumbnail=b"\xff\xd8small")
    save(store, "u1")  # a save without images keeps the stored ones
    assert store.preview("u1") == b"\xff\xd8preview" and store.thumbnail("u1") == b"\xff\xd8small"
    assert store.counts() == (2, 6) and [p.idempotency_key for p in store.pending()] == ["k-rev"]


def test_review_mode_and_missing_tags_migration_keeps_every_set(open_db):
    """From the version just before it: every set and verdict stays; the new columns start empty and take values."""
    step = next(m for m in MIGRATIONS if m.apply.__name__ == "_review_mode_and_missing_tags")
    store = open_db(migrate=False)
    assert store.migrate(step.version - 1) == step.version - 1
    sql(store, "INSERT INTO images (image_key, filename, source, created_at, updated_at) VALUES "
               "('r1', 'r.jpg', 'Upload', 't0', 't0'), ('a1', 'a.jpg', 'batch', 't0', 't0')")
    sql(store, "INSERT INTO verdict_sets (image_key, backend, language, provenance, threshold, min_tags, saved_at, "
               "saved_by) VALUES ('r1', 'embedded', 'en', 'reviewed', 60, 3, 't1', 'ann'), "
               "('a1', 'embedded', 'en', 'automatic', 60, 3, 't1', NULL)")
    sql(store, "INSERT INTO feedback (image_key, backend, language, tag, confidence, accepted, threshold, min_tags, "
               "saved_at) VALUES ('r1', 'embedded', 'en', 'cat', 90, :t, 60, 3, 't1'), "
               "('a1', 'embedded', 'en', 'dog', 40, :f, 60, 3, 't1')", t=True, f=False)
    assert store.migrate(step.version) == step.version
    old = store.verdict_set("r1", "embedded", "en")
    assert (old.provenance, old.saved_by, old.review_mode, old.missing_tags) == (REVIEWED, "ann", None, ())
    assert store.feedback_for("r1", "embedded", "en") == [FeedbackItem("cat", 90.0, True)]
    assert store.review_count() == 1 and store.review_modes("embedded", "en") == {None: 1}
    store.migrate()
    save(store, "a1", provenance=REVIEWED, review_mode=BLIND, missing_tags=["dog ", "Dog", "", "dog", "red  ball"])
    new = store.verdict_set("a1", "embedded", "en")
    assert (new.review_mode, new.missing_tags) == (BLIND, ("dog", "red ball"))
    assert store.review_modes("embedded", "en") == {None: 1, BLIND: 1}
    assert store.missing_notes() == {"a1": ("dog", "red ball")}
    assert store.tune_rows("embedded", "en", 0, review_mode=BLIND).images == 1  # Tune can use the blind ones alone
    assert {e.image_key: e.missing_tags for e in store.library_entries()} == {"a1": ("dog", "red ball"),
                                                                              "r1": ()}
    with pytest.raises(ValueError, match="review_mode"):
        save(store, "a1", review_mode="glance")


@pytest.mark.parametrize("version", [1, 2])
def test_legacy_sqlite_files_upgrade_in_place(tmp_path, version):
    path = tmp_path / "old.db"
    conn = make_legacy_db(path, version)
    conn.execute("INSERT INTO images VALUES ('k', 'f.jpg', 'Upload', 1, 1, x'ffd8', 't', 't')")
    conn.execute("INSERT INTO images VALUES ('b', 'g.jpg', 'batch', 1, 1, NULL, 't', 't')")
    conn.execute("INSERT INTO feedback (image_key, backend, language, tag, confidence, accepted, threshold,"
                 " min_tags, saved_at) VALUES ('k', 'embedded', 'en', 'cat', 90, 1, 60, 3, 't1'),"
                 " ('b', 'embedded', 'en', 'dog', 80, 0, 60, 3, 't2')")
    if version == 2:
        conn.execute("INSERT INTO settings VALUES ('tag_overrides', '{\"cat\": 10.0}')")
    conn.commit()
    conn.close()
    store = Store(path)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.feedback_for("k", "embedded", "en") == [FeedbackItem("cat", 90.0, True)]
        assert store.feedback_for("b", "embedded", "en") == [FeedbackItem("dog", 80.0, False)]
        assert store.verdict_set("b", "embedded", "en").provenance == AUTOMATIC
        assert store.thumbnail("k") == b"\xff\xd8"
        assert store.tag_overrides() == ({"cat": 10.0} if version == 2 else {})
        save(store, "k", saved_by="me")  # the old tables take new saves
        assert store.verdict_set("k", "embedded", "en").saved_by == "me"
    finally:
        store.close()


def test_newer_database_is_refused(open_db):
    store = open_db()
    sql(store, "UPDATE schema_version SET version = :v", v=SCHEMA_VERSION + 1)
    with pytest.raises(SchemaVersionError, match="newer"):
        open_db()


def test_newer_legacy_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaVersionError, match="newer"):
        Store(path)


# --- TAGGING_DB values and errors without secrets -------------------------------------------------
SECRET = "s3cr3t-p@ss:w/rd"


def test_targets_are_shown_without_their_password():
    assert display("data/tagging.db") == "data/tagging.db"
    url = "postgresql://tagging:hunter2-very-secret@db.example.invalid:5433/lib"
    assert display(url) == "postgresql://tagging:***@db.example.invalid:5433/lib"
    assert without_password(url) == ("postgresql://tagging@db.example.invalid:5433/lib", "hunter2-very-secret")
    assert without_password("data/x.db") == ("data/x.db", None)


@pytest.mark.parametrize("target", [
    "postgresql://u:hunter2-very-secret@host:notaport/db",
    "mysql://u:hunter2-very-secret@host/db",
    "postgresql+psycopg2://u:hunter2-very-secret@host/db",
    "postgresql://u:hunter2-very-secret@host",
    "sqlite://",
    "",
])
def test_bad_targets_are_refused_without_echoing_them(target):
    with pytest.raises(StoreConfigError) as caught:
        Store(target)
    assert "hunter2" not in str(caught.value) and "TAGGING_DB" in str(caught.value)


def test_sqlite_url_and_plain_path_are_the_same_database(tmp_path):
    save(Store(tmp_path / "x.db"))
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    assert store.counts() == (1, 2) and store.url == str(tmp_path / "x.db")
    store.close()


def test_unreachable_postgresql_is_a_clear_error_without_the_password():
    from tests.pgcluster import _free_port

    url = f"postgresql://analyst:{SECRET.replace('@', '%40').replace(':', '%3A').replace('/', '%2F')}" \
          f"@127.0.0.1:{_free_port()}/tagging"
    with pytest.raises(StoreUnavailableError) as caught:
        Store(url)
    text = str(caught.value) + repr(caught.value) + str(caught.value.__cause__) + str(caught.value.__cause__.orig)
    assert "unavailable" in str(caught.value) and "***" in str(caught.value)
    assert SECRET not in text and "s3cr3t" not in text


def test_wrong_password_and_password_from_setting(pg_cluster, pg_database):
    pg_cluster.create_role("analyst", SECRET)
    database = pg_database.rsplit("/", 1)[1]
    pg_cluster.execute(f'GRANT ALL ON DATABASE "{database}" TO analyst')
    pg_cluster.execute("GRANT ALL ON SCHEMA public TO analyst", database=database)
    base = pg_cluster.url(database, user="analyst")
    with pytest.raises(StoreUnavailableError) as caught:
        Store(base, password="wrong-" + SECRET)
    text = str(caught.value) + str(caught.value.__cause__)
    assert "password authentication failed" in text and SECRET not in text
    store = Store(base, password=SECRET)  # TAGGING_DB_PASSWORD's way in
    try:
        save(store)
        assert store.counts() == (1, 2) and SECRET not in repr(store) and SECRET not in store.url
    finally:
        store.close()
        pg_cluster.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
        pg_cluster.execute("DROP OWNED BY analyst")
        pg_cluster.execute("DROP ROLE analyst")


def test_a_database_that_goes_away_raises_store_errors_and_comes_back(pg_cluster, pg_database):
    store = Store(pg_database)
    try:
        save(store)
        database = pg_database.rsplit("/", 1)[1]
        pg_cluster.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        pg_cluster.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")
        with pytest.raises(StoreError):
            store.counts()
        with pytest.raises(StoreError):
            save(store, "other")
        pg_cluster.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        assert store.counts() == (1, 2)  # the pool reconnects
    finally:
        store.close()


def test_a_driver_error_that_echoes_the_password_is_not_chained():
    from sqlalchemy.engine import make_url

    from tagging.store._db import guarded

    url = make_url("postgresql+psycopg://u:hunter2-very-secret@h/db")
    with pytest.raises(StoreError) as caught, guarded(url):
        raise sa.exc.OperationalError("connect", {}, Exception("bad conninfo 'password=hunter2-very-secret'"))
    assert "hunter2" not in str(caught.value) and caught.value.__cause__ is None
    assert caught.value.__suppress_context__
