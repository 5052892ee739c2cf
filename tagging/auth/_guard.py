"""The store as one identity may use it: every write checks the role, signs and, where it matters, audits.

Pages get only a :class:`GuardedStore` (``ui.page.start_page``); the functions they pass it to
(``queue_feedback``, ``deliver_pending``, ``save_batch``, the review session) write through it too,
so a page that shows a button it should not still cannot do what the button says.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from tagging.auth import _records as records
from tagging.auth._roles import (
    APPLY_DEFAULT,
    DELETE,
    EXPORT,
    LOCAL,
    OVERRIDE,
    RUN_BATCH,
    SAVE,
    SEND_FEEDBACK,
    SET_CAPS,
    SET_ROLES,
    TAG_IMAGGA,
    Identity,
    require,
)
from tagging.errors import PermissionDeniedError
from tagging.store import Store

# What passes through unchecked: reads (everyone reads everything). Anything else on the Store, a method
# added later included, is refused until it is classified here or given a checked method below
# (tests/test_auth.py fails for a Store method in neither), so raw access (engine, writing) never leaks.
READS = frozenset({
    "awaiting_review", "counts", "feedback_by_image", "feedback_for", "feedback_groups", "get_setting",
    "library_entries", "pending", "preview", "provenance_counts", "review_count", "review_facets", "review_queue",
    "schema_version", "tag_overrides", "tag_parents", "thumbnail", "thumbnails", "unreviewed_sets", "verdict_set",
    "verdict_sets_of", "url", "dialect", "path",
    # issue 16: the library paged and counted in SQL, Tune from aggregates
    "data_version", "iter_library", "library_page", "library_size", "library_tags", "subtree_images", "totals",
    "tune_rows", "tune_sums",
    # issue 18: review modes and missing-tags notes
    "missing_notes", "review_modes", "reviewed_backends",
    # issue 21: the images' analysis summaries
    "analysis_summaries", "colour_names",
})


class GuardedStore:
    """A :class:`~tagging.store.Store` acting as ``identity``: reads pass through, writes are checked.

    Verdicts and outbox messages are signed with ``identity.subject`` whatever the caller passes.
    A refused write raises PermissionDeniedError before touching the database.
    """

    def __init__(self, store: Store, identity: Identity) -> None:
        self._store = store
        self.identity = identity

    def __repr__(self) -> str:
        return f"GuardedStore({self._store.url!r}, {self.identity.subject!r} as {self.identity.role})"

    def __getattr__(self, name: str) -> Any:
        if name not in READS:
            raise AttributeError(f"{name} is not available through the guarded store (tagging.auth._guard.READS)")
        return getattr(self._store, name)

    def guards(self, store: Store) -> bool:
        """Whether this guards ``store`` (that very object)."""
        return self._store is store

    def same_as(self, other: object) -> bool:
        """Whether ``other`` guards the same store for the same person (another session of theirs).

        Without sign-in every session is the local user (its name is only a label, as a reload may not keep it).
        """
        if not isinstance(other, GuardedStore) or other._store is not self._store:
            return False
        both_local = other.identity.source == self.identity.source == LOCAL
        return other.identity == self.identity or (both_local and other.identity.role == self.identity.role)

    @property
    def subject(self) -> str:
        return self.identity.subject

    def require(self, action: str) -> None:
        """Raise PermissionDeniedError unless this identity may take ``action``."""
        require(self.identity, action)

    # --- verdicts and the outbox -------------------------------------------------------------
    def save_feedback(self, **kwargs: Any) -> Any:
        require(self.identity, SAVE)
        kwargs["saved_by"] = self.identity.subject
        return self._store.save_feedback(**kwargs)

    def delete_verdict_set(self, image_key: str, backend: str, language: str) -> int:
        require(self.identity, SAVE)  # an undone review that had created the set
        return self._store.delete_verdict_set(image_key, backend, language)

    def enqueue(self, **kwargs: Any) -> str:
        require(self.identity, SAVE)
        kwargs["queued_by"] = self.identity.subject
        return self._store.enqueue(**kwargs)

    def withdraw(self, idempotency_key: str) -> bool:
        require(self.identity, SAVE)
        return self._store.withdraw(idempotency_key)

    def claim_next(self, *args: Any, **kwargs: Any) -> Any:
        require(self.identity, SEND_FEEDBACK)
        return self._store.claim_next(*args, **kwargs)

    def mark_sent(self, *args: Any, **kwargs: Any) -> None:
        require(self.identity, SEND_FEEDBACK)
        self._store.mark_sent(*args, **kwargs)

    def mark_failed(self, *args: Any, **kwargs: Any) -> None:
        require(self.identity, SEND_FEEDBACK)
        self._store.mark_failed(*args, **kwargs)

    # --- derived data, open to every role ---------------------------------------------------------
    def save_analysis(self, image_key: str, backend: str, summary: Any) -> bool:
        """Open to every role: what an image shows (faces, colour, text) is derived data, like the result
        cache, kept whoever looked; it decides nothing."""
        return self._store.save_analysis(image_key, backend, summary)

    # --- admin actions, each in the trail ------------------------------------------------------
    def delete_image(self, image_key: str) -> int:
        require(self.identity, DELETE)
        removed = self._store.delete_image(image_key)
        records.record(self._store, self.subject, records.DELETE, {"image": image_key, "verdicts": removed})
        return removed

    def set_setting(self, key: str, value: Any) -> None:
        require(self.identity, APPLY_DEFAULT)
        self._store.set_setting(key, value)
        records.record(self._store, self.subject, records.APPLY_DEFAULT, {"setting": key, "value": value})

    def set_tag_override(self, tag: str, threshold: float | None) -> dict[str, float]:
        require(self.identity, OVERRIDE)
        overrides = self._store.set_tag_override(tag, threshold)
        records.record(self._store, self.subject, records.OVERRIDE, {"tag": tag, "threshold": threshold})
        return overrides

    def set_role(self, identity: str, role: str | None) -> None:
        require(self.identity, SET_ROLES)
        records.set_role(self._store, self.subject, identity, role)

    def set_cap(self, identity: str | None, cap: int | None) -> None:
        require(self.identity, SET_CAPS)
        records.set_cap(self._store, self.subject, identity, cap)

    # --- this concern's tables, read (everyone reads everything) -----------------------------------
    def users(self) -> list[records.UserRow]:
        return records.users_of(self._store)

    def audit(self, **filters: Any) -> list[records.AuditEntry]:
        """The trail, newest first (``tagging.auth.audit_entries``' filters)."""
        return records.audit_entries(self._store, **filters)

    def spent_today(self, identity: str | None = None) -> int:
        return records.spent_today(self._store, identity or self.subject)

    def cap_of(self, identity: str | None, default: int | None = None) -> int | None:
        return records.cap_of(self._store, identity, default)

    # --- what the trail records for everyone --------------------------------------------------------
    def record_export(self, what: str, rows: int) -> None:
        require(self.identity, EXPORT)
        records.record(self._store, self.subject, records.EXPORT, {"what": what, "rows": rows})

    def start_batch(self, backend: str, images: int) -> None:
        """Check that this identity may run a batch (and pay for Imagga's) before it starts."""
        require(self.identity, RUN_BATCH)
        if backend == "imagga":
            require(self.identity, TAG_IMAGGA)

    def record_batch(self, backend: str, images: int, calls: int, where: str = "this server") -> None:
        records.record(self._store, self.subject, records.BATCH_RUN,
                       {"backend": backend, "images": images, "where": where}, calls=calls)

    def record_sent(self, sent: int) -> None:
        records.record(self._store, self.subject, records.SEND_FEEDBACK, {"messages": sent})

    def meter(self, target: str, password: str | None = None, default_cap: int | None = None) -> SpendMeter:
        """A meter for this identity's paid calls (sendable to Dask workers); refused for a viewer."""
        require(self.identity, TAG_IMAGGA)
        return SpendMeter(target, self.subject, default_cap, password)


# --- spend, across servers and Dask workers ---------------------------------------------------------
_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


@dataclass(frozen=True)
class SpendMeter:
    """Charges one identity's paid calls in the database named by ``target`` (``TAGGING_DB``'s value).

    A value (picklable, the password kept out of ``repr``): a Batch page sends it to Dask workers
    with the work, and each worker process opens the database once and charges there.
    """

    target: str
    identity: str
    default_cap: int | None = None
    password: str | None = field(default=None, repr=False)

    def __call__(self, calls: int = 1) -> None:
        if not self.identity:
            raise PermissionDeniedError("paid calls need an identity to charge them to")
        with _stores_lock:
            store = _stores.get(self.target)
            if store is None:
                store = _stores[self.target] = Store(self.target, password=self.password)
        records.charge(store, self.identity, calls, self.default_cap)
