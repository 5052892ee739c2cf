"""Specific exceptions raised by the tagging package.

Every message is written for the analyst using the dashboard: pages show ``str(exc)``
in an ``st.error`` as it is. Messages never contain credentials.
"""

from __future__ import annotations


class TaggingError(Exception):
    """Base class of every error the package raises on purpose."""


# --- image intake -----------------------------------------------------------------
class BadImageError(TaggingError):
    """The bytes are not an image we can read (not an image, truncated, unsupported)."""


class ImageTooLargeError(BadImageError):
    """The file is larger than the configured byte limit."""


class DecompressionBombError(BadImageError):
    """The image declares more pixels than the configured pixel limit."""


class SourceReadError(BadImageError):
    """An image's bytes could not be read from where they live (a file, an archive member, a URL)."""


# --- image URLs -------------------------------------------------------------------
class URLRejectedError(TaggingError):
    """The URL is not allowed (scheme, host, private or loopback address)."""


class FetchError(TaggingError):
    """Fetching an image URL failed (timeout, HTTP error, too large)."""


# --- backend responses ------------------------------------------------------------
class MalformedResponseError(TaggingError):
    """A backend answered with a body that is not the documented JSON shape."""


class BackendError(TaggingError):
    """A tagging backend failed; subclasses say how."""


class AuthError(BackendError):
    """The backend rejected the credentials (HTTP 401/403)."""


class RateLimitError(BackendError):
    """The backend kept answering 429 after the bounded retries."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerError(BackendError):
    """The backend kept answering 5xx after the bounded retries."""


class BackendTimeoutError(BackendError):
    """The backend did not answer within the timeout."""


class BackendConnectionError(BackendError):
    """The backend could not be reached, or the connection broke before an answer came."""


class BackendUnreachableError(BackendConnectionError):
    """No connection was made (refused, DNS failure, connect timeout): the request never left."""


class ApiError(BackendError):
    """The backend answered ``status.type == "error"``; the message is its own text."""


class SelectionError(TaggingError):
    """An edited tag selection contains tags that were not suggested."""


# --- the store (feedback database, outbox, result cache) ---------------------------
class StoreError(TaggingError):
    """The database refused an operation or could not be used; the message names it without a password."""


class StoreUnavailableError(StoreError):
    """The database could not be reached (server down, wrong host or password, file not writable)."""


class StoreConfigError(StoreError):
    """``TAGGING_DB`` is not something the store can open (never echoed: it may hold a password)."""


class SchemaVersionError(StoreError):
    """The database was migrated by a newer version of the app."""


class NotReviewedError(TaggingError):
    """Only verdicts an analyst reviewed may be sent to a backend as feedback."""


# --- batches from the command line and on a cluster -------------------------------
class BatchInputError(TaggingError):
    """A batch input (a path, a glob, a URL) cannot be used at all: missing, unreadable, unknown protocol."""


class ClusterError(TaggingError):
    """The Dask cluster cannot be used: the scheduler is unreachable, or the workers cannot run the batch."""


class PermissionDeniedError(TaggingError):
    """The signed-in identity's role may not take this action; the message says which role may."""


class SpendCapError(TaggingError):
    """The identity has used its daily cap of paid (Imagga) calls; the message says when it resets."""
