"""Analysis summaries in the store (migration, save, read, filters) on SQLite and a real PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from tagging.analysis import Summary
from tagging.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    TagSearch,
    analysis_condition,
)
from tagging.store import _schema as s
from tests.test_store import ITEMS, save, sql

MIGRATION = next(m for m in MIGRATIONS if m.apply is s._v11_image_analysis)


def test_migration_from_the_version_before_keeps_everything(open_db):
    store = open_db(migrate=False)
    store.migrate(MIGRATION.version - 1)
    # Rows as that version held them (today's save also keeps later tables in step).
    sql(store, "INSERT INTO images (image_key, filename, source, created_at, updated_at) VALUES "
               "('a', 'a.jpg', 'Upload', 't0', 't0'), ('b', 'b.jpg', 'Upload', 't0', 't0')")
    sql(store, "INSERT INTO verdict_sets (image_key, backend, language, provenance, threshold, min_tags, saved_at) "
               "VALUES ('a', 'embedded', 'en', 'reviewed', 60, 3, 't1'), "
               "('b', 'imagga', 'en', 'reviewed', 60, 3, 't1')")
    sql(store, "INSERT INTO feedback (image_key, backend, language, tag, confidence, accepted, threshold, min_tags, "
               "saved_at) VALUES ('a', 'embedded', 'en', 'cat', 90, :t, 60, 3, 't1'), "
               "('b', 'imagga', 'en', 'dog', 40, :f, 60, 3, 't1')", t=True, f=False)
    tables = ("images", "feedback", "verdict_sets")
    before = {t: sql(store, f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables}
    assert store.migrate(MIGRATION.version) == MIGRATION.version
    assert before == {t: sql(store, f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables}
    assert sql(store, "SELECT COUNT(*) FROM image_analysis") == [(0,)]
    assert store.save_analysis("a", "embedded", Summary(2, "navy", "blue", True))
    assert store.analysis_summaries(["a", "b"]) == {("a", "embedded"): Summary(2, "navy", "blue", True)}
    store.migrate(SCHEMA_VERSION)


def test_save_replaces_and_needs_a_known_image(open_db):
    store = open_db()
    save(store, "a")
    assert not store.save_analysis("unknown", "embedded", Summary(1, "red", "red", False))
    assert store.save_analysis("a", "embedded", Summary(1, "red", "red", False))
    assert store.save_analysis("a", "embedded", Summary(0, "white", "white", None))
    assert store.save_analysis("a", "imagga", Summary(None, "gold", "yellow", None))
    assert store.analysis_summaries(["a"]) == {
        ("a", "embedded"): Summary(0, "white", "white", None), ("a", "imagga"): Summary(None, "gold", "yellow", None)}
    assert store.colour_names() == ["gold", "white", "yellow"]
    store.delete_image("a")
    assert store.analysis_summaries(["a"]) == {}


def test_the_librarys_paged_query_filters_by_the_analysis(open_db):
    store = open_db()
    for key, summary in [("portrait", Summary(1, "navy", "blue", False)),
                         ("sign", Summary(0, "firebrick", "red", True)),
                         ("sky", Summary(0, "skyblue", "blue", False))]:
        save(store, key, items=ITEMS)
        store.save_analysis(key, "embedded", summary)
    save(store, "unanalysed")
    v = s.verdict_sets
    for filters, expected in [
        ({"colour": "blue"}, {"portrait", "sky"}),
        ({"colour": "NAVY "}, {"portrait"}),
        ({"faces": True}, {"portrait"}),
        ({"faces": False}, {"sign", "sky"}),
        ({"text": True}, {"sign"}),
        ({"colour": "blue", "text": False, "faces": False}, {"sky"}),
        ({}, {"portrait", "sign", "sky", "unanalysed"}),
    ]:
        paged = {e.image_key for e in store.library_page(TagSearch(**filters), 100)}
        query = sa.select(v.c.image_key).where(analysis_condition(v.c.image_key, v.c.backend, **filters)) \
            if filters else sa.select(v.c.image_key)
        with store._read() as conn:
            in_sql = set(conn.execute(query).scalars())
        assert paged == in_sql == expected, filters
        assert store.library_size(TagSearch(**filters)) == (len(expected), len(expected)), filters
