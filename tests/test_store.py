from __future__ import annotations

import sqlite3
import threading

import pytest

from tagging.store import MIGRATIONS, SCHEMA_VERSION, FeedbackItem, Store

ITEMS = [FeedbackItem("cat", 91.0, True, "feline"), FeedbackItem("dog", 12.5, False)]


def save(store: Store, key: str = "abc", items=ITEMS, **kw):
    args = dict(image_key=key, filename="cat.jpg", source="Upload", backend="embedded", language="en",
                threshold=60.0, min_tags=3, items=items)
    args.update(kw)
    return store.save_feedback(**args)


def test_new_database_is_migrated_and_in_wal_mode(tmp_path):
    store = Store(tmp_path / "sub" / "t.db")
    assert store.schema_version() == SCHEMA_VERSION
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_save_and_read_back(tmp_path):
    store = Store(tmp_path / "t.db")
    result = save(store, thumbnail=b"\xff\xd8thumb", width=10, height=20)
    assert (result.items, result.accepted, result.replaced) == (2, 1, False)
    assert store.feedback_for("abc", "embedded", "en") == ITEMS
    assert store.counts() == (1, 2)


def test_saving_same_image_again_replaces(tmp_path):
    store = Store(tmp_path / "t.db")
    save(store)
    result = save(store, items=[FeedbackItem("cat", 91.0, False)])
    assert result.replaced is True
    assert store.feedback_for("abc", "embedded", "en") == [FeedbackItem("cat", 91.0, False)]
    assert store.counts() == (1, 1)
    # another backend or language is a separate record
    save(store, backend="imagga")
    assert store.counts() == (1, 3)


def test_data_survives_reopen(tmp_path):
    save(Store(tmp_path / "t.db"))
    assert Store(tmp_path / "t.db").counts() == (1, 2)


def test_old_schema_is_upgraded_not_dropped(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    conn.execute("INSERT INTO images VALUES ('k', 'f.jpg', 'Upload', 1, 1, NULL, 't', 't')")
    conn.execute("INSERT INTO feedback (image_key, backend, language, tag, confidence, accepted, threshold,"
                 " min_tags, saved_at) VALUES ('k', 'embedded', 'en', 'cat', 90, 1, 60, 3, 't')")
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.schema_version() == SCHEMA_VERSION
    assert store.feedback_for("k", "embedded", "en") == [FeedbackItem("cat", 90.0, True)]
    store.set_setting("x", 1)  # the new tables exist


def test_newer_database_is_refused(tmp_path):
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        Store(path)


def test_outbox_lifecycle(tmp_path):
    store = Store(tmp_path / "t.db")
    k1 = store.enqueue(image_key="abc", backend="imagga", payload={"tags": ["cat"]})
    k2 = store.enqueue(image_key="abc", backend="imagga", payload={"tags": ["dog"]})
    pending = store.pending()
    assert [p.idempotency_key for p in pending] == [k2] and k1 != k2  # newest verdict replaces unsent
    store.mark_failed(k2, "429")
    again = Store(tmp_path / "t.db").pending("imagga")  # survives a restart
    assert again[0].attempts == 1 and again[0].last_error == "429" and again[0].payload == {"tags": ["dog"]}
    store.mark_sent(k2, {"status": {"type": "success"}})
    assert store.pending() == []
    k3 = store.enqueue(image_key="abc", backend="imagga", payload={"tags": ["cow"]})
    assert [p.idempotency_key for p in store.pending()] == [k3]  # sent record kept, new one queued


def test_settings_roundtrip(tmp_path):
    store = Store(tmp_path / "t.db")
    assert store.get_setting("default_threshold", 60) == 60
    store.set_setting("default_threshold", 42.5)
    assert Store(tmp_path / "t.db").get_setting("default_threshold") == 42.5


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "t.db"
    Store(path)
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        store = Store(path)
        try:
            for i in range(40):
                save(store, key=f"{prefix}{i}", items=[FeedbackItem(f"t{j}", j, j % 2 == 0) for j in range(5)])
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Store(path).counts() == (160, 800)
