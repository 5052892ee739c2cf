"""Deliver queued remote feedback: stored first, then claimed, then sent, then marked sent.

The store keeps every message until the service accepts it; each carries an idempotency key
(sent as ``Idempotency-Key``) so a retry after a lost answer is not counted twice. Each message
is claimed in the database before it is sent, so two app servers retrying at the same moment
never send the same message both. Only reviewed verdicts are queued: the rule's own selection
saved without review (a batch) would teach the backend its own predictions.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tagging.errors import (
    AuthError,
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    NotReviewedError,
    RateLimitError,
)
from tagging.imagga import build_feedback_payload
from tagging.models import Tag
from tagging.store._schema import REVIEWED
from tagging.store._store import Store

# Failures that will hit every other message too: stop after the first one.
_STOP_ON = (AuthError, BackendConnectionError, BackendTimeoutError, RateLimitError)


class FeedbackSender(Protocol):
    def send_feedback(self, payload: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]: ...


@dataclass
class DeliveryReport:
    """What one delivery round did."""

    sent: int = 0
    failed: int = 0
    remaining: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.remaining == 0


def deliver_pending(store: Store, sender: FeedbackSender, backend: str) -> DeliveryReport:
    """Send every pending message of ``backend`` once, oldest first; failures stay queued.

    Messages another server is sending right now are left to it (and counted as remaining).
    """
    report = DeliveryReport()
    owner = uuid.uuid4().hex
    last_id = 0
    while (entry := store.claim_next(backend, owner, after_id=last_id)) is not None:
        last_id = entry.id
        try:
            response = sender.send_feedback(entry.payload, idempotency_key=entry.idempotency_key)
        except BackendError as exc:
            store.mark_failed(entry.idempotency_key, str(exc))
            report.failed += 1
            report.errors.append(str(exc))
            if isinstance(exc, _STOP_ON):
                break
        else:
            store.mark_sent(entry.idempotency_key, response)
            report.sent += 1
    report.remaining = len(store.pending(backend))
    return report


def queue_feedback(
    store: Store,
    *,
    backend: str,
    image_key: str,
    tags: Sequence[Tag],
    accepted: Collection[str],
    language: str,
    image_url: str | None = None,
) -> str:
    """Queue the analyst's verdict on every suggested tag of one image; return the idempotency key.

    The image is referred to by its URL when Imagga fetched it from one, else by the SHA-256
    of its bytes (uploads are deleted after tagging, so an upload id would point nowhere).
    Raises NotReviewedError when the stored verdicts of this image, backend and language were
    saved automatically (not reviewed): those are never sent.
    """
    stored = store.verdict_set(image_key, backend, language)
    if stored is not None and stored.provenance != REVIEWED:
        raise NotReviewedError(
            "Only reviewed verdicts are sent to the backend as feedback; this image's were saved automatically."
        )
    reference = {"image_url": image_url} if image_url else {"image_sha256": image_key}
    payload = build_feedback_payload(
        reference,
        accepted=[t.name for t in tags if t.name in accepted],
        rejected=[t.name for t in tags if t.name not in accepted],
        language=language,
    )
    return store.enqueue(image_key=image_key, backend=backend, payload=payload)
