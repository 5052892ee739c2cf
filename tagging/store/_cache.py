"""A disk cache of backend answers, so an image is never sent (or billed) twice.

Keyed by backend, image (SHA-256 of its bytes, or of its URL) and request parameters. It
lives in its own SQLite file beside the feedback database: it can be deleted at any time
without losing anything but money.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
