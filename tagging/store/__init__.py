"""Persistent state: images and verdicts, settings, the remote-feedback outbox, the result cache.

One schema and one query layer (SQLAlchemy Core) over SQLite and PostgreSQL; see ``_store``.
``library`` (search, tag tree, exports over library entries) is a public submodule.
"""

from __future__ import annotations

from pathlib import Path

from tagging.store._analysis import (
    analysis_condition,
)
from tagging.store._cache import (
    CACHE_FILENAME,
    LEASE_SECONDS,
    CachedAnswer,
    ResultCache,
    UnjudgedAnswer,
    cache_key,
    cache_path_for,
    store_backend,
)
from tagging.store._db import display, without_password
from tagging.store._outbox import DeliveryReport, FeedbackSender, deliver_pending, queue_feedback
from tagging.store._queries import ALL, ANY, Cursor, TagSearch, cursor_of
from tagging.store._review_queue import MAX_PAGE, NEAREST, NEWEST, OLDEST, REVIEW_ORDERS
from tagging.store._rows import (
    FeedbackGroup,
    FeedbackItem,
    LibraryEntry,
    OutboxEntry,
    ReviewFacets,
    ReviewFilters,
    ReviewItem,
    ReviewPage,
    SaveResult,
    VerdictSet,
)
from tagging.store._schema import (
    AUTOMATIC,
    BLIND,
    MIGRATIONS,
    PREFILLED,
    PROVENANCES,
    REVIEW_MODES,
    REVIEWED,
    SCHEMA_VERSION,
    Migration,
)
from tagging.store._store import DEFAULT_DB_PATH, Store
from tagging.store._tune_sums import SUMS_FLOOR

__all__ = [
    "ALL", "ANY", "AUTOMATIC", "BLIND", "CACHE_FILENAME", "CachedAnswer", "Cursor", "DEFAULT_DB_PATH",
    "DeliveryReport", "FeedbackGroup", "FeedbackItem", "FeedbackSender", "LEASE_SECONDS", "LibraryEntry", "MAX_PAGE",
    "MIGRATIONS", "Migration", "NEAREST", "NEWEST", "OLDEST", "OutboxEntry", "PREFILLED", "PROVENANCES", "REVIEWED",
    "REVIEW_MODES", "REVIEW_ORDERS", "ResultCache", "ReviewFacets", "ReviewFilters", "ReviewItem", "ReviewPage",
    "SCHEMA_VERSION", "SUMS_FLOOR", "SaveResult", "Store", "TagSearch", "UnjudgedAnswer", "VerdictSet",
    "analysis_condition", "cache_key", "cache_path_for",
    "cursor_of", "deliver_pending", "display", "open_result_cache", "open_store", "queue_feedback",
    "store_backend", "without_password",
]


def open_store(target: str | Path, password: str | None = None) -> Store:
    """The store named by ``TAGGING_DB``'s value (file path, sqlite:/// or postgresql:// URL), migrated.

    ``password`` (``TAGGING_DB_PASSWORD``) is used for a PostgreSQL URL instead of the URL's own.
    """
    return Store(target, password=password)


def open_result_cache(target: str | Path | Store, password: str | None = None) -> ResultCache:
    """The result cache in the database named by ``TAGGING_DB``'s value (or in an open ``Store``'s)."""
    return ResultCache(target if isinstance(target, Store) else open_store(target, password))
