"""Tune's sums kept in step with every write, so Tune at a million images reads sums, not verdicts.

Tune's curve, evidence, per-tag table and bootstrap (its normal approximation) need only sums
over images: of each image's vector (``_tune.image_vectors``), of its outer product, and of the
per-tag bins. Each is additive over images, so a write that changes one image's verdicts
subtracts the image's old contribution and adds its new one, in the same transaction, computed
by the same window query that builds Tune's rows (``_tune.tune_rows`` restricted to the image):
the kept sums cannot drift from what a full computation would give.

The sums are kept for the team's rule: the default floor ``SUMS_FLOOR`` and the per-tag overrides
stored in the settings. A change of override re-sums the images carrying that tag; Tune at another
floor computes from the verdicts. Writers are serialised by the data-version row
(``_counters.bump_version``), which every writer takes before reading what it will re-sum.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tagging.rules import DEFAULT_MIN_TAGS
from tagging.store import _schema as s
from tagging.store._db import POSTGRESQL
from tagging.store._rows import _insert
from tagging.store._schema import REVIEWED
from tagging.store._tune import (
    CARRYING,
    DIMS,
    IMAGE_KEYS,
    UNRECORDED,
    TuneSums,
    images_condition,
    sums_of,
    tag_table,
    tune_rows,
)

SUMS_FLOOR = DEFAULT_MIN_TAGS
"""The floor the sums are kept for (Tune at another floor computes from the verdicts)."""
SetKey = tuple[str, str, str]  # backend, language, review mode ("" when unrecorded)


@dataclass
class Contribution:
    """What some images add to the sums, per reviewed (backend, language, review mode)."""

    parts: dict[SetKey, TuneSums] = field(default_factory=dict)


def stored_overrides(conn: Connection) -> dict[str, float]:
    """The per-tag thresholds the sums are kept for (the ``tag_overrides`` setting, as this transaction sees it)."""
    raw = conn.execute(sa.select(s.settings.c.value).where(s.settings.c.key == "tag_overrides")).scalar()
    return {str(tag): float(value) for tag, value in (json.loads(raw) if raw else {}).items()}


def contribution(conn: Connection, image_keys: Sequence[str] | None = None, overrides: dict[str, float] | None = None,
                 *, carrying: str | None = None) -> Contribution:
    """The sums of the images ``image_keys``, or of those ``carrying`` a tag, or (neither given) of every reviewed
    image: one windowed read per kind of reviewed set they have."""
    if overrides is None:
        overrides = stored_overrides(conn)
    v = s.verdict_sets
    if image_keys is not None:
        image_filter, params = IMAGE_KEYS, {IMAGE_KEYS: list(image_keys)}
    elif carrying is not None:
        image_filter, params = CARRYING, {CARRYING: carrying}
    else:
        image_filter, params = None, {}
    kinds = conn.execute(
        sa.select(v.c.backend, v.c.language, v.c.review_mode)
        .where(v.c.provenance == REVIEWED, images_condition(v.c.image_key, image_filter)).distinct(), params
    ).all()
    found = Contribution()
    for backend, language, mode in kinds:
        mode = UNRECORDED if mode is None else str(mode)
        rows = tune_rows(conn, backend, language, SUMS_FLOOR, overrides, mode, image_keys=image_keys,
                         carrying=carrying)
        if rows.images:
            found.parts[(backend, language, mode)] = sums_of(rows)
    return found


def apply(conn: Connection, before: Contribution, after: Contribution) -> None:
    """Add ``after - before`` to the kept sums."""
    vector_rows, moment_rows, tag_rows = [], [], []
    for key in sorted(set(before.parts) | set(after.parts)):
        old, new = before.parts.get(key), after.parts.get(key)
        names = dict(zip(("backend", "language", "review_mode"), key, strict=True))
        vector = _vector(new) - _vector(old)
        vector_rows += [{**names, "dim": int(d), "total": int(vector[d])} for d in np.flatnonzero(vector)]
        moments = np.triu(_moments(new) - _moments(old))
        moment_rows += [{**names, "a": int(a), "b": int(b), "total": int(moments[a, b])}
                        for a, b in zip(*np.nonzero(moments), strict=True)]
        bins: dict[tuple[str, int, int, int], list[float]] = {}
        for sign, part in ((-1, old), (1, new)):
            for (tag, bin_, acc, lo2), (n, conf) in _tag_bins(part):
                entry = bins.setdefault((tag, bin_, acc, lo2), [0, 0.0])
                entry[0] += sign * n
                entry[1] += sign * conf
        tag_rows += [{**names, "tag": tag, "bin": b, "acc": a, "lo2": lo2, "n": int(n), "conf": float(conf)}
                     for (tag, b, a, lo2), (n, conf) in sorted(bins.items()) if n or conf]
    _add(conn, s.tune_vector, ["dim"], vector_rows, {"total"})
    _add(conn, s.tune_moments, ["a", "b"], moment_rows, {"total"})
    _add(conn, s.tune_tags, ["tag", "bin", "acc", "lo2"], tag_rows, {"n", "conf"})


def _vector(part: TuneSums | None) -> np.ndarray:
    # The image count rides in the vector's last place (DIMS): it is summed like the rest.
    out = np.zeros(DIMS + 1, dtype=np.int64)
    if part is not None:
        out[:DIMS] = part.vector
        out[DIMS] = part.images
    return out


def _moments(part: TuneSums | None) -> np.ndarray:
    return np.zeros((DIMS, DIMS), dtype=np.int64) if part is None else part.moments


def _tag_bins(part: TuneSums | None) -> Iterable[tuple[tuple[str, int, int, int], tuple[int, float]]]:
    if part is None:
        return
    for row, conf in zip(part.tag_rows, part.tag_row_confidence, strict=True):
        tag, bin_, acc, lo2, n = (int(x) for x in row)
        yield (part.tags[tag], bin_, acc, lo2), (n, float(conf))


def _add(conn: Connection, table: sa.Table, keys: list[str], rows: list[dict[str, Any]], totals: set[str]) -> None:
    if not rows:
        return
    insert = _insert(conn, table)
    conn.execute(insert.on_conflict_do_update(
        index_elements=[*s._SUM_KEY, *keys], set_={name: table.c[name] + insert.excluded[name] for name in totals}),
        rows)


def rebuild(conn: Connection) -> None:
    """Sum every reviewed image anew (after a migration, a bulk load or a copy)."""
    for table in (s.tune_vector, s.tune_moments, s.tune_tags):
        conn.execute(table.delete())
    if conn.dialect.name == POSTGRESQL:
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
    apply(conn, Contribution(), contribution(conn))


def _where(table: sa.Table, backend: str, language: str, review_mode: str | None) -> list[Any]:
    found = [table.c.backend == backend, table.c.language == language]
    if review_mode is not None:
        found.append(table.c.review_mode == review_mode)
    return found


def images(conn: Connection, backend: str, language: str, review_mode: str | None) -> int:
    """How many reviewed images the kept sums hold (one indexed read)."""
    vec = s.tune_vector
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(vec.c.total), 0))
                            .where(*_where(vec, backend, language, review_mode), vec.c.dim == DIMS)).scalar_one())


def read(conn: Connection, backend: str, language: str, review_mode: str | None) -> TuneSums:
    """The kept sums of one backend and language, over every review mode (None) or one."""
    vec, mom, tags = s.tune_vector, s.tune_moments, s.tune_tags

    def where(table: sa.Table) -> list[Any]:
        return _where(table, backend, language, review_mode)

    vector = np.zeros(DIMS + 1, dtype=np.int64)
    for dim, total in conn.execute(sa.select(vec.c.dim, sa.func.sum(vec.c.total)).where(*where(vec))
                                   .group_by(vec.c.dim)):
        vector[int(dim)] = int(total)
    moments = np.zeros((DIMS, DIMS), dtype=np.int64)
    for a, b, total in conn.execute(sa.select(mom.c.a, mom.c.b, sa.func.sum(mom.c.total)).where(*where(mom))
                                    .group_by(mom.c.a, mom.c.b)):
        moments[int(a), int(b)] = moments[int(b), int(a)] = int(total)
    n = sa.func.sum(tags.c.n)
    rows = conn.execute(
        sa.select(tags.c.tag, tags.c.bin, tags.c.acc, tags.c.lo2, n, sa.func.sum(tags.c.conf)).where(*where(tags))
        .group_by(tags.c.tag, tags.c.bin, tags.c.acc, tags.c.lo2).having(n != 0)
        .order_by(tags.c.tag, tags.c.bin, tags.c.acc, tags.c.lo2)
    ).all()
    return TuneSums(images=int(vector[DIMS]), vector=vector[:DIMS], moments=moments, **tag_table(rows)._asdict())
