"""Backend answers kept in the database, so an image is never sent (or billed) twice.

Keyed by backend, image (SHA-256 of its bytes, or of its URL) and request parameters. The
answers live in the store's own database (table ``result_cache``), so every app server and
worker on one database shares them. ``clear()`` forgets them: that loses nothing but money.

``get_or_compute`` is race-free across threads, processes and servers: the first caller of a
missing key takes a lease row (``result_claims``) and computes, renewing the lease while it
works; concurrent callers for the same key wait for its answer. A caller that crashed stops
renewing, its lease lapses after ``lease_seconds``, and the next caller takes over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tagging.errors import StoreError
from tagging.store import _schema as s
from tagging.store._db import db_epoch
from tagging.store._rows import _insert
from tagging.store._store import Store

log = logging.getLogger("tagging.store")

CACHE_FILENAME = s.LEGACY_CACHE_FILENAME
# How long a lease lasts without renewal. A computing caller renews it every third of this, so
# only a crashed one lets it lapse: then the others wait at most this long before taking over.
LEASE_SECONDS = 30.0
# Waiting callers look again after this, doubling up to MAX_POLL_SECONDS: an answer usually
# arrives within a second or two, and a long wait need not hammer the database.
POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 1.0
# Backends whose answers are cached under "<name>:<base URL>" (the pages' backend ids), while the
# store keeps their verdicts under "<name>"; any other cache key is the store's name as it is.
URL_QUALIFIED = ("imagga",)


def store_backend(backend_key: str) -> str:
    """The store's backend name for a result-cache backend key (``imagga:https://…`` -> ``imagga``)."""
    name, _, rest = backend_key.partition(":")
    return name if rest and name in URL_QUALIFIED else backend_key


def _store_backend_sql(column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """``store_backend`` in SQL, the same on every database."""
    return sa.case(*[(column.like(f"{name}:%"), sa.literal(name)) for name in URL_QUALIFIED], else_=column)


@dataclass(frozen=True)
class CachedAnswer:
    """One stored backend answer for an image: its cache backend key, payload and when it was stored."""

    backend_key: str
    image_key: str
    payload: dict[str, Any]
    created_at: str

    @property
    def backend(self) -> str:
        return store_backend(self.backend_key)


@dataclass(frozen=True)
class UnjudgedAnswer:
    """A cached answer for an image the store knows (filename, source) with no verdicts of its backend."""

    answer: CachedAnswer
    filename: str
    source: str


def cache_path_for(db_path: str | Path) -> Path:
    """Where the result cache of a SQLite database lived before it moved into the database."""
    return Path(db_path).with_name(CACHE_FILENAME)


def cache_key(backend_key: str, image_key: str, request_key: str) -> str:
    """One stable key for a backend, an image and a parameter set."""
    return hashlib.sha256("\x1f".join((backend_key, image_key, request_key)).encode()).hexdigest()


class ResultCache:
    """Backend answers in the store's database. Thread-safe; counts hits and misses since it was opened.

    ``target`` is a :class:`Store` (sharing its connections) or anything ``Store`` opens.
    """

    def __init__(self, target: Store | str | Path, *, lease_seconds: float = LEASE_SECONDS,
                 password: str | None = None) -> None:
        self.store = target if isinstance(target, Store) else Store(target, password=password)
        self.path = self.store.path
        self.lease_seconds = lease_seconds
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"ResultCache({self.store.url!r})"

    def _count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def _lookup(self, key: str) -> dict[str, Any] | None:
        c = s.result_cache
        with self.store._read() as conn:
            raw = conn.execute(sa.select(c.c.payload).where(c.c.key == key)).scalar()
        return None if raw is None else json.loads(raw)

    def get(self, backend_key: str, image_key: str, request_key: str) -> dict[str, Any] | None:
        """The stored answer, or None (and a miss is counted)."""
        payload = self._lookup(cache_key(backend_key, image_key, request_key))
        self._count(payload is not None)
        return payload

    def _row(self, key: str, backend_key: str, image_key: str, payload: dict[str, Any]) -> dict[str, Any]:
        return dict(key=key, backend=backend_key, image_key=image_key, payload=json.dumps(payload, sort_keys=True),
                    created_at=datetime.now(UTC).isoformat(timespec="seconds"))

    def put(self, backend_key: str, image_key: str, request_key: str, payload: dict[str, Any]) -> None:
        """Store an answer (the newest one wins)."""
        row = self._row(cache_key(backend_key, image_key, request_key), backend_key, image_key, payload)
        c = s.result_cache
        with self.store._write() as conn:
            conn.execute(_insert(conn, c).values(**row).on_conflict_do_update(
                index_elements=["key"], set_={"payload": row["payload"], "created_at": row["created_at"]}
            ))

    def _claim(self, key: str, owner: str) -> bool | dict[str, Any]:
        """Take the lease on ``key``: True if taken, False if someone else holds it, or the answer if it arrived."""
        claims, c = s.result_claims, s.result_cache
        with self.store._write() as conn:
            now = db_epoch(conn)
            held_by = conn.execute(
                _insert(conn, claims)
                .values(key=key, owner=owner, expires_at=now + self.lease_seconds,
                        claimed_at=datetime.now(UTC).isoformat(timespec="seconds"))
                .on_conflict_do_update(
                    index_elements=["key"],
                    set_={"owner": owner, "expires_at": now + self.lease_seconds},
                    where=claims.c.expires_at < now,  # only a lapsed lease is taken over
                )
                .returning(claims.c.owner)
            ).scalar()
            if held_by != owner:
                return False
            # The previous holder may have stored the answer and let go between our look and our claim.
            raw = conn.execute(sa.select(c.c.payload).where(c.c.key == key)).scalar()
            if raw is not None:
                conn.execute(claims.delete().where(claims.c.key == key, claims.c.owner == owner))
                return json.loads(raw)
        return True

    def _renew_while(self, key: str, owner: str, done: threading.Event) -> None:
        """Keep extending the lease until ``done`` is set (runs in a thread beside ``compute``)."""
        claims = s.result_claims
        while not done.wait(self.lease_seconds / 3):
            try:
                with self.store._write() as conn:
                    conn.execute(claims.update().where(claims.c.key == key, claims.c.owner == owner)
                                 .values(expires_at=db_epoch(conn) + self.lease_seconds))
            except StoreError as exc:  # the next beat tries again; at worst another caller takes over
                log.warning("could not renew a result-cache lease (%s)", exc)

    def _release(self, key: str, owner: str) -> None:
        claims = s.result_claims
        try:
            with self.store._write() as conn:
                conn.execute(claims.delete().where(claims.c.key == key, claims.c.owner == owner))
        except StoreError as exc:  # the lease lapses on its own; the caller's own error matters more
            log.warning("could not release a result-cache lease (%s); it lapses by itself", exc)

    def _finish(self, key: str, owner: str, backend_key: str, image_key: str, payload: dict[str, Any]) -> None:
        """Store the answer and let go of the lease in one transaction, so waiters see one or the other."""
        row = self._row(key, backend_key, image_key, payload)
        c, claims = s.result_cache, s.result_claims
        with self.store._write() as conn:
            conn.execute(_insert(conn, c).values(**row).on_conflict_do_update(
                index_elements=["key"], set_={"payload": row["payload"], "created_at": row["created_at"]}
            ))
            conn.execute(claims.delete().where(claims.c.key == key, claims.c.owner == owner))

    def get_or_compute(
        self, backend_key: str, image_key: str, request_key: str, compute: Callable[[], dict[str, Any]]
    ) -> tuple[dict[str, Any], bool]:
        """The stored answer, or ``compute()``'s stored and returned; the flag says whether it was computed here.

        Across every caller on this database, one computes a missing answer while the others
        wait for it. ``compute`` should raise for an answer that must not be kept: nothing is
        stored then, the lease is let go, and a waiting caller computes instead. Raises
        StoreError only before ``compute`` was called (the database is unreachable); once an
        answer is computed it is returned even if storing it fails (that is logged).
        """
        key = cache_key(backend_key, image_key, request_key)
        owner = uuid.uuid4().hex
        delay = POLL_SECONDS
        while True:
            stored = self._lookup(key)
            if stored is not None:
                self._count(True)
                return stored, False
            claimed = self._claim(key, owner)
            if isinstance(claimed, dict):
                self._count(True)
                return claimed, False
            if claimed:
                break
            time.sleep(delay)
            delay = min(delay * 2, MAX_POLL_SECONDS)
        self._count(False)
        done = threading.Event()
        threading.Thread(target=self._renew_while, args=(key, owner, done), name="result-cache-lease",
                         daemon=True).start()
        try:
            payload = compute()
        except BaseException:
            done.set()
            self._release(key, owner)
            raise
        done.set()
        try:
            self._finish(key, owner, backend_key, image_key, payload)
        except (StoreError, TypeError, ValueError) as exc:  # the answer is still good; only the sharing failed
            log.warning("could not store a computed answer in the result cache (%s)", exc)
            self._release(key, owner)
        return payload, True

    def answers_for(self, image_key: str) -> list[CachedAnswer]:
        """Every stored answer for one image (any backend or parameters), newest first; nothing is called."""
        c = s.result_cache
        with self.store._read() as conn:
            rows = conn.execute(
                sa.select(c.c.backend, c.c.image_key, c.c.payload, c.c.created_at)
                .where(c.c.image_key == image_key).order_by(c.c.created_at.desc(), c.c.key)
            ).all()
        return [CachedAnswer(r.backend, r.image_key, json.loads(r.payload), r.created_at) for r in rows]

    def _unjudged(self) -> tuple[Any, list[sa.ColumnElement[bool]]]:
        c, i, v = s.result_cache, s.images, s.verdict_sets
        judged = sa.exists().where(v.c.image_key == c.c.image_key, v.c.backend == _store_backend_sql(c.c.backend))
        return c.join(i, i.c.image_key == c.c.image_key), [~judged]

    def count_unjudged(self) -> int:
        """How many (image, backend) pairs have a cached answer for an image the store knows, and no verdicts.

        Images the store knows have a row in ``images`` (saved from the Tag or Batch page); an
        answer counts when the image has no verdict set of that backend in any language.
        """
        c = s.result_cache
        joined, conditions = self._unjudged()
        pairs = sa.select(c.c.image_key, c.c.backend).select_from(joined).where(*conditions).distinct().subquery()
        with self.store._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(pairs)).scalar_one())

    def unjudged(self, limit: int = 200) -> list[UnjudgedAnswer]:
        """Up to ``limit`` of the answers ``count_unjudged`` counts, the newest per image and backend key.

        Oldest images first; judging them (or saving them as automatic verdicts) takes them off.
        """
        c, i = s.result_cache, s.images
        joined, conditions = self._unjudged()
        newest = (
            sa.select(c.c.image_key, c.c.backend, sa.func.max(c.c.created_at).label("created_at"))
            .select_from(joined).where(*conditions)
            .group_by(c.c.image_key, c.c.backend)
            .order_by(sa.func.max(c.c.created_at), c.c.image_key, c.c.backend)
            .limit(limit).subquery()
        )
        with self.store._read() as conn:
            rows = conn.execute(
                sa.select(c.c.backend, c.c.image_key, c.c.payload, c.c.created_at, i.c.filename, i.c.source)
                .select_from(
                    newest.join(c, sa.and_(c.c.image_key == newest.c.image_key, c.c.backend == newest.c.backend,
                                           c.c.created_at == newest.c.created_at))
                    .join(i, i.c.image_key == c.c.image_key)
                )
                .order_by(c.c.created_at, c.c.image_key, c.c.backend, c.c.key)
            ).all()
        found: dict[tuple[str, str], UnjudgedAnswer] = {}
        for r in rows:  # two answers stored in the same second: the first in key order stands
            found.setdefault((r.image_key, r.backend), UnjudgedAnswer(
                CachedAnswer(r.backend, r.image_key, json.loads(r.payload), r.created_at), r.filename, r.source))
        return list(found.values())

    def __len__(self) -> int:
        c = s.result_cache
        with self.store._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(c)).scalar_one())

    def clear(self) -> None:
        """Forget every stored answer."""
        with self.store._write() as conn:
            conn.execute(s.result_cache.delete())
