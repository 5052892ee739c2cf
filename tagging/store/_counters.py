"""Totals kept in step with every write, so pages read them instead of counting the library.

A write (a save, a deletion) reads one image's verdicts before and after it changes them
(the image's row is locked, so nothing else changes them meanwhile) and applies the
difference to ``data_counters``, ``tag_images`` and ``tag_parent_links`` in the same
transaction. Every write first bumps the ``version`` counter: the data version results are
cached by, and on PostgreSQL the row every writer takes in the same order after its image's
row, so two writers never deadlock on the counters.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tagging.store import _schema as s
from tagging.store._rows import _insert
from tagging.store._schema import ALL_SCOPE, IMAGES, PROVENANCES, REVIEWED, VERDICTS, VERSION

SCOPES = (*PROVENANCES, ALL_SCOPE)


def images_counter(scope: str) -> str:
    return IMAGES if scope == ALL_SCOPE else f"{IMAGES}:{scope}"


def sets_counter(scope: str) -> str:
    return f"sets:{scope}"


GROUP_PREFIX = "reviewed\t"


def group_counter(backend: str, language: str, what: str) -> str:
    """Reviewed images (``images``) or verdicts (``verdicts``) of one backend and language (Tune's groups)."""
    return f"{GROUP_PREFIX}{backend}\t{language}\t{what}"


@dataclass
class ImageState:
    """One image's verdicts as the totals see them."""

    verdicts: int = 0
    sets: Counter[str] = field(default_factory=Counter)  # non-empty sets per scope
    carried: dict[str, set[str]] = field(default_factory=dict)  # scope -> accepted tags
    links: Counter[tuple[str, str]] = field(default_factory=Counter)
    reviewed: Counter[tuple[str, str]] = field(default_factory=Counter)  # reviewed verdicts per backend, language


def image_state(conn: Connection, image_key: str) -> ImageState:
    """The image's verdicts, read through the unique index's prefix (a handful of rows)."""
    f, v = s.feedback, s.verdict_sets
    rows = conn.execute(
        sa.select(f.c.backend, f.c.language, v.c.provenance, f.c.tag, f.c.parent, f.c.accepted)
        .select_from(f.join(v, sa.and_(f.c.image_key == v.c.image_key, f.c.backend == v.c.backend,
                                       f.c.language == v.c.language)))
        .where(f.c.image_key == image_key)
    ).all()
    state = ImageState(verdicts=len(rows))
    seen: set[tuple[str, str]] = set()
    for backend, language, provenance, tag, parent, accepted in rows:
        if (backend, language) not in seen:
            seen.add((backend, language))
            state.sets[provenance] += 1
            state.sets[ALL_SCOPE] += 1
        if accepted:
            state.carried.setdefault(provenance, set()).add(tag)
            state.carried.setdefault(ALL_SCOPE, set()).add(tag)
        if parent is not None:
            state.links[(tag, parent)] += 1
        if provenance == REVIEWED:
            state.reviewed[(backend, language)] += 1
    return state


def bump_version(conn: Connection) -> None:
    """Count one more change (first thing a writer does after locking its image)."""
    c = s.data_counters
    conn.execute(c.update().where(c.c.name == VERSION).values(value=c.c.value + 1))


def apply_change(conn: Connection, before: ImageState, after: ImageState) -> None:
    """Add the difference between two states of one image to the totals."""
    c, t, links = s.data_counters, s.tag_images, s.tag_parent_links
    deltas = {VERDICTS: after.verdicts - before.verdicts}
    for scope in SCOPES:
        deltas[sets_counter(scope)] = after.sets[scope] - before.sets[scope]
        deltas[images_counter(scope)] = int(after.sets[scope] > 0) - int(before.sets[scope] > 0)
    changed = [{"n": name, "d": d} for name, d in sorted(deltas.items()) if d]
    if changed:
        conn.execute(c.update().where(c.c.name == sa.bindparam("n")).values(value=c.c.value + sa.bindparam("d")),
                     changed)
    group_rows = []
    for backend, language in sorted(set(before.reviewed) | set(after.reviewed)):
        old, new = before.reviewed[(backend, language)], after.reviewed[(backend, language)]
        for what, d in (("images", int(new > 0) - int(old > 0)), ("verdicts", new - old)):
            if d:
                group_rows.append({"name": group_counter(backend, language, what), "value": d})
    if group_rows:
        insert = _insert(conn, c)
        conn.execute(insert.on_conflict_do_update(index_elements=["name"],
                                                  set_={"value": c.c.value + insert.excluded.value}), group_rows)
    tag_rows = []
    for scope in SCOPES:
        old, new = before.carried.get(scope, set()), after.carried.get(scope, set())
        tag_rows += [{"scope": scope, "tag": tag, "images": 1} for tag in sorted(new - old)]
        tag_rows += [{"scope": scope, "tag": tag, "images": -1} for tag in sorted(old - new)]
    if tag_rows:
        insert = _insert(conn, t)
        conn.execute(insert.on_conflict_do_update(index_elements=["scope", "tag"],
                                                  set_={"images": t.c.images + insert.excluded.images}),
                     sorted(tag_rows, key=lambda r: (r["scope"], r["tag"])))
    link_delta = Counter(after.links)
    link_delta.subtract(before.links)
    link_rows = [{"tag": tag, "parent": parent, "times": d} for (tag, parent), d in sorted(link_delta.items()) if d]
    if link_rows:
        insert = _insert(conn, links)
        conn.execute(insert.on_conflict_do_update(index_elements=["tag", "parent"],
                                                  set_={"times": links.c.times + insert.excluded.times}), link_rows)


def rebuild(conn: Connection, f: sa.Table, v: sa.Table, counters: sa.Table, carried: sa.Table,
            links: sa.Table) -> None:
    """Recount every total from the rows (after a migration, a bulk load or a copy)."""
    old = conn.execute(sa.select(counters.c.value).where(counters.c.name == VERSION)).scalar()
    for table in (counters, carried, links):
        conn.execute(table.delete())
    same = sa.and_(f.c.image_key == v.c.image_key, f.c.backend == v.c.backend, f.c.language == v.c.language)
    nonempty = sa.exists().where(same)
    rows = [{"name": VERSION, "value": int(old or 0) + 1},
            {"name": VERDICTS, "value": conn.execute(sa.select(sa.func.count()).select_from(f)).scalar_one()}]
    per = {r[0]: r[1] for r in conn.execute(
        sa.select(v.c.provenance, sa.func.count()).where(nonempty).group_by(v.c.provenance))}
    images = {r[0]: r[1] for r in conn.execute(
        sa.select(v.c.provenance, sa.func.count(sa.distinct(v.c.image_key))).where(nonempty).group_by(v.c.provenance))}
    for scope in PROVENANCES:
        rows.append({"name": sets_counter(scope), "value": int(per.get(scope, 0))})
        rows.append({"name": images_counter(scope), "value": int(images.get(scope, 0))})
    rows.append({"name": sets_counter(ALL_SCOPE), "value": sum(int(n) for n in per.values())})
    rows.append({"name": images_counter(ALL_SCOPE),
                 "value": conn.execute(sa.select(sa.func.count(sa.distinct(v.c.image_key))).where(nonempty))
                 .scalar_one()})
    joined = f.join(v, same)
    for backend, language, images_n, verdicts_n in conn.execute(
        sa.select(f.c.backend, f.c.language, sa.func.count(sa.distinct(f.c.image_key)), sa.func.count())
        .select_from(joined).where(v.c.provenance == REVIEWED).group_by(f.c.backend, f.c.language)
    ):
        rows.append({"name": group_counter(backend, language, "images"), "value": int(images_n)})
        rows.append({"name": group_counter(backend, language, "verdicts"), "value": int(verdicts_n)})
    conn.execute(counters.insert(), rows)
    accepted = f.c.accepted.is_(True)
    conn.execute(carried.insert().from_select(
        ["scope", "tag", "images"],
        sa.select(v.c.provenance, f.c.tag, sa.func.count(sa.distinct(f.c.image_key)))
        .select_from(joined).where(accepted).group_by(v.c.provenance, f.c.tag),
    ))
    conn.execute(carried.insert().from_select(
        ["scope", "tag", "images"],
        sa.select(sa.literal(ALL_SCOPE), f.c.tag, sa.func.count(sa.distinct(f.c.image_key)))
        .select_from(joined).where(accepted).group_by(f.c.tag),
    ))
    conn.execute(links.insert().from_select(
        ["tag", "parent", "times"],
        sa.select(f.c.tag, f.c.parent, sa.func.count()).where(f.c.parent.is_not(None)).group_by(f.c.tag, f.c.parent),
    ))


def read(conn: Connection) -> dict[str, int]:
    """Every counter by name."""
    c = s.data_counters
    return {name: int(value) for name, value in conn.execute(sa.select(c.c.name, c.c.value))}
