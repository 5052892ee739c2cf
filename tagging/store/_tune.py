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

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tagging.store import _schema as s
from tagging.store._db import POSTGRESQL
from tagging.store._schema import REVIEWED

NEVER = 101  # lo2 of a verdict the floor never picks


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


def _bin(conn: Any, confidence: Any) -> Any:
    # floor() for confidences >= 0: SQLite's CAST truncates, PostgreSQL's rounds.
    if conn.dialect.name == POSTGRESQL:
        return sa.cast(sa.func.floor(confidence), sa.Integer)
    return sa.cast(confidence, sa.Integer)


def _ranked(conn: Any, backend: str, language: str, min_tags: int, overrides: Mapping[str, float],
            review_mode: str | None = None) -> Any:
    """Every reviewed verdict with its place in its image and what the rule needs to know about it."""
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
                  sa.case((f.c.accepted, 1), else_=0).label("acc"), _bin(conn, f.c.confidence).label("bin"),
                  is_ov, ov)
        .select_from(f.join(v, sa.and_(f.c.image_key == v.c.image_key, f.c.backend == v.c.backend,
                                       f.c.language == v.c.language)))
        .where(v.c.provenance == REVIEWED, f.c.backend == backend, f.c.language == language,
               sa.true() if review_mode is None else v.c.review_mode == review_mode)
        .subquery("base")
    )
    b = base.c
    sel_ov = sa.case((sa.and_(b.is_ov == 1, b.conf >= b.ov), 1), else_=0)
    flagged = sa.select(b.image_key, b.id, b.tag, b.conf, b.acc, b.bin, b.is_ov,
                        sel_ov.label("sel_ov"), (1 - b.is_ov).label("is_free")).subquery("flagged")
    g = flagged.c
    order = [g.conf.desc(), g.id]
    before = {"partition_by": g.image_key, "order_by": order, "rows": (None, -1)}
    upto = {"partition_by": g.image_key, "order_by": order, "rows": (None, 0)}
    ranked = sa.select(
        g.image_key, g.tag, g.conf, g.acc, g.bin, g.is_ov, g.sel_ov, g.is_free,
        (sa.func.dense_rank().over(order_by=g.image_key) - 1).label("image"),
        sa.func.sum(g.sel_ov).over(partition_by=g.image_key).label("s_o"),
        sa.func.coalesce(sa.func.sum(g.is_free).over(**before), 0).label("free_before"),
        sa.func.coalesce(sa.func.sum(g.is_ov - g.sel_ov).over(**before), 0).label("unsel_before"),
        sa.func.sum(g.is_free).over(**upto).label("free_cum"),
    ).cte("ranked")
    r = ranked.c
    k = r.s_o + r.free_before + r.unsel_before
    # The free tag the floor's reach ends at: for the curve (override tags below their override) the
    # (N - K)-th free tag after it; for the per-tag table (the verdict's own tag never reaching) the
    # (N - K')-th, K' = K without the verdict itself when it was selected by its override.
    need = sa.literal(min_tags) - k
    need2 = sa.literal(min_tags) - (k - r.sel_ov)
    return ranked, k, need, need2


def _ends(conn: Any, ranked: Any, need: Any, need2: Any, overrides: bool) -> Any:
    """``ranked`` with ``end_bin`` (curve) and ``end2_bin`` (per-tag table) looked up among the free tags."""
    r = ranked.c
    free2 = ranked.alias("free2")
    joined = ranked.outerjoin(free2, sa.and_(need2 > 0, free2.c.image_key == r.image_key, free2.c.is_free == 1,
                                             free2.c.free_cum == r.free_before + r.is_free + need2))
    end_bin: Any = sa.cast(sa.null(), sa.Integer)
    if overrides:  # without overrides no tag sits below an override of its own
        free1 = ranked.alias("free1")
        joined = joined.outerjoin(free1, sa.and_(r.is_ov == 1, r.sel_ov == 0, need > 0,
                                                 free1.c.image_key == r.image_key, free1.c.is_free == 1,
                                                 free1.c.free_cum == r.free_before + need))
        end_bin = free1.c.bin
    return (
        sa.select(r.image, r.tag, r.bin, r.acc, r.is_ov, r.sel_ov, r.is_free, r.conf,
                  (r.s_o + r.free_before + r.unsel_before).label("k"), need.label("need"), need2.label("need2"),
                  end_bin.label("end_bin"), free2.c.bin.label("end2_bin"))
        .select_from(joined)
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


def tune_rows(conn: Any, backend: str, language: str, min_tags: int, overrides: Mapping[str, float],
              review_mode: str | None = None) -> TuneRows:
    """Read Tune's aggregates in two grouped queries (per image and bin, per tag and bin); ``review_mode`` keeps
    only the sets reviewed that way (None: every reviewed set)."""
    ranked, k, need, need2 = _ranked(conn, backend, language, min_tags, overrides, review_mode)
    e = _ends(conn, ranked, need, need2, bool(overrides)).c
    c, s_, x, lo2 = _selection(e)
    # Events at x = 100 hold for every threshold: they join the base; x = -1 never holds.
    constant = c + sa.case((x >= 100, s_), else_=0)
    moving = sa.case((sa.and_(x >= 0, x < 100), s_), else_=0)
    per_verdict = sa.select(e.image, e.acc, x.label("x"), constant.label("c"), moving.label("ds"),
                            e.tag, e.bin, lo2.label("lo2"), e.conf).subquery("verdicts")
    p = per_verdict.c
    image_query = (
        sa.select(p.image, p.acc, p.x, sa.func.count(), sa.func.sum(p.c), sa.func.sum(p.ds))
        .group_by(p.image, p.acc, p.x).order_by(p.image, p.acc, p.x)
    )
    tag_query = (
        sa.select(p.tag, p.bin, p.acc, p.lo2, sa.func.count(), sa.func.sum(p.conf))
        .group_by(p.tag, p.bin, p.acc, p.lo2).order_by(p.tag, p.bin, p.acc, p.lo2)
    )
    if conn.dialect.name == POSTGRESQL:
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")  # the window sorts stay in memory
    image_rows = _fetch(conn, image_query, 6)
    tag_frame = conn.execute(tag_query).all()
    images = int(image_rows[:, 0].max()) + 1 if len(image_rows) else 0
    im, acc = image_rows[:, 0], image_rows[:, 1]
    n = np.zeros((images, 2), dtype=np.int64)
    base = np.zeros((images, 2), dtype=np.int64)
    np.add.at(n, (im, acc), image_rows[:, 3])
    np.add.at(base, (im, acc), image_rows[:, 4])
    moving_rows = image_rows[image_rows[:, 5] != 0]
    tags = tuple(sorted({r[0] for r in tag_frame}))
    index = {t: j for j, t in enumerate(tags)}
    tag_rows = np.array([(index[r[0]], r[1], r[2], r[3], r[4]) for r in tag_frame], dtype=np.int64).reshape(-1, 5)
    count = np.zeros(len(tags), dtype=np.int64)
    total = np.zeros(len(tags), dtype=float)
    for r in tag_frame:
        count[index[r[0]]] += int(r[4])
        total[index[r[0]]] += float(r[5])
    return TuneRows(
        images=images, base=base, n=n,
        event_image=moving_rows[:, 0].astype(np.int64), event_acc=moving_rows[:, 1].astype(np.int64),
        event_x=moving_rows[:, 2].astype(np.int64), event_ds=moving_rows[:, 5].astype(np.int64),
        tags=tags, tag_rows=tag_rows, tag_count=count, tag_confidence_sum=total,
    )


def _fetch(conn: Any, query: Any, columns: int) -> np.ndarray:
    """An all-integer result as an array; on PostgreSQL through COPY (millions of rows, no Python row objects)."""
    if conn.dialect.name == POSTGRESQL:
        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        buffer = io.BytesIO()
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
            for block in copy:
                buffer.write(block)
        text = buffer.getvalue()
        if not text:
            return np.zeros((0, columns), dtype=np.int64)
        return pd.read_csv(io.BytesIO(text), header=None, dtype=np.int64).to_numpy()
    rows = conn.execute(query).all()
    return np.array(rows, dtype=np.int64).reshape(-1, columns)
