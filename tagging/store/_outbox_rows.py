"""The outbox's rows: queue a remote-feedback message, withdraw it, claim it for sending, mark it sent or
failed. A mixin of ``Store`` (which provides ``_read`` and ``_write``); delivery is ``_outbox``'s."""

from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa

from tagging.store import _schema as s
from tagging.store._db import db_epoch
from tagging.store._rows import (
    OutboxEntry,
    _now,
    _outbox_columns,
)
from tagging.store._schema import PENDING, SENT

# How long a server may take to send one claimed outbox message before another may try it:
# well above the Imagga client's worst case for one request with its retries.
OUTBOX_LEASE_SECONDS = 120.0


class OutboxRows:
    """The outbox, mixed into ``Store``."""

    def enqueue(self, *, image_key: str, backend: str, payload: dict[str, Any], queued_by: str | None = None) -> str:
        """Queue a remote-feedback message (signed by ``queued_by``); return its idempotency key.

        An unsent message for the same image and backend is replaced (the newest verdict
        wins), unless a server is sending it right now; one already sent stays as the record
        of what was sent.
        """
        key = uuid.uuid4().hex
        o = s.outbox
        with self._write() as conn:
            now = db_epoch(conn)
            conn.execute(o.delete().where(
                o.c.image_key == image_key, o.c.backend == backend, o.c.status == PENDING,
                sa.or_(o.c.claimed_until.is_(None), o.c.claimed_until < now),
            ))
            conn.execute(o.insert().values(
                idempotency_key=key, image_key=image_key, backend=backend,
                payload=json.dumps(payload, sort_keys=True), status=PENDING, attempts=0, created_at=_now(),
                queued_by=queued_by,
            ))
        return key

    def withdraw(self, idempotency_key: str) -> bool:
        """Take back a message not sent yet (an undone review); False when it was sent or is being sent."""
        o = s.outbox
        with self._write() as conn:
            now = db_epoch(conn)
            removed = conn.execute(o.delete().where(
                o.c.idempotency_key == idempotency_key, o.c.status == PENDING,
                sa.or_(o.c.claimed_until.is_(None), o.c.claimed_until < now),
            )).rowcount
        return removed == 1

    @staticmethod
    def _entry(r: Any) -> OutboxEntry:
        return OutboxEntry(int(r.id), r.idempotency_key, r.image_key, r.backend, json.loads(r.payload), r.status,
                           int(r.attempts), r.last_error)

    def pending(self, backend: str | None = None) -> list[OutboxEntry]:
        """Messages not yet sent (and not held back), oldest first."""
        o = s.outbox
        query = sa.select(*_outbox_columns()).where(o.c.status == PENDING, o.c.held.is_(None)).order_by(o.c.id)
        if backend is not None:
            query = query.where(o.c.backend == backend)
        with self._read() as conn:
            return [self._entry(r) for r in conn.execute(query)]

    def claim_next(self, backend: str, owner: str, after_id: int = 0,
                   lease_seconds: float = OUTBOX_LEASE_SECONDS) -> OutboxEntry | None:
        """Claim the oldest pending message of ``backend`` after ``after_id`` that nobody is sending.

        The claim is committed before the caller sends, so another server retrying at the
        same moment skips it (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's write lock
        serialises the claims). A claim lapses after ``lease_seconds`` (a crashed sender).
        """
        o = s.outbox
        with self._write() as conn:
            now = db_epoch(conn)
            row = conn.execute(
                sa.select(*_outbox_columns())
                .where(o.c.backend == backend, o.c.status == PENDING, o.c.held.is_(None), o.c.id > after_id,
                       sa.or_(o.c.claimed_until.is_(None), o.c.claimed_until < now))
                .order_by(o.c.id).limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return None
            conn.execute(o.update().where(o.c.id == row.id).values(claimed_by=owner, claimed_until=now + lease_seconds))
        return self._entry(row)

    def mark_sent(self, idempotency_key: str, response: dict[str, Any]) -> None:
        """Record that a message was delivered, with the service's answer."""
        o = s.outbox
        with self._write() as conn:
            conn.execute(o.update().where(o.c.idempotency_key == idempotency_key).values(
                status=SENT, attempts=o.c.attempts + 1, sent_at=_now(), response=json.dumps(response, sort_keys=True),
                last_error=None, claimed_by=None, claimed_until=None,
            ))

    def mark_failed(self, idempotency_key: str, error: str) -> None:
        """Record a failed attempt; the message stays queued (and unclaimed) for the next round."""
        o = s.outbox
        with self._write() as conn:
            conn.execute(o.update().where(o.c.idempotency_key == idempotency_key).values(
                attempts=o.c.attempts + 1, last_error=error, claimed_by=None, claimed_until=None,
            ))
