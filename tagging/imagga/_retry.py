"""The client's retry policy: bounded retries whose sleeps fit a budget, and ``Retry-After``."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ResponseError
from urllib3.util.retry import Retry

# Retry policy: at most DEFAULT_RETRIES retries of 429/500/502/503/504 and refused
# connections, sleeping backoff_factor * 2**(n-1) s between them (0 s before the first
# retry, then 1 s, 2 s ...) or what ``Retry-After`` asks for. The sleeps of one call
# add up to at most DEFAULT_MAX_RETRY_AFTER seconds: when the server asks for more
# than what is left of that budget the client gives up at once, so the page never
# hangs on a long Retry-After.
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF_FACTOR = 0.5
DEFAULT_MAX_RETRY_AFTER = 10.0

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Tagging, categorising, deleting and uploading are idempotent for us (a repeated
# upload only leaves an extra copy Imagga deletes within 24 h); feedback carries an
# Idempotency-Key, so POST is retried too.
RETRY_METHODS = frozenset({"GET", "POST", "DELETE", "HEAD"})


class BudgetRetry(Retry):
    """urllib3 ``Retry`` whose sleeps within one call add up to at most ``max_wait`` s.

    Before each retry it works out the coming sleep (``Retry-After`` if the response
    has one, else the exponential backoff); if that would overrun the budget it gives
    up at once, so the caller sees the last response (429/5xx) straight away.
    """

    def __init__(self, *args: Any, max_wait: float = DEFAULT_MAX_RETRY_AFTER,
                 waited: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_wait = max_wait
        self.waited = waited

    def new(self, **kw: Any) -> BudgetRetry:
        kw.setdefault("max_wait", self.max_wait)
        kw.setdefault("waited", self.waited)
        return super().new(**kw)

    def parse_retry_after(self, retry_after: str) -> float:
        # urllib3's own parser raises on "1.5" or a malformed date; fall back to backoff.
        seconds = retry_after_seconds(retry_after)
        return min(seconds, self.retry_after_max) if seconds else 0.0

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> BudgetRetry:
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        asked = 0.0
        if response is not None and self.respect_retry_after_header:
            asked = retry_after_seconds(response.headers.get("Retry-After")) or 0.0
        # the same choice urllib3's Retry.sleep() makes: Retry-After if non-zero, else backoff
        wait = asked if asked else new.get_backoff_time()
        if self.waited + wait > self.max_wait:
            reason = error or ResponseError(
                f"retry would wait {wait:g} s, over the {self.max_wait:g} s budget"
            )
            raise MaxRetryError(_pool, url, reason)
        new.waited = self.waited + wait
        return new


def never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether the last attempt failed before a connection existed (refused, DNS), so nothing was sent.

    A connection that broke after it was made ("Connection aborted") may have carried the request.
    """
    cause = exc.args[0] if exc.args else None
    return isinstance(getattr(cause, "reason", cause), NewConnectionError)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
