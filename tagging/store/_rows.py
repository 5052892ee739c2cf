"""What the store returns (frozen values) and the small SQL helpers its parts share."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection

from tagging.store import _schema as s
from tagging.store._db import POSTGRESQL
from tagging.store._schema import REVIEWED


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- values ------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeedbackItem:
    """One suggested tag and whether the analyst accepted it."""

    tag: str
    confidence: float
    accepted: bool
    parent: str | None = None


@dataclass(frozen=True)
class SaveResult:
    """What ``save_feedback`` did.

    ``replaced`` is True when the image (same backend and language) had verdicts before;
    ``previous_*`` say whose, when and of which provenance. ``replaced_other`` is True when
    they were saved by someone other than this save's ``saved_by``. ``kept`` is True when an
    automatic save met reviewed verdicts and left them alone (nothing was written).
    """

    items: int
    accepted: int
    replaced: bool
    previous_saved_by: str | None = None
    previous_saved_at: str | None = None
    previous_provenance: str | None = None
    replaced_other: bool = False
    kept: bool = False


@dataclass(frozen=True)
class VerdictSet:
    """How one image's verdicts for one backend and language came to be."""

    image_key: str
    backend: str
    language: str
    provenance: str
    saved_at: str
    saved_by: str | None
    threshold: float
    min_tags: int
    batch: str | None = None
    review_mode: str | None = None  # reviewed sets: ``prefilled`` or ``blind``; None before it was recorded
    missing_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutboxEntry:
    """One remote-feedback message waiting to be sent (or sent)."""

    id: int
    idempotency_key: str
    image_key: str
    backend: str
    payload: dict[str, Any]
    status: str
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class FeedbackGroup:
    """How much feedback one backend and language has: images and tag verdicts."""

    backend: str
    language: str
    images: int
    verdicts: int


@dataclass(frozen=True)
class LibraryEntry:
    """One image's saved feedback for one backend and language, as the Library lists it.

    ``tags`` are the accepted tags, highest confidence first; ``verdicts`` counts every
    saved verdict (accepted or rejected); ``saved_at`` is an ISO-8601 UTC timestamp;
    ``provenance`` is ``reviewed`` or ``automatic``.
    """

    image_key: str
    filename: str
    source: str
    backend: str
    language: str
    tags: tuple[str, ...]
    verdicts: int
    saved_at: str
    width: int | None = None
    height: int | None = None
    provenance: str = REVIEWED
    saved_by: str | None = None
    review_mode: str | None = None
    missing_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReviewFilters:
    """Which automatic verdict sets the review queue shows; None means any.

    ``tag`` keeps images with that suggested tag (accepted or not), compared exactly.
    """

    backend: str | None = None
    language: str | None = None
    batch: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class ReviewItem:
    """One image waiting for review: its automatic verdicts and where they came from.

    ``items`` are every suggested tag, highest confidence first, ``accepted`` being the rule's
    selection. ``gap`` is the distance of its tag nearest the asked threshold (order ``nearest``).
    """

    image_key: str
    filename: str
    source: str
    backend: str
    language: str
    saved_at: str
    saved_by: str | None
    threshold: float
    min_tags: int
    batch: str | None
    width: int | None
    height: int | None
    items: tuple[FeedbackItem, ...]
    gap: float | None = None


@dataclass(frozen=True)
class ReviewFacets:
    """What the review queue can be filtered by: values of the sets awaiting review (batches newest first)."""

    backends: tuple[str, ...]
    languages: tuple[str, ...]
    batches: tuple[str, ...]


@dataclass(frozen=True)
class ReviewPage:
    """One page of the review queue: ``total`` matching sets, this page from ``offset``."""

    items: list[ReviewItem]
    total: int
    offset: int
    limit: int


def _insert(conn: Connection, table: sa.Table) -> Any:
    """INSERT with ON CONFLICT support in this connection's dialect (the same API on both)."""
    return (pg.insert if conn.dialect.name == POSTGRESQL else sqlite_dialect.insert)(table)


def _one_of(conn: Connection, column: sa.ColumnElement[str], values: Sequence[str]) -> sa.ColumnElement[bool]:
    """``column IN values`` in this connection's dialect: one array parameter on PostgreSQL, where a thousand
    separate parameters cost more to bind and plan than the query costs to run; SQLite's ``IN (?, ?, ...)``."""
    if conn.dialect.name == POSTGRESQL:
        return column == sa.any_(sa.bindparam(None, list(values), type_=pg.ARRAY(sa.Text)))
    return column.in_(list(values))


def _set_key(table: sa.Table, image_key: str, backend: str, language: str) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.image_key == image_key, table.c.backend == backend, table.c.language == language)


def _same_set(a: sa.Table | Any, b: sa.Table | Any) -> sa.ColumnElement[bool]:
    return sa.and_(a.c.image_key == b.c.image_key, a.c.backend == b.c.backend, a.c.language == b.c.language)


def _missing_json(tags: Sequence[str]) -> str | None:
    """A missing-tags note as stored: a JSON list (None when empty), blanks and repeats (any case) dropped."""
    clean: dict[str, str] = {}  # case-folded form -> the first spelling
    for tag in tags:
        text = " ".join(str(tag).split())
        if text:
            clean.setdefault(text.casefold(), text)
    return json.dumps(list(clean.values()), ensure_ascii=False) if clean else None


def _missing_tuple(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    try:
        value = json.loads(text)
    except ValueError:
        return ()
    return tuple(str(t) for t in value) if isinstance(value, list) else ()


def _verdict_set(row: Any) -> VerdictSet:
    return VerdictSet(row.image_key, row.backend, row.language, row.provenance, row.saved_at, row.saved_by,
                      float(row.threshold), int(row.min_tags), row.batch, row.review_mode,
                      _missing_tuple(row.missing_tags))
def _outbox_columns() -> list[sa.Column]:
    # What an OutboxEntry holds: not queued_by, so a database one migration behind still reads its outbox.
    return [c for c in s.outbox.c if c.name != "queued_by"]


def _item(row: Any) -> FeedbackItem:
    return FeedbackItem(row.tag, float(row.confidence), bool(row.accepted), row.parent)
