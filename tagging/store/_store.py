"""The store: images and verdicts, settings and the remote-feedback outbox, on SQLite or PostgreSQL.

One schema and one query layer (SQLAlchemy Core) for both databases. Every operation takes a
pooled connection for one short transaction. Writes are serialised where they must be:

* SQLite: every write transaction starts with ``BEGIN IMMEDIATE`` (one writer at a time, the
  others wait up to the busy timeout), in WAL mode so readers never wait.
* PostgreSQL: a save locks its image's row first, so two servers saving the same image at
  once run one after the other (the later replaces the earlier and is told whose verdict it
  replaced); the outbox is claimed with ``FOR UPDATE SKIP LOCKED``.

Driver errors come out as :class:`~tagging.errors.StoreError` (never with a password).

``Store`` is this module's core (connections, migrations, verdicts, images, settings) with its
concerns mixed in from their own modules: the Library's paged queries (``_queries``), the analysis
summaries (``_analysis``), the review queue (``_review_queue``) and the outbox's rows
(``_outbox_rows``); the values they return and their shared SQL helpers are in ``_rows``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tagging.errors import SchemaVersionError, StoreUnavailableError
from tagging.store import _counters, _tune_sums
from tagging.store import _schema as s
from tagging.store._analysis import AnalysisQueries
from tagging.store._db import (
    POSTGRESQL,
    SQLITE,
    database_url,
    display_url,
    guarded,
    make_engine,
)
from tagging.store._outbox_rows import OutboxRows
from tagging.store._queries import LibraryQueries
from tagging.store._review_queue import (
    ReviewQueue,
)
from tagging.store._rows import (
    FeedbackGroup,
    FeedbackItem,
    LibraryEntry,
    SaveResult,
    VerdictSet,
    _insert,
    _item,
    _missing_json,
    _missing_tuple,
    _now,
    _same_set,
    _set_key,
    _verdict_set,
)
from tagging.store._schema import AUTOMATIC, PROVENANCES, REVIEWED, SCHEMA_VERSION
from tagging.store._tune import TuneRows, TuneSums, tune_rows

DEFAULT_DB_PATH = Path("data") / "tagging.db"


class Store(LibraryQueries, AnalysisQueries, ReviewQueue, OutboxRows):
    """The dashboard's database. Creating one runs pending migrations (unless ``migrate=False``).

    ``target`` is ``TAGGING_DB``'s value: a file path, ``sqlite:///PATH`` or
    ``postgresql://USER@HOST[:PORT]/DB``; ``password`` overrides the URL's. Raises
    StoreError (StoreConfigError, StoreUnavailableError, SchemaVersionError).
    """

    def __init__(self, target: str | Path = DEFAULT_DB_PATH, *, password: str | None = None,
                 migrate: bool = True) -> None:
        self._url = database_url(target, password)
        self.dialect = self._url.get_backend_name()
        self.path: Path | None = Path(str(self._url.database)) if self.dialect == SQLITE else None
        self.url = display_url(self._url)  # for people: never with the password
        try:
            self.engine = make_engine(self._url)
        except OSError as exc:  # the SQLite file's folder cannot be created
            raise StoreUnavailableError(f"The database {self.url} cannot be created ({exc.strerror}).") from exc
        if migrate:
            self.migrate()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def close(self) -> None:
        """Close every pooled connection (the store can still be used: it reconnects)."""
        self.engine.dispose()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with guarded(self._url), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with guarded(self._url), self.engine.connect() as conn:
            conn.execution_options(tagging_write=True)
            with conn.begin():
                yield conn

    def writing(self) -> AbstractContextManager[Connection]:
        """One write transaction (serialised as every save is), for the tables of another concern (``tagging.auth``)."""
        return self._write()

    def reading(self) -> AbstractContextManager[Connection]:
        """One read connection, for the tables of another concern (``tagging.auth``)."""
        return self._read()

    # --- schema ------------------------------------------------------------------
    def schema_version(self) -> int:
        """The database's current schema version."""
        with self._read() as conn:
            return s.read_version(conn)

    def migrate(self, target_version: int = SCHEMA_VERSION) -> int:
        """Apply every migration up to ``target_version`` (each in its own transaction); return the version.

        Two servers starting at once do not both migrate: SQLite's write lock or a PostgreSQL
        advisory lock makes the second wait and then find nothing left to do.
        """
        if not 0 <= target_version <= SCHEMA_VERSION:
            raise ValueError(f"target_version must be 0..{SCHEMA_VERSION}")
        context = s.Context(sqlite_path=self.path)
        with guarded(self._url):
            while True:
                with self.engine.connect() as conn:
                    conn.execution_options(tagging_write=True)
                    with conn.begin():
                        if self.dialect == POSTGRESQL:
                            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7403186912)")  # arbitrary, fixed
                        version = s.read_version(conn)
                        if version > SCHEMA_VERSION:
                            raise SchemaVersionError(
                                f"The database {self.url} has schema version {version}, newer than this app's "
                                f"{SCHEMA_VERSION}; update the app."
                            )
                        if version >= target_version:
                            return version
                        step = s.MIGRATIONS[version]
                        step.apply(conn, context)
                        s.write_version(conn, step.version)

    # --- feedback ----------------------------------------------------------------
    def save_feedback(
        self,
        *,
        image_key: str,
        filename: str,
        source: str,
        backend: str,
        language: str,
        threshold: float,
        min_tags: int,
        items: Sequence[FeedbackItem],
        width: int | None = None,
        height: int | None = None,
        thumbnail: bytes | None = None,
        preview: bytes | None = None,
        provenance: str = REVIEWED,
        saved_by: str | None = None,
        batch: str | None = None,
        replace_reviewed: bool = False,
        review_mode: str | None = None,
        missing_tags: Sequence[str] = (),
    ) -> SaveResult:
        """Record the verdict on every suggested tag of one image, atomically.

        ``thumbnail`` (256 px) and ``preview`` (``tagging.images.PREVIEW_SIDE``) are JPEGs of
        the image; a save without them keeps the stored ones.

        Saving the same image (same backend and language) again replaces its earlier
        verdicts; the result says whose verdicts were replaced and when. ``provenance`` is
        ``reviewed`` (an analyst decided) or ``automatic`` (the rule's selection, unreviewed);
        an automatic save never replaces reviewed verdicts (``kept`` then says so) unless
        ``replace_reviewed`` (an undo of a review putting the automatic verdicts back).

        ``review_mode`` says how a review was made (``prefilled`` with the rule's selection, or
        ``blind``); ``missing_tags`` are tags the reviewer noted the tagger missed (free text, kept
        apart from the verdicts, which only suggested tags can have).
        """
        if provenance not in PROVENANCES:
            raise ValueError(f"provenance must be one of {PROVENANCES}, not {provenance!r}")
        if review_mode is not None and review_mode not in s.REVIEW_MODES:
            raise ValueError(f"review_mode must be one of {s.REVIEW_MODES} or None, not {review_mode!r}")
        now = _now()
        i, v, f = s.images, s.verdict_sets, s.feedback
        with self._write() as conn:
            created = conn.execute(
                _insert(conn, i)
                .values(image_key=image_key, filename=filename, source=source, width=width, height=height,
                        thumbnail=thumbnail, preview=preview, created_at=now, updated_at=now)
                .on_conflict_do_nothing(index_elements=["image_key"])
            ).rowcount == 1
            if not created:
                # Concurrent saves of this image queue up here (a no-op on SQLite, which is serialised already).
                conn.execute(sa.select(i.c.image_key).where(i.c.image_key == image_key).with_for_update())
            previous = conn.execute(
                sa.select(v.c.provenance, v.c.saved_by, v.c.saved_at).where(_set_key(v, image_key, backend, language))
            ).first()
            if (previous is not None and provenance == AUTOMATIC and previous.provenance == REVIEWED
                    and not replace_reviewed):
                return SaveResult(0, 0, False, previous.saved_by, previous.saved_at, previous.provenance, kept=True)
            before = _counters.ImageState() if created else _counters.image_state(conn, image_key)
            _counters.bump_version(conn)
            overrides = _tune_sums.stored_overrides(conn)
            tune_before = (_tune_sums.Contribution() if created
                           else _tune_sums.contribution(conn, [image_key], overrides))
            if not created:
                known = {k: val for k, val in (("width", width), ("height", height), ("thumbnail", thumbnail),
                                               ("preview", preview))
                         if val is not None}  # a save without them keeps the stored ones
                conn.execute(i.update().where(i.c.image_key == image_key)
                             .values(filename=filename, source=source, updated_at=now, **known))
            values = dict(provenance=provenance, threshold=float(threshold), min_tags=int(min_tags), saved_at=now,
                          batch=batch, saved_by=saved_by, review_mode=review_mode,
                          missing_tags=_missing_json(missing_tags))
            conn.execute(
                _insert(conn, v).values(image_key=image_key, backend=backend, language=language, **values)
                .on_conflict_do_update(index_elements=["image_key", "backend", "language"], set_=values)
            )
            conn.execute(f.delete().where(_set_key(f, image_key, backend, language)))
            if items:
                conn.execute(f.insert(), [
                    dict(image_key=image_key, backend=backend, language=language, tag=it.tag, parent=it.parent,
                         confidence=float(it.confidence), accepted=bool(it.accepted), threshold=float(threshold),
                         min_tags=int(min_tags), saved_at=now)
                    for it in items
                ])
            _counters.apply_change(conn, before, _counters.image_state(conn, image_key))
            _tune_sums.apply(conn, tune_before, _tune_sums.contribution(conn, [image_key], overrides))
        replaced = previous is not None
        other = replaced and previous.saved_by is not None and previous.saved_by != saved_by
        return SaveResult(
            items=len(items), accepted=sum(bool(it.accepted) for it in items), replaced=replaced,
            previous_saved_by=previous.saved_by if replaced else None,
            previous_saved_at=previous.saved_at if replaced else None,
            previous_provenance=previous.provenance if replaced else None,
            replaced_other=other,
        )

    def feedback_for(self, image_key: str, backend: str, language: str) -> list[FeedbackItem]:
        """The stored feedback of one image (any provenance), highest confidence first."""
        f = s.feedback
        with self._read() as conn:
            rows = conn.execute(
                sa.select(f.c.tag, f.c.confidence, f.c.accepted, f.c.parent)
                .where(_set_key(f, image_key, backend, language))
                .order_by(f.c.confidence.desc(), f.c.id)
            ).all()
        return [_item(r) for r in rows]

    def verdict_set(self, image_key: str, backend: str, language: str) -> VerdictSet | None:
        """Provenance, author and time of one image's verdicts, or None when it has none."""
        v = s.verdict_sets
        with self._read() as conn:
            row = conn.execute(sa.select(v).where(_set_key(v, image_key, backend, language))).first()
        return None if row is None else _verdict_set(row)

    def counts(self) -> tuple[int, int]:
        """(number of images with feedback, number of feedback items), any provenance: two kept totals."""
        totals = self.totals()
        return totals[s.IMAGES], totals[s.VERDICTS]

    def totals(self) -> dict[str, int]:
        """Every kept total by name (``data_counters``): one small read whatever the library's size."""
        with self._read() as conn:
            return _counters.read(conn)

    def data_version(self) -> int:
        """A counter every change of the verdicts moves on: results computed from them are cached by it."""
        c = s.data_counters
        with self._read() as conn:
            return int(conn.execute(sa.select(c.c.value).where(c.c.name == s.VERSION)).scalar_one())

    def rebuild_totals(self) -> None:
        """Recount the kept totals from the rows (after rows were written around the store, as a bulk load)."""
        with self._write() as conn:
            _counters.rebuild(conn, s.feedback, s.verdict_sets, s.data_counters, s.tag_images, s.tag_parent_links)
            _tune_sums.rebuild(conn)

    def provenance_counts(self, backend: str | None = None, language: str | None = None) -> dict[str, int]:
        """How many verdict sets are reviewed and automatic (of one backend and language, if given)."""
        v = s.verdict_sets
        query = sa.select(v.c.provenance, sa.func.count()).group_by(v.c.provenance)
        if backend is not None:
            query = query.where(v.c.backend == backend)
        if language is not None:
            query = query.where(v.c.language == language)
        with self._read() as conn:
            found = {row[0]: int(row[1]) for row in conn.execute(query)}
        return {p: found.get(p, 0) for p in PROVENANCES}

    # --- queries for the Tune and Library pages ---------------------------------------
    def _verdicts(self, reviewed_only: bool) -> Any:
        """feedback rows joined to their sets (only the reviewed ones, if asked)."""
        f, v = s.feedback, s.verdict_sets
        joined = f.join(v, _same_set(f, v))
        return joined, (v.c.provenance == REVIEWED) if reviewed_only else sa.true()

    def feedback_groups(self, reviewed_only: bool = True) -> list[FeedbackGroup]:
        """Every backend and language that has feedback, the most images first (reviewed verdicts by default)."""
        if reviewed_only:  # kept totals (``_counters``): no count over the verdicts
            found: dict[tuple[str, str], dict[str, int]] = {}
            for name, value in self.totals().items():
                if name.startswith(_counters.GROUP_PREFIX) and value > 0:
                    backend, language, what = name[len(_counters.GROUP_PREFIX):].split("\t")
                    found.setdefault((backend, language), {})[what] = value
            groups = [FeedbackGroup(b, lang, n.get("images", 0), n.get("verdicts", 0))
                      for (b, lang), n in found.items() if n.get("images", 0) > 0]
            return sorted(groups, key=lambda g: (-g.images, g.backend, g.language))
        f = s.feedback
        joined, condition = self._verdicts(reviewed_only)
        images = sa.func.count(sa.distinct(f.c.image_key))
        with self._read() as conn:
            rows = conn.execute(
                sa.select(f.c.backend, f.c.language, images, sa.func.count())
                .select_from(joined).where(condition)
                .group_by(f.c.backend, f.c.language)
                .order_by(images.desc(), f.c.backend, f.c.language)
            ).all()
        return [FeedbackGroup(r[0], r[1], int(r[2]), int(r[3])) for r in rows]

    def feedback_by_image(
        self, backend: str, language: str, reviewed_only: bool = True, image_keys: Sequence[str] | None = None
    ) -> dict[str, list[FeedbackItem]]:
        """Feedback of one backend and language: image key -> items, highest confidence first.

        Only reviewed verdicts by default: the rule's own unreviewed selection would measure
        the rule against itself. ``image_keys`` reads only those images' verdicts.
        """
        f = s.feedback
        joined, condition = self._verdicts(reviewed_only)
        query = (
            sa.select(f.c.image_key, f.c.tag, f.c.confidence, f.c.accepted, f.c.parent)
            .select_from(joined)
            .where(condition, f.c.backend == backend, f.c.language == language)
            .order_by(f.c.image_key, f.c.confidence.desc(), f.c.id)
        )
        result: dict[str, list[FeedbackItem]] = {}
        with self._read() as conn:
            keys = sorted(set(image_keys)) if image_keys is not None else [None]
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                part = query if image_keys is None else query.where(f.c.image_key.in_(chunk))
                for r in conn.execute(part):
                    result.setdefault(r.image_key, []).append(_item(r))
        return result

    def review_modes(self, backend: str, language: str) -> dict[str | None, int]:
        """Reviewed sets of one backend and language by how they were reviewed (None: not recorded)."""
        v = s.verdict_sets
        with self._read() as conn:
            rows = conn.execute(
                sa.select(v.c.review_mode, sa.func.count())
                .where(v.c.provenance == REVIEWED, v.c.backend == backend, v.c.language == language)
                .group_by(v.c.review_mode)
            ).all()
        return {r[0]: int(r[1]) for r in rows}

    def missing_notes(self, image_keys: Sequence[str] | None = None) -> dict[str, tuple[str, ...]]:
        """Every image's missing-tags note (of any of its sets, merged in order), for the images asked or all."""
        v = s.verdict_sets
        query = sa.select(v.c.image_key, v.c.missing_tags).where(v.c.missing_tags.is_not(None))
        if image_keys is not None:
            query = query.where(v.c.image_key.in_(list(image_keys)))
        notes: dict[str, dict[str, None]] = {}
        with self._read() as conn:
            for key, text in conn.execute(query.order_by(v.c.image_key, v.c.backend, v.c.language)):
                notes.setdefault(key, {}).update(dict.fromkeys(_missing_tuple(text)))
        return {k: tuple(v) for k, v in notes.items() if v}

    def reviewed_backends(self, language: str, image_keys: Sequence[str]) -> list[str]:
        """The backends with reviewed verdicts in ``language`` on any of these images."""
        v = s.verdict_sets
        found: set[str] = set()
        keys = sorted(set(image_keys))
        with self._read() as conn:
            for start in range(0, len(keys), 500):
                found |= set(conn.execute(
                    sa.select(v.c.backend).distinct()
                    .where(v.c.provenance == REVIEWED, v.c.language == language,
                           v.c.image_key.in_(keys[start:start + 500]))
                ).scalars())
        return sorted(found)

    def tune_rows(self, backend: str, language: str, min_tags: int,
                  overrides: Mapping[str, float] | None = None, review_mode: str | None = None) -> TuneRows:
        """Tune's aggregates of the reviewed verdicts of one backend and language (see ``_tune``); ``review_mode``
        (``blind`` or ``prefilled``) keeps only the sets reviewed that way."""
        if min_tags < 0:
            raise ValueError("min_tags must not be negative")
        with self._read() as conn, conn.begin():
            return tune_rows(conn, backend, language, int(min_tags), dict(overrides or {}), review_mode)

    def tune_sums(self, backend: str, language: str, min_tags: int, overrides: Mapping[str, float] | None = None,
                  review_mode: str | None = None, *, more_than: int = 0) -> TuneSums | None:
        """Tune's sums over the reviewed images of one backend and language, kept in step with saves (see
        ``_tune_sums``); None when they are not kept for this floor and these overrides, or hold no more than
        ``more_than`` images (use ``tune_rows``)."""
        if int(min_tags) != _tune_sums.SUMS_FLOOR:
            return None
        with self._read() as conn, conn.begin():
            if _tune_sums.stored_overrides(conn) != dict(overrides or {}):
                return None
            if more_than and _tune_sums.images(conn, backend, language, review_mode) <= more_than:
                return None
            return _tune_sums.read(conn, backend, language, review_mode)

    def library_entries(self, provenance: str | None = None) -> list[LibraryEntry]:
        """Every image with saved feedback, one entry per backend and language, newest first.

        ``provenance`` (``reviewed`` or ``automatic``) keeps only those; None keeps all.
        """
        f, i, v = s.feedback, s.images, s.verdict_sets
        sets = (
            sa.select(v.c.image_key, v.c.backend, v.c.language, v.c.provenance, v.c.saved_by, v.c.saved_at,
                      i.c.filename, i.c.source, i.c.width, i.c.height, v.c.review_mode, v.c.missing_tags)
            .select_from(v.join(i, i.c.image_key == v.c.image_key))
        )
        verdicts = (
            sa.select(f.c.image_key, f.c.backend, f.c.language, f.c.tag, f.c.accepted)
            .select_from(f.join(v, _same_set(f, v)))
            .order_by(f.c.image_key, f.c.backend, f.c.language, f.c.confidence.desc(), f.c.id)
        )
        if provenance is not None:
            if provenance not in PROVENANCES:
                raise ValueError(f"provenance must be one of {PROVENANCES} or None, not {provenance!r}")
            sets = sets.where(v.c.provenance == provenance)
            verdicts = verdicts.where(v.c.provenance == provenance)
        tags: dict[tuple[str, str, str], list[str]] = {}
        counts: dict[tuple[str, str, str], int] = {}
        with self._read() as conn:
            # Unpacked as tuples: this reads every verdict of the library, and named access costs per row.
            for key0, key1, key2, tag, accepted in conn.execute(verdicts):
                key = (key0, key1, key2)
                counts[key] = counts.get(key, 0) + 1
                if accepted:
                    tags.setdefault(key, []).append(tag)
            rows = conn.execute(sets).all()
        entries = [
            LibraryEntry(
                image_key=key, filename=filename, source=source, backend=backend, language=language,
                tags=tuple(tags.get((key, backend, language), ())), verdicts=counts[(key, backend, language)],
                saved_at=saved_at, width=width, height=height, provenance=prov, saved_by=saved_by,
                review_mode=mode, missing_tags=_missing_tuple(missing),
            )
            for key, backend, language, prov, saved_by, saved_at, filename, source, width, height, mode, missing
            in rows
            if (key, backend, language) in counts  # a set whose verdicts were all removed is not listed
        ]
        entries.sort(key=lambda e: (e.saved_at, e.filename, e.backend, e.language), reverse=True)
        return entries

    def tag_parents(self) -> list[tuple[str, str, int]]:
        """Every (tag, parent, times seen) pair in the feedback, accepted or not; Imagga's tags have none.

        Read from the kept totals (``tag_parent_links``), not counted over the verdicts.
        """
        t = s.tag_parent_links
        with self._read() as conn:
            rows = conn.execute(
                sa.select(t.c.tag, t.c.parent, t.c.times).where(t.c.times > 0).order_by(t.c.tag, t.c.parent)
            ).all()
        return [(r[0], r[1], int(r[2])) for r in rows]

    def thumbnail(self, image_key: str) -> bytes | None:
        """The small JPEG stored with an image, or None."""
        i = s.images
        with self._read() as conn:
            value = conn.execute(sa.select(i.c.thumbnail).where(i.c.image_key == image_key)).scalar()
        return None if value is None else bytes(value)

    def thumbnails(self, image_keys: Sequence[str]) -> dict[str, bytes]:
        """The stored thumbnails of several images (images without one are left out)."""
        keys = list(dict.fromkeys(image_keys))
        i = s.images
        result: dict[str, bytes] = {}
        with self._read() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                for r in conn.execute(
                    sa.select(i.c.image_key, i.c.thumbnail).where(i.c.image_key.in_(chunk), i.c.thumbnail.is_not(None))
                ):
                    result[r[0]] = bytes(r[1])
        return result

    def preview(self, image_key: str) -> bytes | None:
        """The image to review by: its stored preview, else its thumbnail (saved before previews), else None."""
        i = s.images
        with self._read() as conn:
            value = conn.execute(
                sa.select(sa.func.coalesce(i.c.preview, i.c.thumbnail)).where(i.c.image_key == image_key)
            ).scalar()
        return None if value is None else bytes(value)

    def delete_image(self, image_key: str) -> int:
        """Delete an image's record and all its feedback; return the verdicts deleted.

        Messages in the remote-feedback outbox are not touched.
        """
        f, i, v = s.feedback, s.images, s.verdict_sets
        with self._write() as conn:
            # The image's row first, as a save takes it first: a concurrent save waits, never deadlocks.
            conn.execute(sa.select(i.c.image_key).where(i.c.image_key == image_key).with_for_update())
            before = _counters.image_state(conn, image_key)
            _counters.bump_version(conn)
            tune_before = _tune_sums.contribution(conn, [image_key])
            verdicts = int(conn.execute(
                sa.select(sa.func.count()).select_from(f).where(f.c.image_key == image_key)
            ).scalar_one())
            conn.execute(f.delete().where(f.c.image_key == image_key))
            conn.execute(v.delete().where(v.c.image_key == image_key))
            conn.execute(s.image_analysis.delete().where(s.image_analysis.c.image_key == image_key))
            conn.execute(i.delete().where(i.c.image_key == image_key))
            _counters.apply_change(conn, before, _counters.ImageState())
            _tune_sums.apply(conn, tune_before, _tune_sums.Contribution())
        return verdicts

    # --- per-tag thresholds ---------------------------------------------------------------
    def tag_overrides(self) -> dict[str, float]:
        """Per-tag thresholds ``{tag: threshold}`` (the ``tag_overrides`` setting)."""
        raw = self.get_setting("tag_overrides", {}) or {}
        return {str(tag): float(value) for tag, value in raw.items()}

    def set_tag_override(self, tag: str, threshold: float | None) -> dict[str, float]:
        """Set (or with None, remove) one tag's threshold; return all overrides.

        Read and write happen in one transaction holding the setting's row, so two sessions
        (or servers) editing different tags both keep their change.
        """
        t = s.settings
        with self._write() as conn:
            _counters.bump_version(conn)  # first, as every writer: saves wait, so Tune's sums are re-summed alone
            conn.execute(_insert(conn, t).values(key="tag_overrides", value="{}")
                         .on_conflict_do_nothing(index_elements=["key"]))
            raw = conn.execute(sa.select(t.c.value).where(t.c.key == "tag_overrides").with_for_update()).scalar_one()
            old = {str(k): float(v) for k, v in json.loads(raw).items()}
            overrides = dict(old)
            if threshold is None:
                overrides.pop(tag, None)
            else:
                overrides[tag] = float(threshold)
            if overrides != old:  # only the images carrying the tag change
                tune_before = _tune_sums.contribution(conn, None, old, carrying=tag)
                conn.execute(t.update().where(t.c.key == "tag_overrides")
                             .values(value=json.dumps(overrides, sort_keys=True)))
                _tune_sums.apply(conn, tune_before, _tune_sums.contribution(conn, None, overrides, carrying=tag))
        return overrides

    # --- settings ----------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        """A JSON setting, or ``default`` when unset."""
        t = s.settings
        with self._read() as conn:
            raw = conn.execute(sa.select(t.c.value).where(t.c.key == key)).scalar()
        return default if raw is None else json.loads(raw)

    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON setting."""
        t = s.settings
        text = json.dumps(value)
        with self._write() as conn:
            conn.execute(_insert(conn, t).values(key=key, value=text)
                         .on_conflict_do_update(index_elements=["key"], set_={"value": text}))
