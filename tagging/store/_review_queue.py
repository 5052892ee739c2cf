"""The review queue's reads: automatic verdict sets waiting for review, paged in the query, and the sets of one
image. A mixin of ``Store`` (which provides ``_read`` and ``_write``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tagging.store import _counters, _tune_sums
from tagging.store import _schema as s
from tagging.store._db import SQLITE
from tagging.store._rows import (
    FeedbackItem,
    ReviewFacets,
    ReviewFilters,
    ReviewItem,
    ReviewPage,
    VerdictSet,
    _item,
    _same_set,
    _set_key,
    _verdict_set,
)
from tagging.store._schema import AUTOMATIC

NEWEST, OLDEST, NEAREST = "newest", "oldest", "nearest"
REVIEW_ORDERS = (NEWEST, OLDEST, NEAREST)
MAX_PAGE = 500  # one page of the review queue; more is a bug in the caller, not a bigger page
# "nearest" first reads the verdicts within this many points of the threshold (scaled down for queues
# longer than NEAREST_SMALL_QUEUE), widening 4x until a page is full: a few hundred rows for a first page
# of a long queue instead of all of them.
NEAREST_FIRST_WINDOW = 0.5
NEAREST_MIN_WINDOW = 0.01
CONFIDENCE_SPAN = 100.0
NEAREST_SMALL_QUEUE = 500  # sets; one pass over all their verdicts beats several windows


class ReviewQueue:
    """The review queue, mixed into ``Store``."""

    def _queue_conditions(self, filters: ReviewFilters | None, by_index: bool = True) -> list[sa.ColumnElement[bool]]:
        """The queue's WHERE clause. ``by_index=False`` hides the provenance from the planner (see ``_nearest``)."""
        v, f = s.verdict_sets, s.feedback
        provenance = v.c.provenance if by_index else v.c.provenance + ""
        conditions: list[sa.ColumnElement[bool]] = [provenance == AUTOMATIC]
        filters = filters or ReviewFilters()
        if filters.backend is not None:
            conditions.append(v.c.backend == filters.backend)
        if filters.language is not None:
            conditions.append(v.c.language == filters.language)
        if filters.batch is not None:
            conditions.append(v.c.batch == filters.batch)
        if filters.tag is not None:
            conditions.append(sa.exists().where(_same_set(f, v), f.c.tag == filters.tag))
        return conditions

    def review_count(self, filters: ReviewFilters | None = None) -> int:
        """How many verdict sets (image × backend × language) await review: saved automatically."""
        v = s.verdict_sets
        with self._read() as conn:
            return int(conn.execute(
                sa.select(sa.func.count()).select_from(v).where(*self._queue_conditions(filters))
            ).scalar_one())

    def awaiting_review(self, backend: str | None = None, language: str | None = None) -> int:
        """How many tagged images have automatic verdicts and no review yet (of one backend/language, if given)."""
        v = s.verdict_sets
        with self._read() as conn:
            return int(conn.execute(
                sa.select(sa.func.count(sa.distinct(v.c.image_key)))
                .where(*self._queue_conditions(ReviewFilters(backend=backend, language=language)))
            ).scalar_one())

    def review_queue(
        self,
        offset: int = 0,
        limit: int = 20,
        order: str = NEWEST,
        filters: ReviewFilters | None = None,
        threshold: float | None = None,
    ) -> ReviewPage:
        """One page of the images awaiting review (automatic verdict sets), paged in the query.

        ``order``: ``newest`` or ``oldest`` saved first, or ``nearest``: the sets whose tag
        nearest ``threshold`` is closest to it first (their verdicts teach the threshold most;
        sets without any tag come last). Ties go by saving time, then
        key, so pages never overlap. Save the reviewed verdicts with
        ``save_feedback(..., provenance="reviewed")``: the set then leaves the queue.
        """
        if order not in REVIEW_ORDERS:
            raise ValueError(f"order must be one of {REVIEW_ORDERS}, not {order!r}")
        if order == NEAREST and threshold is None:
            raise ValueError("order 'nearest' needs the threshold")
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"offset must be >= 0 and limit 1..{MAX_PAGE}")
        v, i = s.verdict_sets, s.images
        conditions = self._queue_conditions(filters)
        columns = self._queue_columns()
        with self._read() as conn:
            total = int(conn.execute(sa.select(sa.func.count()).select_from(v).where(*conditions)).scalar_one())
            if order == NEAREST:
                # SQLite only: PostgreSQL keeps statistics (autovacuum) and misjudges the hidden column instead.
                window_conditions = self._queue_conditions(filters, by_index=self.dialect != SQLITE)
                rows = self._nearest(conn, columns, conditions, window_conditions, offset, limit, float(threshold),
                                     total)
            else:
                keys = [v.c.saved_at, v.c.image_key, v.c.backend, v.c.language]
                rows = conn.execute(
                    sa.select(*columns, sa.null().label("gap"))
                    .select_from(v.join(i, i.c.image_key == v.c.image_key))
                    .where(*conditions)
                    .order_by(*[k.desc() if order == NEWEST else k.asc() for k in keys])
                    .offset(offset).limit(limit)
                ).all()
            page = self._review_items(conn, rows)
        return ReviewPage(page, total, offset, limit)

    @staticmethod
    def _review_items(conn: Connection, rows: Sequence[Any]) -> list[ReviewItem]:
        """``ReviewItem``s of verdict-set rows (the queue's columns and ``gap``), with their verdicts."""
        f = s.feedback
        items: dict[tuple[str, str, str], list[FeedbackItem]] = {(r.image_key, r.backend, r.language): []
                                                                 for r in rows}
        if items:
            # By image key (the unique index's prefix), sorted here: asked to sort, SQLite would
            # walk the confidence index over every verdict instead.
            found = conn.execute(
                sa.select(f.c.id, f.c.image_key, f.c.backend, f.c.language, f.c.tag, f.c.confidence,
                          f.c.accepted, f.c.parent)
                .where(f.c.image_key.in_({k[0] for k in items}))
            ).all()
            for r in sorted(found, key=lambda r: (-r.confidence, r.id)):
                if (r.image_key, r.backend, r.language) in items:
                    items[(r.image_key, r.backend, r.language)].append(_item(r))
        return [
            ReviewItem(r.image_key, r.filename, r.source, r.backend, r.language, r.saved_at, r.saved_by,
                       float(r.threshold), int(r.min_tags), r.batch, r.width, r.height,
                       tuple(items[(r.image_key, r.backend, r.language)]),
                       None if r.gap is None else float(r.gap))
            for r in rows
        ]

    @staticmethod
    def _queue_columns() -> list[Any]:
        v, i = s.verdict_sets, s.images
        return [v.c.image_key, v.c.backend, v.c.language, v.c.saved_at, v.c.saved_by, v.c.threshold,
                v.c.min_tags, v.c.batch, i.c.filename, i.c.source, i.c.width, i.c.height]

    def unreviewed_sets(self, image_key: str, language: str | None = None) -> list[ReviewItem]:
        """One image's automatic verdict sets (of one language, if given), by backend: the queue's entries for it."""
        v, i = s.verdict_sets, s.images
        query = (
            sa.select(*self._queue_columns(), sa.null().label("gap"))
            .select_from(v.join(i, i.c.image_key == v.c.image_key))
            .where(v.c.image_key == image_key, v.c.provenance == AUTOMATIC)
            .order_by(v.c.backend, v.c.language)
        )
        if language is not None:
            query = query.where(v.c.language == language)
        with self._read() as conn:
            return self._review_items(conn, conn.execute(query).all())

    def verdict_sets_of(self, image_key: str) -> list[VerdictSet]:
        """Every verdict set of one image (any provenance), by backend and language."""
        v = s.verdict_sets
        with self._read() as conn:
            rows = conn.execute(sa.select(v).where(v.c.image_key == image_key).order_by(v.c.backend, v.c.language))
            return [_verdict_set(r) for r in rows]

    def delete_verdict_set(self, image_key: str, backend: str, language: str) -> int:
        """Remove one image's verdicts of one backend and language (the image stays); return the verdicts removed.

        For undoing a review that created the set (a tagger's answer judged for the first time).
        """
        f, i, v = s.feedback, s.images, s.verdict_sets
        with self._write() as conn:
            conn.execute(sa.select(i.c.image_key).where(i.c.image_key == image_key).with_for_update())
            before = _counters.image_state(conn, image_key)
            _counters.bump_version(conn)
            tune_before = _tune_sums.contribution(conn, [image_key])
            removed = conn.execute(f.delete().where(_set_key(f, image_key, backend, language))).rowcount
            conn.execute(v.delete().where(_set_key(v, image_key, backend, language)))
            _counters.apply_change(conn, before, _counters.image_state(conn, image_key))
            _tune_sums.apply(conn, tune_before, _tune_sums.contribution(conn, [image_key]))
        return int(removed)

    def review_facets(self) -> ReviewFacets:
        """The backends, languages and batches that have verdict sets awaiting review (for the queue's filters)."""
        v = s.verdict_sets
        automatic = v.c.provenance == AUTOMATIC
        with self._read() as conn:
            pairs = conn.execute(sa.select(v.c.backend, v.c.language).where(automatic).distinct()).all()
            batches = conn.execute(
                sa.select(v.c.batch, sa.func.max(v.c.saved_at).label("last"))
                .where(automatic, v.c.batch.is_not(None)).group_by(v.c.batch)
                .order_by(sa.desc("last"), v.c.batch)
            ).scalars().all()
        return ReviewFacets(
            backends=tuple(sorted({p[0] for p in pairs})), languages=tuple(sorted({p[1] for p in pairs})),
            batches=tuple(batches),
        )

    @staticmethod
    def _nearest(conn: Connection, columns: list[Any], conditions: list[sa.ColumnElement[bool]],
                 window_conditions: list[sa.ColumnElement[bool]], offset: int, limit: int, threshold: float,
                 total: int) -> list[Any]:
        """The page of sets nearest ``threshold``, reading only verdicts in a window around it.

        A set's gap is its tag nearest the threshold; every set with a tag inside the window
        ranks before every set without one, so once the window yields a full page that page
        is exact. Otherwise the window widens (4x) until it covers every confidence.

        A window is read from the confidence index, each verdict's set looked up by its key. SQLite
        without statistics (no ANALYZE has run: the usual case) prefers to walk every automatic set
        by the provenance index and read all their verdicts, 200,000 of them for 10,000 sets (230 ms
        instead of a few); on SQLite ``window_conditions`` hide the provenance from it so it does not.
        """
        v, i, f = s.verdict_sets, s.images, s.feedback
        # Small: read it all at once. Long: the first window narrows as the queue grows, so it holds about
        # as many verdicts whatever the queue's length (a full page in one read, widened when it is not).
        window = (max(NEAREST_FIRST_WINDOW * NEAREST_SMALL_QUEUE / total, NEAREST_MIN_WINDOW)
                  if total > NEAREST_SMALL_QUEUE else math.inf)
        while True:
            everything = window > CONFIDENCE_SPAN + abs(threshold)
            gap = sa.func.min(sa.func.abs(f.c.confidence - threshold)).label("gap")
            near = sa.select(f.c.image_key, f.c.backend, f.c.language, gap).select_from(f.join(v, _same_set(f, v)))
            if not everything:
                near = near.where(f.c.confidence.between(threshold - window, threshold + window))
            gaps = (near.where(*(conditions if everything else window_conditions))
                    .group_by(f.c.image_key, f.c.backend, f.c.language).subquery("gaps"))
            later = (v.c.saved_at.desc(), v.c.image_key.desc(), v.c.backend.desc(), v.c.language.desc())
            if everything:  # sets without any tag have no gap: last, newest first (never out of reach)
                query = (sa.select(*columns, gaps.c.gap)
                         .select_from(v.join(i, i.c.image_key == v.c.image_key).outerjoin(gaps, _same_set(gaps, v)))
                         .where(*conditions).order_by(gaps.c.gap.is_(None), gaps.c.gap, *later))
            else:
                query = (sa.select(*columns, gaps.c.gap)
                         .select_from(gaps.join(v, _same_set(gaps, v)).join(i, i.c.image_key == v.c.image_key))
                         .order_by(gaps.c.gap, *later))
            rows = conn.execute(query.offset(offset).limit(limit)).all()
            if everything or len(rows) == limit:
                return rows
            window *= 4
