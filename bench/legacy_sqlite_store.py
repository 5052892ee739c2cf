"""The store as it was before SQLAlchemy: raw sqlite3 (commit 9a65059), kept only as the benchmark baseline.

bench/bench_store.py runs the same operations on this and on tagging.store side by side; the app never
imports it. The code below is the old tagging/store/_store.py and _cache.py, unchanged but for imports.
"""

# ruff: noqa

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_DB_PATH = Path("data") / "tagging.db"
# How long a writer waits for another session's transaction before giving up. Writes are a
# few milliseconds each, so 10 s only runs out when something is badly wrong.
BUSY_TIMEOUT_SECONDS = 10.0

# The old DDL itself lives in one place, shared with the tests that build such files.
from tests.legacy_schema import LEGACY_MIGRATIONS as MIGRATIONS

SCHEMA_VERSION = len(MIGRATIONS)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class FeedbackItem:
    """One suggested tag and whether the analyst accepted it."""

    tag: str
    confidence: float
    accepted: bool
    parent: str | None = None


@dataclass(frozen=True)
class SaveResult:
    """What ``save_feedback`` did: ``replaced`` is True when the image had feedback before."""

    items: int
    accepted: int
    replaced: bool


@dataclass(frozen=True)
class OutboxEntry:
    """One remote-feedback message waiting to be sent (or sent)."""

    id: int
    idempotency_key: str
    image_key: str
    backend: str
    payload: dict[str, Any]
    status: str
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class FeedbackGroup:
    """How much feedback one backend and language has: images and tag verdicts."""

    backend: str
    language: str
    images: int
    verdicts: int


@dataclass(frozen=True)
class LibraryEntry:
    """One image's saved feedback for one backend and language, as the Library lists it.

    ``tags`` are the accepted tags, highest confidence first; ``verdicts`` counts every
    saved verdict (accepted or rejected); ``saved_at`` is an ISO-8601 UTC timestamp.
    """

    image_key: str
    filename: str
    source: str
    backend: str
    language: str
    tags: tuple[str, ...]
    verdicts: int
    saved_at: str
    width: int | None = None
    height: int | None = None


class Store:
    """The dashboard's SQLite database. Creating one runs pending migrations."""

    def __init__(self, path: str | Path = DEFAULT_DB_PATH) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.migrate()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # --- schema ------------------------------------------------------------------
    def schema_version(self) -> int:
        """The database's current schema version."""
        with self._connect() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> int:
        """Apply every migration newer than the database; return the version reached."""
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if version > SCHEMA_VERSION:
                    raise RuntimeError(
                        f"The database {self.path} has schema version {version}, newer than "
                        f"this app's {SCHEMA_VERSION}; update the app."
                    )
                for number in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS[number - 1].split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {number}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return SCHEMA_VERSION

    # --- feedback ----------------------------------------------------------------
    def save_feedback(
        self,
        *,
        image_key: str,
        filename: str,
        source: str,
        backend: str,
        language: str,
        threshold: float,
        min_tags: int,
        items: Sequence[FeedbackItem],
        width: int | None = None,
        height: int | None = None,
        thumbnail: bytes | None = None,
    ) -> SaveResult:
        """Record the analyst's verdict on every suggested tag of one image.

        Saving the same image (same backend and language) again replaces its earlier
        feedback instead of adding to it.
        """
        now = _now()
        with self._write() as conn:
            replaced = conn.execute(
                "SELECT 1 FROM feedback WHERE image_key = ? AND backend = ? AND language = ? LIMIT 1",
                (image_key, backend, language),
            ).fetchone() is not None
            conn.execute(
                """INSERT INTO images (image_key, filename, source, width, height, thumbnail,
                                       created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (image_key) DO UPDATE SET
                       filename = excluded.filename, source = excluded.source,
                       width = COALESCE(excluded.width, width),
                       height = COALESCE(excluded.height, height),
                       thumbnail = COALESCE(excluded.thumbnail, thumbnail),
                       updated_at = excluded.updated_at""",
                (image_key, filename, source, width, height, thumbnail, now, now),
            )
            conn.execute(
                "DELETE FROM feedback WHERE image_key = ? AND backend = ? AND language = ?",
                (image_key, backend, language),
            )
            conn.executemany(
                """INSERT INTO feedback (image_key, backend, language, tag, parent, confidence,
                                         accepted, threshold, min_tags, saved_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [
                    (image_key, backend, language, it.tag, it.parent, it.confidence,
                     int(it.accepted), threshold, min_tags, now)
                    for it in items
                ],
            )
        return SaveResult(
            items=len(items), accepted=sum(it.accepted for it in items), replaced=replaced
        )

    def feedback_for(self, image_key: str, backend: str, language: str) -> list[FeedbackItem]:
        """The stored feedback of one image, highest confidence first."""
        with self._connect() as conn:
            rows = conn.execute(
                """SELECT tag, confidence, accepted, parent FROM feedback
                   WHERE image_key = ? AND backend = ? AND language = ?
                   ORDER BY confidence DESC, id""",
                (image_key, backend, language),
            ).fetchall()
        return [FeedbackItem(r["tag"], r["confidence"], bool(r["accepted"]), r["parent"]) for r in rows]

    def counts(self) -> tuple[int, int]:
        """(number of images with feedback, number of feedback items)."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT COUNT(DISTINCT image_key), COUNT(*) FROM feedback"
            ).fetchone()
        return int(row[0]), int(row[1])

    # --- queries for the Tune and Library pages ---------------------------------------
    def feedback_groups(self) -> list[FeedbackGroup]:
        """Every backend and language that has feedback, the most images first."""
        with self._connect() as conn:
            rows = conn.execute(
                """SELECT backend, language, COUNT(DISTINCT image_key), COUNT(*) FROM feedback
                   GROUP BY backend, language ORDER BY 3 DESC, backend, language"""
            ).fetchall()
        return [FeedbackGroup(r[0], r[1], int(r[2]), int(r[3])) for r in rows]

    def feedback_by_image(self, backend: str, language: str) -> dict[str, list[FeedbackItem]]:
        """All feedback of one backend and language: image key -> items, highest confidence first."""
        with self._connect() as conn:
            rows = conn.execute(
                """SELECT image_key, tag, confidence, accepted, parent FROM feedback
                   WHERE backend = ? AND language = ? ORDER BY image_key, confidence DESC, id""",
                (backend, language),
            ).fetchall()
        result: dict[str, list[FeedbackItem]] = {}
        for r in rows:
            result.setdefault(r["image_key"], []).append(
                FeedbackItem(r["tag"], r["confidence"], bool(r["accepted"]), r["parent"])
            )
        return result

    def library_entries(self) -> list[LibraryEntry]:
        """Every image with saved feedback, one entry per backend and language, newest first."""
        with self._connect() as conn:
            rows = conn.execute(
                """SELECT f.image_key, f.backend, f.language, f.tag, f.accepted, f.saved_at,
                          i.filename, i.source, i.width, i.height
                   FROM feedback f JOIN images i ON i.image_key = f.image_key
                   ORDER BY f.image_key, f.backend, f.language, f.confidence DESC, f.id"""
            ).fetchall()
        grouped: dict[tuple[str, str, str], list[sqlite3.Row]] = {}
        for r in rows:
            grouped.setdefault((r["image_key"], r["backend"], r["language"]), []).append(r)
        entries = [
            LibraryEntry(
                image_key=key[0], filename=group[0]["filename"], source=group[0]["source"],
                backend=key[1], language=key[2],
                tags=tuple(r["tag"] for r in group if r["accepted"]),
                verdicts=len(group), saved_at=max(r["saved_at"] for r in group),
                width=group[0]["width"], height=group[0]["height"],
            )
            for key, group in grouped.items()
        ]
        entries.sort(key=lambda e: (e.saved_at, e.filename, e.backend, e.language), reverse=True)
        return entries

    def tag_parents(self) -> list[tuple[str, str, int]]:
        """Every (tag, parent, times seen) pair in the feedback, accepted or not; Imagga's tags have none."""
        with self._connect() as conn:
            rows = conn.execute(
                """SELECT tag, parent, COUNT(*) FROM feedback WHERE parent IS NOT NULL
                   GROUP BY tag, parent ORDER BY tag, parent"""
            ).fetchall()
        return [(r[0], r[1], int(r[2])) for r in rows]

    def thumbnail(self, image_key: str) -> bytes | None:
        """The small JPEG stored with an image, or None."""
        with self._connect() as conn:
            row = conn.execute("SELECT thumbnail FROM images WHERE image_key = ?", (image_key,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def thumbnails(self, image_keys: Sequence[str]) -> dict[str, bytes]:
        """The stored thumbnails of several images (images without one are left out)."""
        keys = list(dict.fromkeys(image_keys))
        result: dict[str, bytes] = {}
        with self._connect() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for r in conn.execute(
                    f"SELECT image_key, thumbnail FROM images WHERE image_key IN ({marks}) "
                    "AND thumbnail IS NOT NULL",
                    chunk,
                ):
                    result[r[0]] = bytes(r[1])
        return result

    def delete_image(self, image_key: str) -> int:
        """Delete an image's record and (by cascade) all its feedback; return the verdicts deleted.

        Messages in the remote-feedback outbox are not touched.
        """
        with self._write() as conn:
            verdicts = int(
                conn.execute("SELECT COUNT(*) FROM feedback WHERE image_key = ?", (image_key,)).fetchone()[0]
            )
            conn.execute("DELETE FROM feedback WHERE image_key = ?", (image_key,))
            conn.execute("DELETE FROM images WHERE image_key = ?", (image_key,))
        return verdicts

    def tag_overrides(self) -> dict[str, float]:
        """Per-tag thresholds ``{tag: threshold}`` (the ``tag_overrides`` setting)."""
        raw = self.get_setting("tag_overrides", {}) or {}
        return {str(tag): float(value) for tag, value in raw.items()}

    def set_tag_override(self, tag: str, threshold: float | None) -> dict[str, float]:
        """Set (or with None, remove) one tag's threshold; return all overrides.

        Read and write happen in one transaction, so two sessions editing different tags
        both keep their change.
        """
        with self._write() as conn:
            row = conn.execute("SELECT value FROM settings WHERE key = 'tag_overrides'").fetchone()
            overrides = {str(k): float(v) for k, v in (json.loads(row[0]) if row else {}).items()}
            if threshold is None:
                overrides.pop(tag, None)
            else:
                overrides[tag] = float(threshold)
            conn.execute(
                "INSERT INTO settings (key, value) VALUES ('tag_overrides', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (json.dumps(overrides, sort_keys=True),),
            )
        return overrides

    # --- outbox ------------------------------------------------------------------
    def enqueue(self, *, image_key: str, backend: str, payload: dict[str, Any]) -> str:
        """Queue a remote-feedback message; return its idempotency key.

        An unsent message for the same image and backend is replaced (the newest verdict
        wins); one already sent stays as the record of what was sent.
        """
        key = uuid.uuid4().hex
        with self._write() as conn:
            conn.execute(
                "DELETE FROM outbox WHERE image_key = ? AND backend = ? AND status = 'pending'",
                (image_key, backend),
            )
            conn.execute(
                """INSERT INTO outbox (idempotency_key, image_key, backend, payload, created_at)
                   VALUES (?, ?, ?, ?, ?)""",
                (key, image_key, backend, json.dumps(payload, sort_keys=True), _now()),
            )
        return key

    def pending(self, backend: str | None = None) -> list[OutboxEntry]:
        """Messages not yet sent, oldest first."""
        query = "SELECT * FROM outbox WHERE status = 'pending'"
        args: tuple[Any, ...] = ()
        if backend is not None:
            query += " AND backend = ?"
            args = (backend,)
        with self._connect() as conn:
            rows = conn.execute(query + " ORDER BY id", args).fetchall()
        return [
            OutboxEntry(r["id"], r["idempotency_key"], r["image_key"], r["backend"],
                        json.loads(r["payload"]), r["status"], r["attempts"], r["last_error"])
            for r in rows
        ]

    def mark_sent(self, idempotency_key: str, response: dict[str, Any]) -> None:
        """Record that a message was delivered, with the service's answer."""
        with self._write() as conn:
            conn.execute(
                """UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?,
                          response = ?, last_error = NULL WHERE idempotency_key = ?""",
                (_now(), json.dumps(response, sort_keys=True), idempotency_key),
            )

    def mark_failed(self, idempotency_key: str, error: str) -> None:
        """Record a failed attempt; the message stays queued."""
        with self._write() as conn:
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE idempotency_key = ?",
                (error, idempotency_key),
            )

    # --- settings ----------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        """A JSON setting, or ``default`` when unset."""
        with self._connect() as conn:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON setting."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )


# --- the old ResultCache (tagging/store/_cache.py) -----------------------------------------
CACHE_FILENAME = "results-cache.db"
BUSY_TIMEOUT_SECONDS = 10.0


def cache_path_for(db_path: str | Path) -> Path:
    """Where the result cache lives for a given feedback database."""
    return Path(db_path).with_name(CACHE_FILENAME)


def cache_key(backend_key: str, image_key: str, request_key: str) -> str:
    """One stable key for a backend, an image and a parameter set."""
    return hashlib.sha256("\x1f".join((backend_key, image_key, request_key)).encode()).hexdigest()


class ResultCache:
    """Backend answers on disk. Thread-safe; counts hits and misses since it was opened."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(
                """CREATE TABLE IF NOT EXISTS results (
                       key TEXT PRIMARY KEY,
                       backend TEXT NOT NULL,
                       image_key TEXT NOT NULL,
                       payload TEXT NOT NULL,
                       created_at TEXT NOT NULL)"""
            )

    def __repr__(self) -> str:
        return f"ResultCache({str(self.path)!r})"

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    def get(self, backend_key: str, image_key: str, request_key: str) -> dict[str, Any] | None:
        """The stored answer, or None (and a miss is counted)."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT payload FROM results WHERE key = ?", (cache_key(backend_key, image_key, request_key),)
            ).fetchone()
        with self._lock:
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return json.loads(row[0])

    def put(self, backend_key: str, image_key: str, request_key: str, payload: dict[str, Any]) -> None:
        """Store an answer (the newest one wins)."""
        with self._connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO results (key, backend, image_key, payload, created_at) VALUES (?, ?, ?, ?, ?)",
                (
                    cache_key(backend_key, image_key, request_key),
                    backend_key,
                    image_key,
                    json.dumps(payload, sort_keys=True),
                    datetime.now(UTC).isoformat(timespec="seconds"),
                ),
            )

    def get_or_compute(
        self, backend_key: str, image_key: str, request_key: str, compute: Callable[[], dict[str, Any]]
    ) -> tuple[dict[str, Any], bool]:
        """The stored answer, or ``compute()``'s stored and returned; the flag says whether it was computed now.

        ``compute`` should raise for an answer that must not be kept: nothing is stored then.
        """
        stored = self.get(backend_key, image_key, request_key)
        if stored is not None:
            return stored, False
        payload = compute()
        self.put(backend_key, image_key, request_key, payload)
        return payload, True

    def __len__(self) -> int:
        with self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def clear(self) -> None:
        """Forget every stored answer."""
        with self._connect() as conn:
            conn.execute("DELETE FROM results")
