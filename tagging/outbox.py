"""Deliver queued remote feedback: stored first, then sent, then marked sent.

The store keeps every message until the service accepts it; each carries an idempotency key
(sent as ``Idempotency-Key``) so a retry after a lost answer is not counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from tagging.errors import (
    AuthError,
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    RateLimitError,
)
from tagging.store import Store

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
    """Send every pending message of ``backend``, oldest first; failures stay queued."""
    report = DeliveryReport()
    for entry in store.pending(backend):
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
