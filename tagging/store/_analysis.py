"""Analysis summaries in the store: face count, dominant colour and text found per image and backend.

Small functions over the ``image_analysis`` table, kept apart from the Library's queries so they combine with
any of them: ``analysis_condition`` is a SQL condition on an image key (and backend) column, which the
Library's paged query (``TagSearch``'s colour, faces and text) adds to its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from tagging.analysis import Summary
from tagging.store import _counters
from tagging.store import _schema as s
from tagging.store._rows import _insert


class AnalysisQueries:
    """The analysis summaries' reads and write, mixed into ``Store`` (which provides ``_read`` and ``_write``)."""

    def save_analysis(self, image_key: str, backend: str, summary: Summary) -> bool:
        """Keep an image's summary for one backend (the newest wins); False when the store has no such image.

        Only images the store knows (saved feedback) get one: the summary describes a Library row.
        """
        a, i = s.image_analysis, s.images
        values = dict(face_count=summary.face_count, dominant_color=summary.dominant_color,
                      dominant_parent=summary.dominant_parent, text_found=summary.text_found,
                      analysed_at=datetime.now(UTC).isoformat(timespec="seconds"))
        with self._write() as conn:  # type: ignore[attr-defined]
            if conn.execute(sa.select(i.c.image_key).where(i.c.image_key == image_key)).first() is None:
                return False
            held = conn.execute(sa.select(a.c.face_count, a.c.dominant_color, a.c.dominant_parent, a.c.text_found)
                                .where(a.c.image_key == image_key, a.c.backend == backend)).first()
            if held is not None and Summary(held[0], held[1], held[2],
                                            None if held[3] is None else bool(held[3])) == summary:
                return True  # unchanged: no write, and the Library's cached counts stay valid
            conn.execute(_insert(conn, a).values(image_key=image_key, backend=backend, **values)
                         .on_conflict_do_update(index_elements=["image_key", "backend"], set_=values))
            _counters.bump_version(conn)  # the Library's analysis filters count by data version
        return True

    def analysis_summaries(self, image_keys: Iterable[str]) -> dict[tuple[str, str], Summary]:
        """(image key, backend) -> summary, for the given images (any backend)."""
        keys = list(dict.fromkeys(image_keys))
        a = s.image_analysis
        found: dict[tuple[str, str], Summary] = {}
        with self._read() as conn:  # type: ignore[attr-defined]
            for start in range(0, len(keys), 500):
                rows = conn.execute(sa.select(a).where(a.c.image_key.in_(keys[start:start + 500])))
                for r in rows:
                    found[(r.image_key, r.backend)] = Summary(
                        r.face_count, r.dominant_color, r.dominant_parent,
                        None if r.text_found is None else bool(r.text_found))
        return found

    def colour_names(self) -> list[str]:
        """Every dominant colour's parent and palette name in the store, sorted (the Library filter's options)."""
        a = s.image_analysis
        with self._read() as conn:  # type: ignore[attr-defined]
            parents = conn.execute(sa.select(a.c.dominant_parent).distinct()).scalars().all()
            names = conn.execute(sa.select(a.c.dominant_color).distinct()).scalars().all()
        return sorted({n for n in (*parents, *names) if n})


def analysis_condition(
    image_key: sa.ColumnElement[Any], backend: sa.ColumnElement[Any] | None = None, *,
    colour: str | None = None, faces: bool | None = None, text: bool | None = None,
) -> sa.ColumnElement[bool]:
    """SQL: the image (of that backend, if given) has an analysis matching every filter given.

    ``colour`` matches the dominant colour's palette name or its parent; ``faces``/``text`` True want at least one
    face / some text, False want none (an image never analysed matches neither).
    """
    a = s.image_analysis
    conditions: list[sa.ColumnElement[bool]] = [a.c.image_key == image_key]
    if backend is not None:
        conditions.append(a.c.backend == backend)
    if colour:
        wanted = colour.strip().casefold()
        conditions.append(sa.or_(sa.func.lower(a.c.dominant_parent) == wanted,
                                 sa.func.lower(a.c.dominant_color) == wanted))
    if faces is not None:
        conditions.append(a.c.face_count > 0 if faces else a.c.face_count == 0)
    if text is not None:
        conditions.append(a.c.text_found.is_(sa.true()) if text else a.c.text_found.is_(sa.false()))
    return sa.exists().where(*conditions)

