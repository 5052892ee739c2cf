"""The SQLite schema as the app created it before the store moved to SQLAlchemy (user_version 1 and 2).

Databases made by those versions exist on analysts' machines; tests build such files with
exactly this DDL and check that the store upgrades them in place without losing a row.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

LEGACY_MIGRATIONS: tuple[str, ...] = (
    # 1: images and per-tag feedback
    """
    CREATE TABLE images (
        image_key TEXT PRIMARY KEY,
        filename TEXT NOT NULL,
        source TEXT NOT NULL,
        width INTEGER,
        height INTEGER,
        thumbnail BLOB,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY,
        image_key TEXT NOT NULL REFERENCES images(image_key) ON DELETE CASCADE,
        backend TEXT NOT NULL,
        language TEXT NOT NULL,
        tag TEXT NOT NULL,
        parent TEXT,
        confidence REAL NOT NULL,
        accepted INTEGER NOT NULL CHECK (accepted IN (0, 1)),
        threshold REAL NOT NULL,
        min_tags INTEGER NOT NULL,
        saved_at TEXT NOT NULL,
        UNIQUE (image_key, backend, language, tag)
    );
    CREATE INDEX feedback_tag ON feedback(tag);
    """,
    # 2: outbox of feedback to send to a remote backend, and key/value settings
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        image_key TEXT NOT NULL,
        backend TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        response TEXT,
        created_at TEXT NOT NULL,
        sent_at TEXT
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
)


def make_legacy_db(path: Path, version: int) -> sqlite3.Connection:
    """A SQLite file at ``PRAGMA user_version = version`` (1 or 2), made with the old DDL; an open connection."""
    conn = sqlite3.connect(path)
    for number in range(1, version + 1):
        conn.executescript(LEGACY_MIGRATIONS[number - 1])
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    return conn


def make_legacy_cache(path: Path, rows: list[tuple[str, str, str, str, str]]) -> None:
    """A ``results-cache.db`` as the old ResultCache made it: (key, backend, image_key, payload, created_at)."""
    conn = sqlite3.connect(path)
    conn.execute(
        """CREATE TABLE IF NOT EXISTS results (
               key TEXT PRIMARY KEY,
               backend TEXT NOT NULL,
               image_key TEXT NOT NULL,
               payload TEXT NOT NULL,
               created_at TEXT NOT NULL)"""
    )
    conn.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
