"""Tune's numbers as aggregate queries: for every reviewed verdict, the thresholds at which the rule selects it.

The rule (``tagging.rules.auto_select``) run at integer threshold ``T`` with floor ``N`` and
per-tag overrides selects a verdict ``v`` of an image (its tags ranked by confidence, then
saving order) as follows, where ``K`` counts the override tags selected by their own
threshold anywhere in the image plus, ranked before ``v``, the tags without an override and
the override tags not selected by their threshold:

* a tag without an override: for ``T <= floor(confidence)``, and for every ``T`` once
  ``K < N`` (the floor takes it whatever ``T``; see ``tagging.metrics``' derivation);
* an override tag at or above its override: always;
* an override tag below it: when ``K`` plus the override-free tags ranked after it that reach
  ``T`` stays below ``N``, i.e. for ``T`` above the confidence of the ``(N - K)``-th such tag
  (always when there are fewer, never when ``K >= N``).

So each verdict is selected for ``c + s * [T <= x]`` (``c``, ``s`` in -1..1, ``x`` in -1..100),
and the curve, the per-image counts and the bootstrap all add those up per confidence bin.
The per-tag "own best threshold" needs, at the page's one threshold ``T0``, whether the floor
picks the verdict when its own tag can never reach a threshold; that holds for ``T0 >= lo2``,
computed the same way. Window functions (SQLite >= 3.25 and PostgreSQL) rank the tags.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tagging.store import _schema as s
from tagging.store._db import POSTGRESQL
from tagging.store._schema import REVIEWED


def summed(shape: tuple[int, ...], index: tuple[np.ndarray, ...], values: np.ndarray) -> np.ndarray:
    """``np.add.at(zeros(shape), index, values)`` as one ``bincount`` (an order of magnitude faster on millions of
    rows). Exact for integer sums below 2**53."""
    size = int(np.prod(shape))
    if not len(values):
        return np.zeros(shape, dtype=np.int64)
    flat = np.ravel_multi_index(tuple(np.asarray(i, dtype=np.int64) for i in index), shape)
    total = np.bincount(flat, weights=np.asarray(values, dtype=float), minlength=size)
    return np.rint(total).astype(np.int64).reshape(shape)


NEVER = 101  # lo2 of a verdict the floor never picks
BINS = 101  # integer thresholds 0..100
DIMS = 2 * BINS + 4
"""An image as a vector: its events per acc and bin (``acc * BINS + x``), then base (2) and verdicts (2)."""
UNRECORDED = ""
"""``review_mode`` of sets saved before the mode was recorded (NULL in ``verdict_sets``), as a filter and key."""


@dataclass(frozen=True)
class TuneRows:
    """The aggregates Tune's metrics are computed from (one backend, language, floor and overrides).

    Per image (``images`` of them, numbered in image-key order) and accepted/rejected (``acc``):
    ``base`` (images, 2) verdicts selected at every threshold below the events, ``n`` (images, 2)
    verdicts; the events ``(image, acc, x, ds)``: ``ds`` more selected for ``T <= x``.
    Per tag: ``tag_rows`` (tag index, confidence bin, acc, lo2, verdicts) and per tag name its
    verdict count and confidence sum.
    """

    images: int
    base: np.ndarray
    n: np.ndarray
    event_image: np.ndarray
    event_acc: np.ndarray
    event_x: np.ndarray
    event_ds: np.ndarray
    tags: tuple[str, ...]
    tag_rows: np.ndarray  # int64 (rows, 5)
    tag_count: np.ndarray
    tag_confidence_sum: np.ndarray
    tag_row_confidence: np.ndarray  # float, the confidence sum of each of ``tag_rows``


@dataclass(frozen=True)
class TuneSums:
    """What Tune needs of many images, summed over them (so kept in step with saves; see ``_tune_sums``).

    ``vector`` (DIMS,) is the sum of every image's vector (see ``image_vectors``), ``moments``
    (DIMS, DIMS) the sum of their outer products (the bootstrap's covariance), ``images`` how many
    images were summed; the per-tag rows are those of ``TuneRows``.
    """

    images: int
    vector: np.ndarray
    moments: np.ndarray
    tags: tuple[str, ...]
    tag_rows: np.ndarray
    tag_count: np.ndarray
    tag_confidence_sum: np.ndarray
    tag_row_confidence: np.ndarray


def image_vectors(rows: TuneRows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each image as a sparse vector over ``DIMS``: (image, dimension, value), sorted by image."""
    images = np.arange(rows.images)
    image = np.concatenate([rows.event_image, images, images, images, images])
    dim = np.concatenate([rows.event_acc * BINS + rows.event_x, np.full(rows.images, 2 * BINS),
                          np.full(rows.images, 2 * BINS + 1), np.full(rows.images, 2 * BINS + 2),
                          np.full(rows.images, 2 * BINS + 3)])
    value = np.concatenate([rows.event_ds, rows.base[:, 0], rows.base[:, 1], rows.n[:, 0], rows.n[:, 1]])
    order = np.argsort(image, kind="stable")
    return image[order], dim[order].astype(np.int64), value[order].astype(np.int64)


def second_moments(image: np.ndarray, dim: np.ndarray, value: np.ndarray, images: int) -> np.ndarray:
    """The sum over images of each image's outer product, from sparse vectors sorted by image: (DIMS, DIMS).

    Pairs of one image's entries are taken ``step`` apart, for every step up to the longest image,
    so the cost grows with entries per image, never with images squared. Exact below 2**53.
    """
    size = DIMS * DIMS
    second = np.zeros(size)
    if not len(image):
        return np.zeros((DIMS, DIMS), dtype=np.int64)
    per_image = np.bincount(image, minlength=images)
    after = np.cumsum(per_image)[image] - np.arange(len(image)) - 1  # entries after it in its image
    order = np.argsort(-after, kind="stable")
    reach = -after[order]
    values = value.astype(float)
    for step in range(int(after.max()) + 1):
        first = order[: np.searchsorted(reach, -step, side="right")]
        a, b = dim[first], dim[first + step]
        product = values[first] * values[first + step]
        second += np.bincount(a * DIMS + b, weights=product, minlength=size)
        if step:
            second += np.bincount(b * DIMS + a, weights=product, minlength=size)
    return np.rint(second).astype(np.int64).reshape(DIMS, DIMS)


def sums_of(rows: TuneRows) -> TuneSums:
    """``rows`` summed over its images."""
    image, dim, value = image_vectors(rows)
    return TuneSums(
        images=rows.images, vector=np.bincount(dim, weights=value, minlength=DIMS).round().astype(np.int64),
        moments=second_moments(image, dim, value, rows.images), tags=rows.tags, tag_rows=rows.tag_rows,
        tag_count=rows.tag_count, tag_confidence_sum=rows.tag_confidence_sum,
        tag_row_confidence=rows.tag_row_confidence,
    )


def _bin(dialect: str, confidence: Any) -> Any:
    # floor() for confidences >= 0: SQLite's CAST truncates, PostgreSQL's rounds.
    if dialect == POSTGRESQL:
        return sa.cast(sa.func.floor(confidence), sa.Integer)
    return sa.cast(confidence, sa.Integer)


ONE_MODE = "="  # a statement's review-mode filter: one mode, bound as ``review_mode``
IMAGE_KEYS, CARRYING = "image_keys", "carrying"  # its image filter: keys bound as a list, or a tag they carry


def _mode_condition(v: Any, mode_filter: str | None) -> Any:
    if mode_filter is None:
        return sa.true()
    return v.c.review_mode.is_(None) if mode_filter == UNRECORDED else v.c.review_mode == sa.bindparam("review_mode")


def images_condition(column: Any, image_filter: str | None) -> Any:
    """``column`` restricted to the bound image keys (``IMAGE_KEYS``) or to images carrying the bound tag."""
    if image_filter is None:
        return sa.true()
    if image_filter == IMAGE_KEYS:
        return column.in_(sa.bindparam(IMAGE_KEYS, expanding=True))
    carrying = s.feedback.alias("carrying")
    return column.in_(sa.select(carrying.c.image_key).where(carrying.c.tag == sa.bindparam(CARRYING)))


def _ranked(dialect: str, min_tags: int, overrides: Mapping[str, float], mode_filter: str | None,
            image_filter: str | None) -> Any:
    """Every reviewed verdict with its place in its image and what the rule needs to know about it; the backend,
    language (and review mode, images) are bound parameters, so the statement is built once and reused."""
    f, v = s.feedback, s.verdict_sets
    names = sorted(overrides)
    if names:
        ov = sa.cast(sa.case({name: sa.literal(float(overrides[name]), sa.Float) for name in names},
                             value=f.c.tag, else_=sa.null()), sa.Float).label("ov")
        is_ov = sa.case((f.c.tag.in_(names), 1), else_=0).label("is_ov")
    else:
        ov, is_ov = sa.cast(sa.null(), sa.Float).label("ov"), sa.literal(0).label("is_ov")
    base = (
        sa.select(f.c.image_key, f.c.id, f.c.tag, f.c.confidence.label("conf"),
                  sa.case((f.c.accepted, 1), else_=0).label("acc"), _bin(dialect, f.c.confidence).label("bin"),
                  is_ov, ov)
        .select_from(f.join(v, sa.and_(f.c.image_key == v.c.image_key, f.c.backend == v.c.backend,
                                       f.c.language == v.c.language)))
        .where(v.c.provenance == REVIEWED, f.c.backend == sa.bindparam("backend"),
               f.c.language == sa.bindparam("language"), _mode_condition(v, mode_filter),
               images_condition(f.c.image_key, image_filter))
        .subquery("base")
    )
    b = base.c
    sel_ov = sa.case((sa.and_(b.is_ov == 1, b.conf >= b.ov), 1), else_=0)
    flagged = sa.select(b.image_key, b.id, b.tag, b.conf, b.acc, b.bin, b.is_ov,
                        sel_ov.label("sel_ov"), (1 - b.is_ov).label("is_free")).subquery("flagged")
    g = flagged.c
    # One window order for everything (one sort); the free tags' own order only when overrides exist.
    order = [g.conf.desc(), g.id]
    whole = {"partition_by": g.image_key, "order_by": order, "rows": (None, None)}
    before = {"partition_by": g.image_key, "order_by": order, "rows": (None, -1)}
    free_order = {"partition_by": g.image_key, "order_by": [g.is_free.desc(), *order], "rows": (None, None)}
    ranked = sa.select(
        g.image_key, g.tag, g.conf, g.acc, g.bin, g.is_ov, g.sel_ov, g.is_free,
        sa.func.sum(g.sel_ov).over(**whole).label("s_o"),
        sa.func.sum(g.is_free).over(**whole).label("free_total"),
        sa.func.coalesce(sa.func.sum(g.is_free).over(**before), 0).label("free_before"),
        sa.func.coalesce(sa.func.sum(g.is_ov - g.sel_ov).over(**before), 0).label("unsel_before"),
        # The bins of the image's first min_tags + 1 free tags, by rank (see ``_ends``).
        *[sa.func.nth_value(g.bin, j).over(**(free_order if names else whole)).label(f"fb{j}")
          for j in range(1, min_tags + 2)],
    ).subquery("ranked")
    r = ranked.c
    k = r.s_o + r.free_before + r.unsel_before
    # The free tag the floor's reach ends at: for the curve (override tags below their override) the
    # (N - K)-th free tag after it; for the per-tag table (the verdict's own tag never reaching) the
    # (N - K')-th, K' = K without the verdict itself when it was selected by its override.
    need = sa.literal(min_tags) - k
    need2 = sa.literal(min_tags) - (k - r.sel_ov)
    return ranked, k, need, need2


def _ends(ranked: Any, need: Any, need2: Any, min_tags: int) -> Any:
    """``ranked`` with ``end_bin`` (curve) and ``end2_bin`` (per-tag table): the bin of the image's free tag
    numbered ``free_before + need`` (resp. ``free_before + is_free + need2``) among its free tags.

    Both numbers are at most ``min_tags + 1`` (see the module docstring), so each image's first
    ``min_tags + 1`` free bins are read by window aggregates: no join of the verdicts to themselves.
    """
    w = ranked.c
    spots = range(1, min_tags + 2)
    need, need2 = need.label("need"), need2.label("need2")
    def bin_at(spot: Any) -> Any:  # NULL past the image's last free tag
        return sa.case(*[(sa.and_(spot == j, w.free_total >= j), w[f"fb{j}"]) for j in spots],
                       else_=sa.cast(sa.null(), sa.Integer))

    return (
        sa.select(w.image_key, w.tag, w.bin, w.acc, w.is_ov, w.sel_ov, w.is_free, w.conf,
                  (w.s_o + w.free_before + w.unsel_before).label("k"), need, need2,
                  sa.case((sa.and_(w.is_ov == 1, w.sel_ov == 0, need > 0), bin_at(w.free_before + need)),
                          else_=sa.cast(sa.null(), sa.Integer)).label("end_bin"),
                  sa.case((need2 > 0, bin_at(w.free_before + w.is_free + need2)),
                          else_=sa.cast(sa.null(), sa.Integer)).label("end2_bin"))
        .subquery("ends")
    )


def _selection(e: Any) -> tuple[Any, Any, Any, Any]:
    """(c, s, x, lo2) of each verdict: selected for ``c + s * [T <= x]``; the floor picks it for ``T0 >= lo2``."""
    free = e.is_free == 1
    # A free tag: [T <= bin], or always once K < N. Override tags: always at/above the override;
    # below it, never when N <= K, else 1 - [T <= end_bin] (always when there is no such tag).
    c = sa.case((free, 0), (e.sel_ov == 1, 0), (e.need <= 0, 0), else_=1)
    s_ = sa.case((free, 1), (e.sel_ov == 1, 1), (e.need <= 0, 0), (e.end_bin.is_(None), 0), else_=-1)
    x = sa.case(
        (sa.and_(free, e.need > 0), 100),
        (free, sa.case((e.bin > 100, 100), else_=e.bin)),
        (e.sel_ov == 1, 100),
        (e.need <= 0, -1),
        (e.end_bin.is_(None), -1),
        else_=sa.case((e.end_bin > 100, 100), else_=e.end_bin),
    )
    lo2 = sa.case((e.need2 <= 0, NEVER), (e.end2_bin.is_(None), 0), else_=e.end2_bin + 1)
    return c, s_, x, lo2


@functools.lru_cache(maxsize=64)
def _statements(dialect: str, min_tags: int, overrides: tuple[tuple[str, float], ...], mode_filter: str | None,
                image_filter: str | None) -> tuple[Any, Any, Any]:
    """(per-verdict select, per-image query, per-tag query over it as a CTE), built once per shape: building
    the window query costs more than running it on one image (a save)."""
    ranked, k, need, need2 = _ranked(dialect, min_tags, dict(overrides), mode_filter, image_filter)
    e = _ends(ranked, need, need2, min_tags).c
    c, s_, x, lo2 = _selection(e)
    # Events at x = 100 hold for every threshold: they join the base; x = -1 never holds.
    constant = c + sa.case((x >= 100, s_), else_=0)
    moving = sa.case((sa.and_(x >= 0, x < 100), s_), else_=0)
    per_verdict = sa.select(e.image_key, e.acc, x.label("x"), constant.label("c"), moving.label("ds"),
                            e.tag, e.bin, lo2.label("lo2"), e.conf)
    p = per_verdict.cte("tune_verdicts").c
    return per_verdict, _image_query(p), _tag_query(p)


def tune_rows(conn: Any, backend: str, language: str, min_tags: int, overrides: Mapping[str, float],
              review_mode: str | None = None, image_keys: Sequence[str] | None = None,
              carrying: str | None = None) -> TuneRows:
    """Read Tune's aggregates in two grouped queries (per image and bin, per tag and bin); ``review_mode`` keeps
    only the sets reviewed that way (None: every reviewed set; ``UNRECORDED``: those without a mode);
    ``image_keys`` only those images' verdicts, ``carrying`` only those of the images carrying that tag."""
    mode_filter = None if review_mode is None else UNRECORDED if review_mode == UNRECORDED else ONE_MODE
    image_filter = IMAGE_KEYS if image_keys is not None else CARRYING if carrying is not None else None
    params: dict[str, Any] = {"backend": backend, "language": language}
    if mode_filter == ONE_MODE:
        params["review_mode"] = review_mode
    if image_keys is not None:
        params[IMAGE_KEYS] = list(image_keys)
    if carrying is not None:
        params[CARRYING] = carrying
    per_verdict, image_query, tag_query = _statements(
        conn.dialect.name, int(min_tags), tuple(sorted((str(t), float(v)) for t, v in overrides.items())),
        mode_filter, image_filter)
    if image_filter is not None:  # some images (a save): no temporary table, whose DDL would churn the catalogue
        return _rows(_fetch(conn, image_query, params, via_copy=False), conn.execute(tag_query, params).all())
    # Computed once into a temporary table, then grouped twice (per image and bin, per tag and bin).
    m = sa.MetaData()
    table = sa.Table("tune_verdicts", m, sa.Column("image_key", sa.Text), sa.Column("acc", sa.Integer),
                     sa.Column("x", sa.Integer), sa.Column("c", sa.Integer), sa.Column("ds", sa.Integer),
                     sa.Column("tag", sa.Text), sa.Column("bin", sa.Integer), sa.Column("lo2", sa.Integer),
                     sa.Column("conf", sa.Float), prefixes=["TEMPORARY"])
    p = table.c
    if conn.dialect.name == POSTGRESQL:
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")  # the window sort stays in memory
    table.create(conn)
    try:
        conn.execute(table.insert().from_select([c.name for c in table.columns], per_verdict), params)
        image_rows = _fetch(conn, _image_query(p), {})
        tag_frame = conn.execute(_tag_query(p)).all()
    finally:
        table.drop(conn)
    return _rows(image_rows, tag_frame)


def _image_query(p: Any) -> Any:
    return (sa.select(p.image_key, p.acc, p.x, sa.func.count(), sa.func.sum(p.c), sa.func.sum(p.ds))
            .group_by(p.image_key, p.acc, p.x).order_by(p.image_key, p.acc, p.x))


def _tag_query(p: Any) -> Any:
    return (sa.select(p.tag, p.bin, p.acc, p.lo2, sa.func.count(), sa.func.sum(p.conf))
            .group_by(p.tag, p.bin, p.acc, p.lo2).order_by(p.tag, p.bin, p.acc, p.lo2))


class TagTable(NamedTuple):
    """Per-tag rows as numbers (the fields of the same names in ``TuneRows`` and ``TuneSums``)."""

    tags: tuple[str, ...]  # in name order: a tag's number is its place here
    tag_rows: np.ndarray  # int64 (rows, 5): tag number, bin, acc, lo2, n
    tag_count: np.ndarray  # per tag: verdicts
    tag_confidence_sum: np.ndarray  # per tag: sum of confidences
    tag_row_confidence: np.ndarray  # per row: sum of confidences


def tag_table(rows: Sequence[Sequence[Any]]) -> TagTable:
    """``TagTable`` of rows (tag, bin, acc, lo2, n, confidence sum) as the per-tag queries return them."""
    tags = tuple(sorted({str(r[0]) for r in rows}))
    number = {name: j for j, name in enumerate(tags)}
    codes = np.array([number[str(r[0])] for r in rows], dtype=np.int64)
    numeric = np.array([tuple(r[1:5]) for r in rows], dtype=np.int64).reshape(-1, 4)
    confidence = np.array([float(r[5]) for r in rows], dtype=float)
    return TagTable(
        tags=tags, tag_rows=np.column_stack([codes, numeric]).reshape(-1, 5),
        tag_count=np.rint(np.bincount(codes, weights=numeric[:, 3].astype(float), minlength=len(tags)))
        .astype(np.int64),
        tag_confidence_sum=np.bincount(codes, weights=confidence, minlength=len(tags)),
        tag_row_confidence=confidence,
    )


def _rows(image_rows: np.ndarray, tag_frame: Any) -> TuneRows:
    """``TuneRows`` from the per-image rows (image number first) and the per-tag rows."""
    images = int(image_rows[:, 0].max()) + 1 if len(image_rows) else 0
    im, acc = image_rows[:, 0], image_rows[:, 1]
    n = summed((images, 2), (im, acc), image_rows[:, 3])
    base = summed((images, 2), (im, acc), image_rows[:, 4])
    moving_rows = image_rows[image_rows[:, 5] != 0]
    return TuneRows(
        images=images, base=base, n=n,
        event_image=moving_rows[:, 0].astype(np.int64), event_acc=moving_rows[:, 1].astype(np.int64),
        event_x=moving_rows[:, 2].astype(np.int64), event_ds=moving_rows[:, 5].astype(np.int64),
        **tag_table(tag_frame)._asdict(),
    )


def _fetch(conn: Any, query: Any, params: Mapping[str, Any], via_copy: bool = True) -> np.ndarray:
    """The per-image rows as integers, the image key replaced by its number in key order (the rows come
    sorted by it); on PostgreSQL through COPY (millions of rows, no Python row objects) unless ``via_copy`` is off."""
    if not via_copy:
        rows = conn.execute(query, params).all()
        if not rows:
            return np.zeros((0, 6), dtype=np.int64)
        numbers: dict[str, int] = {}
        return np.array([(numbers.setdefault(r[0], len(numbers)), *r[1:]) for r in rows], dtype=np.int64)
    if conn.dialect.name == POSTGRESQL:
        sql = str(query.params(params).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        buffer = io.BytesIO()
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
            for block in copy:
                buffer.write(block)
        if not buffer.getvalue():
            return np.zeros((0, 6), dtype=np.int64)
        buffer.seek(0)
        frame = pd.read_csv(buffer, header=None, dtype={0: str}, keep_default_na=False)
    else:
        frame = pd.DataFrame(list(map(tuple, conn.execute(query, params).all())))  # tuples: pandas reads Rows slowly
        if frame.empty:
            return np.zeros((0, 6), dtype=np.int64)
    numbers, _ = pd.factorize(frame.iloc[:, 0], sort=False)
    return np.column_stack([numbers.astype(np.int64), frame.iloc[:, 1:].to_numpy(dtype=np.int64)])
