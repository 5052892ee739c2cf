"""Persistent state: images and verdicts, settings, the remote-feedback outbox, the result cache.

``library`` (search, tag tree, exports over library entries) is a public submodule.
"""

from tagging.store._cache import CACHE_FILENAME, ResultCache, cache_key, cache_path_for
from tagging.store._outbox import DeliveryReport, FeedbackSender, deliver_pending, queue_feedback
from tagging.store._store import (
    DEFAULT_DB_PATH,
    MIGRATIONS,
    SCHEMA_VERSION,
    FeedbackGroup,
    FeedbackItem,
    LibraryEntry,
    OutboxEntry,
    SaveResult,
    Store,
)

__all__ = [
    "CACHE_FILENAME", "DEFAULT_DB_PATH", "MIGRATIONS", "SCHEMA_VERSION", "DeliveryReport", "FeedbackGroup",
    "FeedbackItem", "FeedbackSender", "LibraryEntry", "OutboxEntry", "ResultCache", "SaveResult", "Store",
    "cache_key", "cache_path_for", "deliver_pending", "open_result_cache", "open_store", "queue_feedback",
]


def open_store(target: str) -> Store:
    """The store named by ``TAGGING_DB``'s value (a file path today)."""
    return Store(target)


def open_result_cache(target: str) -> ResultCache:
    """The result cache that belongs to the store named by ``TAGGING_DB``'s value."""
    return ResultCache(cache_path_for(target))
