"""Moving libraries between databases, and a synthetic library for benchmarks.

``copy_library`` copies images, verdict sets, verdicts, settings and cached answers from one
store to another (SQLite to PostgreSQL or back) in image-key order, one transaction per chunk
of images, so a stopped copy resumes after the last chunk that landed; it ends by comparing
row counts on both sides and recounting the destination's kept totals.

``generate`` writes N synthetic images with their verdicts in a few set-based INSERT … SELECT
statements (a recursive series on SQLite, ``generate_series`` on PostgreSQL): a million images
and ten million verdicts without a Python loop per record. The data is a deterministic function
of the image number, the same on both databases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from tagging.store import _schema as s
from tagging.store._db import POSTGRESQL
from tagging.store._rows import _insert
from tagging.store._store import Store

COPY_CHUNK = 500  # images per transaction
GENERATE_CHUNK = 100_000  # images per INSERT … SELECT
VOCABULARY = 2000  # synthetic tag names
GROUPS = 40  # their parents
SECONDARY_INDEXES = (("feedback_tag", "tag"), ("feedback_confidence", "confidence"),
                     ("feedback_accepted_tag", "tag, accepted, image_key, backend, language"))


@dataclass(frozen=True)
class CopyReport:
    """What ``copy_library`` found: per table (source rows, destination rows)."""

    counts: dict[str, tuple[int, int]]
    copied_images: int

    @property
    def verified(self) -> bool:
        return all(a == b for a, b in self.counts.values())


def _count(store: Store, table: sa.Table, where: sa.ColumnElement[bool] | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(table)
    if where is not None:
        query = query.where(where)
    with store._read() as conn:
        return int(conn.execute(query).scalar_one())


def _counts(store: Store) -> dict[str, int]:
    v = s.verdict_sets
    found = {t.name: _count(store, t) for t in (s.images, s.verdict_sets, s.feedback, s.settings, s.result_cache)}
    found["reviewed sets"] = _count(store, v, v.c.provenance == s.REVIEWED)
    found["accepted verdicts"] = _count(store, s.feedback, s.feedback.c.accepted)
    return found


def _upsert_plain(conn: sa.Connection, table: sa.Table, rows: list[dict], keys: list[str]) -> None:
    if rows:
        insert = _insert(conn, table)
        conn.execute(insert.on_conflict_do_nothing(index_elements=keys), rows)


def copy_library(source: Store, target: Store, chunk: int = COPY_CHUNK,
                 progress: Callable[[int], None] | None = None) -> CopyReport:
    """Copy every image with its verdict sets and verdicts (and the settings and cached answers) into ``target``.

    Resumable: chunks already in ``target`` (image keys up to its largest) are not read again.
    """
    i, v, f = s.images, s.verdict_sets, s.feedback
    with target._read() as conn:
        last = conn.execute(sa.select(sa.func.max(i.c.image_key))).scalar()
    copied = 0
    while True:
        with source._read() as conn:
            query = sa.select(i).order_by(i.c.image_key).limit(chunk)
            if last is not None:
                query = query.where(i.c.image_key > last)
            images = [dict(r._mapping) for r in conn.execute(query)]
            if not images:
                break
            keys = [r["image_key"] for r in images]
            sets = [dict(r._mapping) for r in conn.execute(sa.select(v).where(v.c.image_key.in_(keys)))]
            verdicts = [dict(r._mapping) for r in conn.execute(
                sa.select(f).where(f.c.image_key.in_(keys)).order_by(f.c.image_key, f.c.id))]
        for row in verdicts:
            del row["id"]  # numbered anew, in the same order (it breaks ties of equal confidence)
        with target._write() as conn:
            conn.execute(f.delete().where(f.c.image_key.in_(keys)))
            conn.execute(v.delete().where(v.c.image_key.in_(keys)))
            conn.execute(i.delete().where(i.c.image_key.in_(keys)))
            conn.execute(i.insert(), images)
            if sets:
                conn.execute(v.insert(), sets)
            if verdicts:
                conn.execute(f.insert(), verdicts)
        copied += len(images)
        last = keys[-1]
        if progress is not None:
            progress(copied)
    for table, keys in ((s.settings, ["key"]), (s.result_cache, ["key"])):
        with source._read() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.select(table))]
        with target._write() as conn:
            _upsert_plain(conn, table, rows, keys)
    target.rebuild_totals()
    a, b = _counts(source), _counts(target)
    return CopyReport({name: (a[name], b[name]) for name in a}, copied)


def _series(conn: sa.Connection, start: int, stop: int) -> str:
    """A FROM clause of the integers start..stop-1 as ``n``."""
    if conn.dialect.name == POSTGRESQL:  # bigint: n * 7919 passes 2**31 from n = 271,000
        return f"generate_series(CAST({int(start)} AS bigint), {int(stop) - 1}) AS g(n)"
    return (f"(WITH RECURSIVE g(n) AS (SELECT {int(start)} UNION ALL SELECT n + 1 FROM g WHERE n < {int(stop) - 1}) "
            "SELECT n FROM g) AS g")


def _text(conn: sa.Connection, template: str, width: int, value: str) -> str:
    if conn.dialect.name == POSTGRESQL:
        return f"('{template}' || lpad(({value})::text, {width}, '0'))"
    return f"printf('{template}%0{width}d', {value})"


def _stamp(conn: sa.Connection, seconds: str) -> str:
    if conn.dialect.name == POSTGRESQL:
        return (f"(to_char(timestamp '2025-01-01' + ({seconds}) * interval '1 second', "
                "'YYYY-MM-DD\"T\"HH24:MI:SS') || '+00:00')")
    return f"(strftime('%Y-%m-%dT%H:%M:%S', '2025-01-01', '+' || ({seconds}) || ' seconds') || '+00:00')"


def generate(store: Store, images: int, verdicts: int = 10, reviewed_percent: int = 30, start: int = 0,
             progress: Callable[[int], None] | None = None) -> None:
    """Write synthetic images ``start``..``start + images - 1`` with ``verdicts`` verdicts each.

    Each image has one embedded/en verdict set, reviewed for ``reviewed_percent`` % of them,
    saved a second apart; its tags come from a vocabulary of VOCABULARY names under GROUPS
    parents, with pseudo-random confidences and verdicts that mostly follow them.
    """
    if not 1 <= verdicts <= 50:
        raise ValueError("verdicts per image must be 1..50")
    bulk = images > GENERATE_CHUNK
    if bulk:  # secondary indexes are built once at the end: faster than kept up row by row
        with store._write() as conn:
            for name, _ in SECONDARY_INDEXES:
                conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
    done = start
    while done < start + images:
        stop = min(done + GENERATE_CHUNK, start + images)
        with store._write() as conn:
            key = _text(conn, "syn", 10, "g.n")
            series = _series(conn, done, stop)
            stamp = _stamp(conn, "g.n")
            run = _runner(conn)
            run(
                "INSERT INTO images (image_key, filename, source, width, height, created_at, updated_at) "
                f"SELECT {key}, {_text(conn, 'synthetic-', 7, 'g.n')} || '.jpg', 'bench', 640, 480, {stamp}, {stamp} "
                f"FROM {series}"
            )
            run(
                "INSERT INTO verdict_sets (image_key, backend, language, provenance, threshold, min_tags, saved_at, "
                f"saved_by) SELECT {key}, 'embedded', 'en', CASE WHEN (g.n * 37) % 100 < {int(reviewed_percent)} "
                f"THEN 'reviewed' ELSE 'automatic' END, 60, 3, {stamp}, 'bench' FROM {series}"
            )
            tag_index = f"((g.n * 7919 + j.j * 104729) % {VOCABULARY})"
            confidence = "(((g.n * 2654435761 + j.j * 40503) % 10000) / 100.0)"
            noise = "(((g.n * 31 + j.j * 17) % 40) - 20)"
            accepted = f"CASE WHEN {confidence} + {noise} >= 55 THEN 1 ELSE 0 END"
            if conn.dialect.name == POSTGRESQL:
                accepted = f"({accepted}) = 1"
            run(
                "INSERT INTO feedback (image_key, backend, language, tag, parent, confidence, accepted, threshold, "
                f"min_tags, saved_at) SELECT {key}, 'embedded', 'en', {_text(conn, 'tag', 4, tag_index)}, "
                f"{_text(conn, 'group', 2, f'{tag_index} % {GROUPS}')}, {confidence}, {accepted}, 60, 3, {stamp} "
                f"FROM {series} CROSS JOIN {_verdict_series(conn, verdicts)} "
                "ORDER BY g.n, j.j"
            )
        done = stop
        if progress is not None:
            progress(done - start)
    if bulk:
        with store._write() as conn:
            for name, columns in SECONDARY_INDEXES:
                conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON feedback ({columns})")
    store.rebuild_totals()
    if store.dialect == POSTGRESQL:
        with store._write() as conn:  # fresh statistics for the planner, as autovacuum would gather later
            conn.exec_driver_sql("ANALYZE")


def _runner(conn: sa.Connection) -> Callable[[str], object]:
    """Run literal SQL; psycopg reads ``%`` as a placeholder, so it is doubled there."""
    if conn.dialect.name == POSTGRESQL:
        return lambda sql: conn.exec_driver_sql(sql.replace("%", "%%"))
    return conn.exec_driver_sql


def _verdict_series(conn: sa.Connection, verdicts: int) -> str:
    if conn.dialect.name == POSTGRESQL:
        return f"generate_series(CAST(0 AS bigint), {int(verdicts) - 1}) AS j(j)"
    return (f"(WITH RECURSIVE s(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM s WHERE j < {int(verdicts) - 1}) "
            "SELECT j FROM s) AS j")
