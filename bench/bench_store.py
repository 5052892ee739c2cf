"""Benchmark the store: SQLAlchemy Core against the old raw-sqlite3 store, and SQLite against PostgreSQL.

Run from the repository root (PostgreSQL's server from Debian's ``postgresql`` package must be
installed; a throwaway cluster is started in a temporary folder and removed afterwards)::

    .venv/bin/python bench/bench_store.py [--repeats 5] [--queue 10000]

Prints, each measured in this one run, per operation the median of ``--repeats`` rounds
(the three stores take turns within a round, so machine load hits them alike):

1. The same operations on the old store (raw sqlite3, ``bench/legacy_sqlite_store.py``),
   the new store on SQLite and the new store on PostgreSQL (loopback TCP, durability on as
   in production): milliseconds per call and the ratios new/old and PostgreSQL/SQLite.
2. The review queue at 10 and ``--queue`` automatic verdict sets (20 tags each): the count,
   the first page and the 50th, newest first and nearest a threshold, on both databases
   (after ANALYZE, as a long-lived database would have its statistics); and the Library's
   ``library_entries``, which reads every verdict, for scale.

The load average is printed because other processes on the machine skew every number.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "bench"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import legacy_sqlite_store as legacy  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from tagging.store import FeedbackItem, ResultCache, Store  # noqa: E402
from tests import pgcluster  # noqa: E402

TAGS = 20
LIBRARY_IMAGES = 300


def items(seed: int) -> list:
    return [FeedbackItem(f"tag{(seed + j) % 97}", float((seed * 7 + j * 13) % 100), j % 3 == 0) for j in range(TAGS)]


def legacy_items(seed: int) -> list:
    return [legacy.FeedbackItem(i.tag, i.confidence, i.accepted) for i in items(seed)]


def save_kwargs(key: str, seed: int, old: bool) -> dict:
    return dict(image_key=key, filename=f"{key}.jpg", source="Upload", backend="embedded", language="en",
                threshold=60.0, min_tags=3, items=legacy_items(seed) if old else items(seed))


class Subject:
    """One store under test, with the operations the pages use."""

    def __init__(self, name: str, store, cache, old: bool) -> None:
        self.name, self.store, self.cache, self.old = name, store, cache, old
        self.counter = 0

    def seed_library(self) -> None:
        for i in range(LIBRARY_IMAGES):
            self.store.save_feedback(**save_kwargs(f"lib{i}", i, self.old))
        self.store.set_setting("default_threshold", 60)
        self.cache.put("embedded", "hit", "req", {"result": {"tags": [{"tag": {"en": "cat"}, "confidence": 90}]}})

    def operations(self) -> dict[str, tuple[Callable[[], object], int]]:
        def save_new() -> None:
            self.counter += 1
            self.store.save_feedback(**save_kwargs(f"new{self.name}{self.counter}", self.counter, self.old))

        def save_replace() -> None:
            self.counter += 1
            self.store.save_feedback(**save_kwargs("lib1", self.counter, self.old))

        def cache_put() -> None:
            self.counter += 1
            self.cache.put("embedded", f"img{self.counter}", "req", {"result": {"tags": []}})

        return {
            f"save_feedback, new image ({TAGS} tags)": (save_new, 40),
            f"save_feedback, replacing ({TAGS} tags)": (save_replace, 40),
            "feedback_for": (lambda: self.store.feedback_for("lib7", "embedded", "en"), 200),
            "get_setting": (lambda: self.store.get_setting("default_threshold"), 400),
            "counts": (lambda: self.store.counts(), 100),
            f"library_entries ({LIBRARY_IMAGES} images)": (lambda: self.store.library_entries(), 5),
            "result cache get (hit)": (lambda: self.cache.get("embedded", "hit", "req"), 400),
            "result cache put": (cache_put, 100),
        }


def measure(subjects: list[Subject], repeats: int) -> dict[str, dict[str, float]]:
    """{operation: {subject: ms per call}}, the median of ``repeats`` interleaved rounds."""
    samples: dict[str, dict[str, list[float]]] = {}
    for _ in range(repeats):
        for subject in subjects:
            for op, (call, n) in subject.operations().items():
                call()  # warm
                started = time.perf_counter()
                for _ in range(n):
                    call()
                samples.setdefault(op, {}).setdefault(subject.name, []).append(
                    (time.perf_counter() - started) / n * 1000)
    return {op: {name: statistics.median(v) for name, v in by.items()} for op, by in samples.items()}


def seed_queue(store: Store, n: int) -> None:
    """``n`` automatic verdict sets of 20 tags each, inserted in bulk."""
    with store.engine.begin() as conn:
        images = [dict(image_key=f"q{i:06}", filename=f"q{i}.jpg", source="batch", created_at="t", updated_at="t")
                  for i in range(n)]
        sets = [dict(image_key=f"q{i:06}", backend="embedded", language="en", provenance="automatic", threshold=60.0,
                     min_tags=3, saved_at=f"2025-01-01T{i // 3600 % 24:02}:{i // 60 % 60:02}:{i % 60:02}+00:00",
                     saved_by="bench") for i in range(n)]
        meta = sa.MetaData()
        tables = {name: sa.Table(name, meta, autoload_with=conn) for name in ("images", "verdict_sets", "feedback")}
        conn.execute(tables["images"].insert(), images)
        conn.execute(tables["verdict_sets"].insert(), sets)
        for start in range(0, n, 500):
            rows = [dict(image_key=f"q{i:06}", backend="embedded", language="en", tag=f"tag{j}",
                         confidence=float((i * 7 + j * 13) % 100), accepted=j % 3 == 0, threshold=60.0, min_tags=3,
                         saved_at="t")
                    for i in range(start, min(n, start + 500)) for j in range(TAGS)]
            conn.execute(tables["feedback"].insert(), rows)


def time_call(call: Callable[[], object], n: int = 5) -> float:
    call()
    runs = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def queue_timings(store: Store, n: int) -> dict[str, float]:
    seed_queue(store, n)
    with store.engine.begin() as conn:  # what autovacuum (PostgreSQL) or a long-lived file would have
        conn.exec_driver_sql("ANALYZE")
    deep = min(980, max(0, n - 20))
    return {
        "review_count": time_call(lambda: store.review_count()),
        "first page, newest": time_call(lambda: store.review_queue(0, 20)),
        "first page, nearest 60": time_call(lambda: store.review_queue(0, 20, order="nearest", threshold=60)),
        "page 50, newest": time_call(lambda: store.review_queue(deep, 20)),
        "page 50, nearest 60": time_call(lambda: store.review_queue(deep, 20, order="nearest", threshold=60)),
        "library_entries (all)": time_call(lambda: store.library_entries(), 3),
    }


def queue_numbers(make: Callable[[], Store], sizes: tuple[int, ...]) -> dict[int, dict[str, float]]:
    out = {}
    for n in sizes:
        store = make()
        out[n] = queue_timings(store, n)
        store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--queue", type=int, default=10_000)
    args = parser.parse_args()
    print(f"python {platform.python_version()} · sqlalchemy {sa.__version__} · load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} · {os.cpu_count()} cores")
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    cluster = pgcluster.start()
    # Production durability for the benchmark (the test cluster switches it off).
    for setting in ("fsync", "synchronous_commit", "full_page_writes"):
        cluster.execute(f"ALTER SYSTEM SET {setting} = on")
    cluster.execute("SELECT pg_reload_conf()")
    try:
        old_store = legacy.Store(work / "old.db")
        old = Subject("old sqlite3", old_store, legacy.ResultCache(work / "old-cache.db"), True)
        new_store = Store(work / "new.db")
        new = Subject("SQLAlchemy SQLite", new_store, ResultCache(new_store), False)
        pg_store = Store(cluster.url(cluster.create_database("bench")))
        pg = Subject("SQLAlchemy PostgreSQL", pg_store, ResultCache(pg_store), False)
        subjects = [old, new, pg]
        for subject in subjects:
            subject.seed_library()
        results = measure(subjects, args.repeats)
        print(f"\n1. ms per call, median of {args.repeats} interleaved rounds")
        header = f"{'operation':<40}{'old':>9}{'SQLite':>9}{'PgSQL':>9}{'new/old':>9}{'Pg/SQLite':>11}"
        print(header)
        print("-" * len(header))
        for op, by in results.items():
            o, s, p = by[old.name], by[new.name], by[pg.name]
            print(f"{op:<40}{o:>9.3f}{s:>9.3f}{p:>9.3f}{s / o:>9.2f}{p / s:>11.2f}")
        # What SQLAlchemy itself costs per call, without the pooling the old store lacked: the same
        # query on one kept raw sqlite3 connection against get_setting on the new store.
        import sqlite3

        raw = sqlite3.connect(work / "new.db")
        query = "SELECT value FROM settings WHERE key = ?"
        bare = time_call(lambda: [raw.execute(query, ("default_threshold",)).fetchone() for _ in range(400)]) / 400
        core = time_call(lambda: [new_store.get_setting("default_threshold") for _ in range(400)]) / 400
        raw.close()
        print(f"get_setting through SQLAlchemy (pooled) {core:.3f} ms against the bare query on one kept sqlite3 "
              f"connection {bare:.3f} ms: {core / bare:.1f}x, {core - bare:.3f} ms per call")
        for store in (new_store, pg_store):
            store.close()

        sizes = (10, args.queue)
        print(f"\n2. review queue, ms (median of 5), {TAGS} tags per image")
        queue = {
            "SQLite": queue_numbers(lambda: Store(work / f"queue-{time.monotonic_ns()}.db"), sizes),
            "PostgreSQL": queue_numbers(lambda: Store(cluster.url(cluster.create_database("queue"))), sizes),
        }
        for db, by_size in queue.items():
            for op in by_size[sizes[0]]:
                small, large = by_size[sizes[0]][op], by_size[sizes[1]][op]
                print(f"{db:<11}{op:<26}{sizes[0]:>6}: {small:8.2f}  {sizes[1]:>6}: {large:8.2f}  "
                      f"ratio {large / small:6.1f}")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
