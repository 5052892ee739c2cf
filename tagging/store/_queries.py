"""The Library's queries: one page of verdict sets at a time, tag search by indexed joins, kept totals.

Pages are read by keyset: ordered newest first by (saved_at, image_key, backend, language),
the next page starts after the last row shown and the previous one before the first, so a
save arriving meanwhile (it sorts first) never shifts a row into a page twice or out of all
of them. Tag search hands the query the tag names to match (``library`` resolves what was
typed against the tag list); a set matches through ``feedback_accepted_tag``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tagging.store import _counters
from tagging.store import _schema as s
from tagging.store._rows import _one_of
from tagging.store._schema import ALL_SCOPE, PROVENANCES

ALL, ANY = "all", "any"
EXPORT_CHUNK = 1000  # verdict sets per read while streaming an export


@dataclass(frozen=True)
class Cursor:
    """Where a page starts or ends: a verdict set's place in the Library's order."""

    saved_at: str
    image_key: str
    backend: str
    language: str


@dataclass(frozen=True)
class TagSearch:
    """What a Library query matches: ``groups`` of tag names (None: no search), all or any of them; and the
    image's stored analysis: ``colour`` (a palette name or its family), ``faces`` / ``text`` present or absent
    (None: either)."""

    provenance: str | None = None
    groups: tuple[tuple[str, ...], ...] | None = None
    mode: str = ALL
    colour: str | None = None
    faces: bool | None = None
    text: bool | None = None

    def __post_init__(self) -> None:
        if self.provenance is not None and self.provenance not in PROVENANCES:
            raise ValueError(f"provenance must be one of {PROVENANCES} or None, not {self.provenance!r}")
        if self.mode not in (ALL, ANY):
            raise ValueError(f"mode must be {ALL!r} or {ANY!r}, not {self.mode!r}")

    @property
    def scope(self) -> str:
        return self.provenance or ALL_SCOPE

    @property
    def analysed(self) -> bool:
        """Whether an analysis filter is set."""
        return bool(self.colour) or self.faces is not None or self.text is not None


def _same_set(a: Any, b: Any) -> sa.ColumnElement[bool]:
    return sa.and_(a.c.image_key == b.c.image_key, a.c.backend == b.c.backend, a.c.language == b.c.language)


def _carrying(names: Sequence[str]) -> sa.ColumnElement[bool]:
    f, v = s.feedback, s.verdict_sets
    return sa.exists().where(f.c.tag.in_(sorted(names)), f.c.accepted, _same_set(f, v))


def conditions(search: TagSearch) -> list[sa.ColumnElement[bool]]:
    """The WHERE clause of the sets a search matches (sets without a verdict never match)."""
    f, v = s.feedback, s.verdict_sets
    found: list[sa.ColumnElement[bool]] = []
    if search.provenance is not None:
        found.append(v.c.provenance == search.provenance)
    if search.groups is None:
        found.append(sa.exists().where(_same_set(f, v)))
    elif search.mode == ALL:
        if not search.groups or any(not g for g in search.groups):
            found.append(sa.false())
        else:
            found += [_carrying(g) for g in search.groups]
    else:
        names = {n for g in search.groups for n in g}
        found.append(_carrying(names) if names else sa.false())
    if search.analysed:
        from tagging.store._analysis import analysis_condition  # it imports the store

        found.append(analysis_condition(v.c.image_key, v.c.backend, colour=search.colour, faces=search.faces,
                                        text=search.text))
    return found


def _keys() -> list[Any]:
    v = s.verdict_sets
    return [v.c.saved_at, v.c.image_key, v.c.backend, v.c.language]


class LibraryQueries:
    """The Library's reads, mixed into ``Store`` (which provides ``_read``)."""

    def library_size(self, search: TagSearch) -> tuple[int, int]:
        """(records, images) the search matches: kept totals without a search, one counting query with one."""
        if search.groups is None and not search.analysed:
            totals = self.totals()  # type: ignore[attr-defined]
            return (totals.get(_counters.sets_counter(search.scope), 0),
                    totals.get(_counters.images_counter(search.scope), 0))
        v = s.verdict_sets
        with self._read() as conn:  # type: ignore[attr-defined]
            row = conn.execute(
                sa.select(sa.func.count(), sa.func.count(sa.distinct(v.c.image_key))).where(*conditions(search))
            ).one()
        return int(row[0]), int(row[1])

    def library_tags(self, provenance: str | None = None) -> list[tuple[str, int]]:
        """(tag, images carrying it accepted) of every tag in the library (kept totals), most images first."""
        t = s.tag_images
        scope = provenance or ALL_SCOPE
        with self._read() as conn:  # type: ignore[attr-defined]
            rows = conn.execute(
                sa.select(t.c.tag, t.c.images).where(t.c.scope == scope, t.c.images > 0)
                .order_by(t.c.images.desc(), t.c.tag)
            ).all()
        return [(r[0], int(r[1])) for r in rows]

    def library_page(self, search: TagSearch, limit: int, *, after: Cursor | None = None,
                     start: Cursor | None = None, before: Cursor | None = None,
                     offset: int = 0) -> list[Any]:
        """One page of ``LibraryEntry``s, newest first: after ``after``, from ``start`` on, or the page
        ending just before ``before``; else from ``offset``."""
        from tagging.store._rows import LibraryEntry, _missing_tuple

        v, i = s.verdict_sets, s.images
        keys = _keys()
        query = (
            sa.select(v.c.image_key, v.c.backend, v.c.language, v.c.provenance, v.c.saved_by, v.c.saved_at,
                      i.c.filename, i.c.source, i.c.width, i.c.height, v.c.review_mode, v.c.missing_tags)
            .select_from(v.join(i, i.c.image_key == v.c.image_key))
            .where(*conditions(search))
        )
        backwards = before is not None
        if after is not None:
            query = query.where(sa.tuple_(*keys) < sa.tuple_(*_values(after)))
        elif start is not None:
            query = query.where(sa.tuple_(*keys) <= sa.tuple_(*_values(start)))
        elif before is not None:
            query = query.where(sa.tuple_(*keys) > sa.tuple_(*_values(before)))
        query = query.order_by(*[k.asc() if backwards else k.desc() for k in keys]).limit(limit)
        if after is None and start is None and before is None and offset:
            query = query.offset(offset)
        with self._read() as conn:  # type: ignore[attr-defined]
            rows = conn.execute(query).all()
            if backwards:
                rows.reverse()
            tags, counts = _tags_of(conn, [(r[0], r[1], r[2]) for r in rows])
        # Unpacked as tuples, in the select's column order: an export builds a million of these.
        return [
            LibraryEntry(image_key=image_key, filename=filename, source=source, backend=backend, language=language,
                         tags=tuple(tags.get((image_key, backend, language), ())),
                         verdicts=counts.get((image_key, backend, language), 0), saved_at=saved_at, width=width,
                         height=height, provenance=provenance, saved_by=saved_by, review_mode=review_mode,
                         missing_tags=_missing_tuple(missing))
            for (image_key, backend, language, provenance, saved_by, saved_at, filename, source, width, height,
                 review_mode, missing) in rows
        ]

    def iter_library(self, search: TagSearch, chunk: int = EXPORT_CHUNK) -> Iterator[list[Any]]:
        """Every entry the search matches, newest first, ``chunk`` sets per read (for streamed exports)."""
        cursor: Cursor | None = None
        while True:
            page = self.library_page(search, chunk, after=cursor)
            if not page:
                return
            yield page
            if len(page) < chunk:
                return
            cursor = cursor_of(page[-1])

    def subtree_images(self, subtrees: Mapping[str, Sequence[str]], provenance: str | None = None) -> dict[str, int]:
        """For each node, the images carrying any of its subtree's tags accepted (one aggregate query)."""
        if not subtrees:
            return {}
        f, v = s.feedback, s.verdict_sets
        m = sa.MetaData()
        closure = sa.Table("library_subtrees", m, sa.Column("node", sa.Text), sa.Column("tag", sa.Text),
                           prefixes=["TEMPORARY"])
        rows = [{"node": node, "tag": tag} for node, tags in subtrees.items() for tag in set(tags)]
        query = (
            sa.select(closure.c.node, sa.func.count(sa.distinct(f.c.image_key)))
            .select_from(f.join(closure, closure.c.tag == f.c.tag).join(v, _same_set(f, v)))
            .where(f.c.accepted)
            .group_by(closure.c.node)
        )
        if provenance is not None:
            query = query.where(v.c.provenance == provenance)
        with self._read() as conn:  # type: ignore[attr-defined]
            with conn.begin():
                closure.create(conn)
                try:
                    conn.execute(closure.insert(), rows)
                    found = {r[0]: int(r[1]) for r in conn.execute(query)}
                finally:
                    closure.drop(conn)
        return {node: found.get(node, 0) for node in subtrees}


def _values(cursor: Cursor) -> tuple[str, str, str, str]:
    return cursor.saved_at, cursor.image_key, cursor.backend, cursor.language


def cursor_of(entry: Any) -> Cursor:
    """The place of a ``LibraryEntry`` in the Library's order."""
    return Cursor(entry.saved_at, entry.image_key, entry.backend, entry.language)


def _tags_of(conn: Any, sets: Sequence[tuple[str, str, str]]) -> tuple[dict, dict]:
    """Accepted tags (highest confidence first) and verdict counts of a page's sets.

    The database counts and sorts, and only accepted verdicts come back: an export of a million images reads
    ten million verdicts, and building a Python row for each was most of its time.
    """
    f = s.feedback
    wanted = set(sets)
    tags: dict[tuple[str, str, str], list[str]] = {}
    counts: dict[tuple[str, str, str], int] = {}
    if not wanted:
        return tags, counts
    images = _one_of(conn, f.c.image_key, sorted({k[0] for k in wanted}))
    for image_key, backend, language, n in conn.execute(
        sa.select(f.c.image_key, f.c.backend, f.c.language, sa.func.count())
        .where(images).group_by(f.c.image_key, f.c.backend, f.c.language)
    ).all():
        key = (image_key, backend, language)
        if key in wanted:
            counts[key] = int(n)
    for image_key, backend, language, tag in conn.execute(
        sa.select(f.c.image_key, f.c.backend, f.c.language, f.c.tag)
        .where(images, f.c.accepted).order_by(f.c.confidence.desc(), f.c.id)
    ).all():
        key = (image_key, backend, language)
        if key in wanted:
            tags.setdefault(key, []).append(tag)
    return tags, counts
