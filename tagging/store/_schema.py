"""The store's schema (one for every database) and its versioned migrations.

Migrations are plain SQLAlchemy DDL run in order, each in one transaction with the version
bump, so a failed step leaves the database at the previous version. They only add: tables,
nullable or defaulted columns, indexes, and rows derived from existing ones. That is exactly
what both SQLite and PostgreSQL do natively with the same DDL (no table rebuilds), so no
migration framework is needed; see the commit that introduced this module.

The version lives in the one-row table ``schema_version``. SQLite files made before it
existed carry theirs in ``PRAGMA user_version`` (1 or 2); on SQLite the pragma is kept in
step as well, so an older app refuses a newer file instead of writing to it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

log = logging.getLogger("tagging.store")

REVIEWED, AUTOMATIC = "reviewed", "automatic"
PREFILLED, BLIND = "prefilled", "blind"  # how a reviewed set was judged
REVIEW_MODES = (PREFILLED, BLIND)
PROVENANCES = (REVIEWED, AUTOMATIC)
PENDING, SENT = "pending", "sent"
LEGACY_CACHE_FILENAME = "results-cache.db"


def _id() -> sa.types.TypeEngine:
    # BIGINT identity on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" is the auto-numbered rowid.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# --- the current schema, as the queries see it -----------------------------------------------------
metadata = sa.MetaData()

images = sa.Table(
    "images", metadata,
    sa.Column("image_key", sa.Text, primary_key=True),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("width", sa.Integer),
    sa.Column("height", sa.Integer),
    sa.Column("thumbnail", sa.LargeBinary),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.Column("preview", sa.LargeBinary),
)
feedback = sa.Table(
    "feedback", metadata,
    sa.Column("id", _id(), primary_key=True, autoincrement=True),
    sa.Column("image_key", sa.Text, sa.ForeignKey("images.image_key", ondelete="CASCADE"), nullable=False),
    sa.Column("backend", sa.Text, nullable=False),
    sa.Column("language", sa.Text, nullable=False),
    sa.Column("tag", sa.Text, nullable=False),
    sa.Column("parent", sa.Text),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("accepted", sa.Boolean, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("min_tags", sa.Integer, nullable=False),
    sa.Column("saved_at", sa.Text, nullable=False),
)
verdict_sets = sa.Table(
    "verdict_sets", metadata,
    sa.Column("image_key", sa.Text, sa.ForeignKey("images.image_key", ondelete="CASCADE"), primary_key=True),
    sa.Column("backend", sa.Text, primary_key=True),
    sa.Column("language", sa.Text, primary_key=True),
    sa.Column("provenance", sa.Text, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("min_tags", sa.Integer, nullable=False),
    sa.Column("saved_at", sa.Text, nullable=False),
    sa.Column("batch", sa.Text),
    sa.Column("saved_by", sa.Text),
    sa.Column("review_mode", sa.Text),
    sa.Column("missing_tags", sa.Text),
)
outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", _id(), primary_key=True, autoincrement=True),
    sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
    sa.Column("image_key", sa.Text, nullable=False),
    sa.Column("backend", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("response", sa.Text),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("sent_at", sa.Text),
    sa.Column("claimed_by", sa.Text),
    sa.Column("claimed_until", sa.Float),
    sa.Column("held", sa.Text),
    sa.Column("queued_by", sa.Text),
)
settings = sa.Table(
    "settings", metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
result_cache = sa.Table(
    "result_cache", metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("backend", sa.Text, nullable=False),
    sa.Column("image_key", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
)
result_claims = sa.Table(
    "result_claims", metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("claimed_at", sa.Text, nullable=False),
)
# Issue 19: who may do what, who did what, and how many paid calls each identity made today.
users = sa.Table(
    "users", metadata,
    sa.Column("identity", sa.Text, primary_key=True),
    sa.Column("role", sa.Text),
    sa.Column("daily_cap", sa.Integer),
    sa.Column("updated_by", sa.Text),
    sa.Column("updated_at", sa.Text),
    sa.Column("last_seen", sa.Text),
)
audit = sa.Table(
    "audit", metadata,
    sa.Column("id", _id(), primary_key=True, autoincrement=True),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("calls", sa.Integer),
)
spend = sa.Table(
    "spend", metadata,
    sa.Column("identity", sa.Text, primary_key=True),
    sa.Column("day", sa.Text, primary_key=True),
    sa.Column("calls", sa.Integer, nullable=False),
)
image_analysis = sa.Table(
    "image_analysis", metadata,
    sa.Column("image_key", sa.Text, sa.ForeignKey("images.image_key", ondelete="CASCADE"), primary_key=True),
    sa.Column("backend", sa.Text, primary_key=True),
    sa.Column("face_count", sa.Integer),
    sa.Column("dominant_color", sa.Text),
    sa.Column("dominant_parent", sa.Text),
    sa.Column("text_found", sa.Boolean),
    sa.Column("analysed_at", sa.Text, nullable=False),
)
schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))
data_counters = sa.Table(
    "data_counters", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)
tag_images = sa.Table(
    "tag_images", metadata,
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("tag", sa.Text, primary_key=True),
    sa.Column("images", sa.BigInteger, nullable=False),
)
tag_parent_links = sa.Table(
    "tag_parent_links", metadata,
    sa.Column("tag", sa.Text, primary_key=True),
    sa.Column("parent", sa.Text, primary_key=True),
    sa.Column("times", sa.BigInteger, nullable=False),
)
_SUM_KEY = ("backend", "language", "review_mode")  # review_mode "" for sets saved before it was recorded


def _tune_sum_tables(m: sa.MetaData) -> tuple[sa.Table, sa.Table, sa.Table]:
    """Tune's sums over reviewed images (see ``_tune_sums``): the images' vectors, their outer products, per-tag
    bins; BIGINT sums of integers, so adding and removing an image is exact."""
    def key() -> list[sa.Column]:
        return [sa.Column(name, sa.Text, primary_key=True) for name in _SUM_KEY]

    vector = sa.Table("tune_vector", m, *key(), sa.Column("dim", sa.Integer, primary_key=True),
                      sa.Column("total", sa.BigInteger, nullable=False))
    moments = sa.Table("tune_moments", m, *key(), sa.Column("a", sa.Integer, primary_key=True),
                       sa.Column("b", sa.Integer, primary_key=True), sa.Column("total", sa.BigInteger, nullable=False))
    tags = sa.Table("tune_tags", m, *key(), sa.Column("tag", sa.Text, primary_key=True),
                    sa.Column("bin", sa.Integer, primary_key=True), sa.Column("acc", sa.Integer, primary_key=True),
                    sa.Column("lo2", sa.Integer, primary_key=True), sa.Column("n", sa.BigInteger, nullable=False),
                    sa.Column("conf", sa.Float, nullable=False))
    return vector, moments, tags


tune_vector, tune_moments, tune_tags = _tune_sum_tables(metadata)
ALL_SCOPE = "all"
"""``tag_images.scope`` of every verdict set; the other scopes are the provenances."""
VERSION, VERDICTS, IMAGES = "version", "verdicts", "images"
"""``data_counters`` rows: a change counter, verdicts, images with a verdict (see ``_counters``)."""


# --- migrations ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Context:
    """What a migration may need besides its connection: the SQLite file it runs on, if any."""

    sqlite_path: Path | None


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection, Context], None]


def _create(conn: Connection, *tables: sa.Table) -> None:
    for table in tables:
        table.create(conn)


def _add_column(conn: Connection, table: str, column: sa.Column) -> None:
    """ALTER TABLE … ADD COLUMN, with the column rendered for this database."""
    spec = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {conn.dialect.identifier_preparer.quote(table)} ADD COLUMN {spec}")


def _v1_images_and_feedback(conn: Connection, ctx: Context) -> None:
    m = sa.MetaData()
    sa.Table(
        "images", m,
        sa.Column("image_key", sa.Text, primary_key=True),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("thumbnail", sa.LargeBinary),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
    )
    sa.Table(
        "feedback", m,
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("image_key", sa.Text, sa.ForeignKey("images.image_key", ondelete="CASCADE"), nullable=False),
        sa.Column("backend", sa.Text, nullable=False),
        sa.Column("language", sa.Text, nullable=False),
        sa.Column("tag", sa.Text, nullable=False),
        sa.Column("parent", sa.Text),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("accepted", sa.Boolean(create_constraint=True, name="feedback_accepted_bool"), nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("min_tags", sa.Integer, nullable=False),
        sa.Column("saved_at", sa.Text, nullable=False),
        sa.UniqueConstraint("image_key", "backend", "language", "tag", name="feedback_verdict_unique"),
        sa.Index("feedback_tag", "tag"),
    )
    m.create_all(conn)


def _v2_outbox_and_settings(conn: Connection, ctx: Context) -> None:
    m = sa.MetaData()
    sa.Table(
        "outbox", m,
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
        sa.Column("image_key", sa.Text, nullable=False),
        sa.Column("backend", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default=PENDING),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("response", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("sent_at", sa.Text),
        sa.CheckConstraint("status IN ('pending', 'sent')", name="outbox_status"),
    )
    sa.Table("settings", m, sa.Column("key", sa.Text, primary_key=True), sa.Column("value", sa.Text, nullable=False))
    m.create_all(conn)


def _v3_provenance(conn: Connection, ctx: Context) -> None:
    """One row per verdict set (image, backend, language): reviewed by an analyst, or automatic.

    Sets saved from the Batch page (``images.source = 'batch'``) were the rule's selection
    saved without review: they become automatic; everything else was saved on the Tag page.
    """
    m = sa.MetaData()
    i = sa.Table("images", m, autoload_with=conn)
    table = sa.Table(
        "verdict_sets", m,
        sa.Column("image_key", sa.Text, sa.ForeignKey("images.image_key", ondelete="CASCADE"), primary_key=True),
        sa.Column("backend", sa.Text, primary_key=True),
        sa.Column("language", sa.Text, primary_key=True),
        sa.Column("provenance", sa.Text, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("min_tags", sa.Integer, nullable=False),
        sa.Column("saved_at", sa.Text, nullable=False),
        sa.Column("batch", sa.Text),
        sa.CheckConstraint("provenance IN ('reviewed', 'automatic')", name="verdict_sets_provenance"),
        # The review queue pages through automatic sets in the query, newest or oldest first
        # (ties by key), optionally of one backend and language: an index scan that stops
        # after the page, whatever the queue's length.
        sa.Index("verdict_sets_queue", "provenance", "backend", "language", "saved_at", "image_key"),
        sa.Index("verdict_sets_saved", "provenance", "saved_at", "image_key", "backend", "language"),
    )
    table.create(conn)
    # The queue's "nearest the threshold" order reads only the verdicts in a window around it.
    sa.Index("feedback_confidence", sa.Table("feedback", m, autoload_with=conn).c.confidence).create(conn)
    f = sa.Table("feedback", m, autoload_with=conn)
    provenance = sa.case((i.c.source == "batch", sa.literal(AUTOMATIC)), else_=sa.literal(REVIEWED))
    rows = (
        sa.select(f.c.image_key, f.c.backend, f.c.language, provenance, sa.func.max(f.c.threshold),
                  sa.func.max(f.c.min_tags), sa.func.max(f.c.saved_at))
        .select_from(f.join(i, i.c.image_key == f.c.image_key))
        .group_by(f.c.image_key, f.c.backend, f.c.language, i.c.source)
    )
    conn.execute(table.insert().from_select(
        ["image_key", "backend", "language", "provenance", "threshold", "min_tags", "saved_at"], rows
    ))


def _v4_saved_by(conn: Connection, ctx: Context) -> None:
    """Who saved each verdict set (an analyst's name or session id); unknown for older sets."""
    _add_column(conn, "verdict_sets", sa.Column("saved_by", sa.Text))


def _v5_result_cache(conn: Connection, ctx: Context) -> None:
    """The result cache moves into the database; a lease row lets one caller compute a missing answer.

    On SQLite the rows of the old ``results-cache.db`` beside the database are copied in (the
    file is left where it is). A file that cannot be read is reported in the log and skipped:
    the cache only saves money, and the file stays for another try.
    """
    m = sa.MetaData()
    cache = sa.Table(
        "result_cache", m,
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("backend", sa.Text, nullable=False),
        sa.Column("image_key", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Index("result_cache_image", "image_key"),
    )
    sa.Table(
        "result_claims", m,
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("claimed_at", sa.Text, nullable=False),
    )
    m.create_all(conn)
    if ctx.sqlite_path is not None:
        _import_legacy_cache(conn, cache, ctx.sqlite_path)


def _import_legacy_cache(conn: Connection, cache: sa.Table, db_path: Path) -> None:
    legacy = db_path.with_name(LEGACY_CACHE_FILENAME)
    if not legacy.is_file() or legacy.resolve() == db_path.resolve():
        return
    try:
        source = sqlite3.connect(f"{legacy.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    except sqlite3.Error as exc:
        log.warning("could not open %s to import its cached answers (%s); it is left as it is", legacy, exc)
        return
    imported = 0
    try:
        cursor = source.execute("SELECT key, backend, image_key, payload, created_at FROM results")
        while rows := cursor.fetchmany(500):
            batch = [dict(zip(("key", "backend", "image_key", "payload", "created_at"), row, strict=True))
                     for row in rows]
            for row in batch:
                json.loads(row["payload"])  # a damaged row stops here, before anything half-imported counts
            conn.execute(sa.dialects.sqlite.insert(cache).on_conflict_do_nothing(index_elements=["key"]), batch)
            imported += len(batch)
    except (sqlite3.Error, ValueError) as exc:
        log.warning("could not read %s (%s); its cached answers were not imported, the file is left as it is",
                    legacy, exc)
        conn.execute(cache.delete())
        return
    finally:
        source.close()
    log.info("imported %d cached answers from %s (the file is left in place)", imported, legacy)


def _v6_outbox_claims(conn: Connection, ctx: Context) -> None:
    """Claims let one server at a time send a message; messages of automatic verdicts are held back.

    Before version 3 the Batch page queued its automatic selections to Imagga too. Those still
    pending are kept but marked ``held`` (never sent) unless the image has a reviewed Imagga set.
    """
    _add_column(conn, "outbox", sa.Column("claimed_by", sa.Text))
    _add_column(conn, "outbox", sa.Column("claimed_until", sa.Float))
    _add_column(conn, "outbox", sa.Column("held", sa.Text))
    conn.exec_driver_sql("CREATE INDEX outbox_pending ON outbox (status, backend, id)")
    o = sa.Table("outbox", sa.MetaData(), autoload_with=conn)
    v = sa.Table("verdict_sets", sa.MetaData(), autoload_with=conn)
    of_image = sa.and_(v.c.image_key == o.c.image_key, v.c.backend == o.c.backend)
    conn.execute(
        o.update()
        .where(o.c.status == PENDING)
        .where(sa.exists().where(of_image, v.c.provenance == AUTOMATIC))
        .where(~sa.exists().where(of_image, v.c.provenance == REVIEWED))
        .values(held="automatic verdicts (saved from a batch without review) are not sent as feedback")
    )


def _v7_previews(conn: Connection, ctx: Context) -> None:
    """A bounded preview JPEG per image (long side ``tagging.images.PREVIEW_SIDE``), for reviewing without the original.

    Batch-saved images keep no original, and their 256 px thumbnail is too small to judge a tag
    by. A nullable column, added last: rows saved before have none (the thumbnail stands in), and
    SQLite reads the columns before it without touching the blob's overflow pages.
    """
    _add_column(conn, "images", sa.Column("preview", sa.LargeBinary))
    # The queue's batch filter lists the batches awaiting review, newest first: read from this index
    # in batch order instead of visiting every automatic set.
    conn.exec_driver_sql("CREATE INDEX verdict_sets_batches ON verdict_sets (provenance, batch, saved_at)")


def _v8_library_aggregates(conn: Connection, ctx: Context) -> None:
    """Counters kept in step with every save, so pages read totals instead of counting a million rows.

    ``data_counters`` holds a change counter (the data version results are cached by), the
    number of verdicts, of images with a verdict and of non-empty verdict sets per provenance;
    ``tag_images`` how many images carry each accepted tag (per provenance and over all);
    ``tag_parent_links`` how often each (tag, parent) link was seen. Filled here from the rows
    already saved. The Library pages through verdict sets by date on ``verdict_sets_library``
    and finds the sets carrying a tag on ``feedback_accepted_tag`` without reading the table.
    """
    m = sa.MetaData()
    counters = sa.Table("data_counters", m, sa.Column("name", sa.Text, primary_key=True),
                        sa.Column("value", sa.BigInteger, nullable=False))
    carried = sa.Table("tag_images", m, sa.Column("scope", sa.Text, primary_key=True),
                       sa.Column("tag", sa.Text, primary_key=True), sa.Column("images", sa.BigInteger, nullable=False))
    links = sa.Table("tag_parent_links", m, sa.Column("tag", sa.Text, primary_key=True),
                     sa.Column("parent", sa.Text, primary_key=True),
                     sa.Column("times", sa.BigInteger, nullable=False))
    m.create_all(conn)
    conn.exec_driver_sql("CREATE INDEX verdict_sets_library ON verdict_sets (saved_at, image_key, backend, language)")
    conn.exec_driver_sql(
        "CREATE INDEX feedback_accepted_tag ON feedback (tag, accepted, image_key, backend, language)"
    )
    from tagging.store._counters import rebuild  # it reads this module's names

    rebuild(conn, sa.Table("feedback", m, autoload_with=conn), sa.Table("verdict_sets", m, autoload_with=conn),
            counters, carried, links)


def _review_mode_and_missing_tags(conn: Connection, ctx: Context) -> None:
    """How each reviewed set was judged (``prefilled`` with the rule's selection, or ``blind``) and the tags the
    reviewer noted as missing (a JSON list of free text, apart from the whitelisted verdicts).

    Two nullable columns: sets saved before have no mode recorded (they were all pre-filled, but
    that is not asserted after the fact) and no missing-tags note.
    """
    _add_column(conn, "verdict_sets", sa.Column("review_mode", sa.Text))
    _add_column(conn, "verdict_sets", sa.Column("missing_tags", sa.Text))


def _users_roles_audit_spend(conn: Connection, ctx: Context) -> None:
    """Sign-in: roles an admin sets per identity, the audit trail, each identity's paid calls per day.

    Also who queued each outbox message (unknown for older ones). Only adds: nothing existing changes.
    """
    m = sa.MetaData()
    sa.Table(
        "users", m,
        sa.Column("identity", sa.Text, primary_key=True),
        sa.Column("role", sa.Text),
        sa.Column("daily_cap", sa.Integer),
        sa.Column("updated_by", sa.Text),
        sa.Column("updated_at", sa.Text),
        sa.Column("last_seen", sa.Text),
        sa.CheckConstraint("role IS NULL OR role IN ('viewer', 'analyst', 'admin')", name="users_role"),
    )
    sa.Table(
        "audit", m,
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("calls", sa.Integer),
        sa.Index("audit_at", "at"),
        sa.Index("audit_actor", "actor", "at"),
    )
    sa.Table(
        "spend", m,
        sa.Column("identity", sa.Text, primary_key=True),
        sa.Column("day", sa.Text, primary_key=True),
        sa.Column("calls", sa.Integer, nullable=False),
    )
    m.create_all(conn)
    _add_column(conn, "outbox", sa.Column("queued_by", sa.Text))


def _v11_image_analysis(conn: Connection, ctx: Context) -> None:
    """What the Batch and Library tables show of an image's analysis, per image and backend: face count, dominant
    colour (palette name and parent) and whether text was found. A new table: no existing row changes, and a
    NULL column means "not analysed". Indexed by colour parent and name for the Library's colour filter."""
    m = sa.MetaData()
    sa.Table("images", m, sa.Column("image_key", sa.Text, primary_key=True))
    sa.Table(
        "image_analysis", m,
        sa.Column("image_key", sa.Text, sa.ForeignKey("images.image_key", ondelete="CASCADE"), primary_key=True),
        sa.Column("backend", sa.Text, primary_key=True),
        sa.Column("face_count", sa.Integer),
        sa.Column("dominant_color", sa.Text),
        sa.Column("dominant_parent", sa.Text),
        sa.Column("text_found", sa.Boolean(create_constraint=True, name="image_analysis_text_bool")),
        sa.Column("analysed_at", sa.Text, nullable=False),
        sa.Index("image_analysis_parent", "dominant_parent", "image_key"),
        sa.Index("image_analysis_color", "dominant_color", "image_key"),
    ).create(conn)


def _v12_tune_sums(conn: Connection, ctx: Context) -> None:
    """Tune's sums kept in step with saves, so its first open reads a few thousand sums instead of windowing every
    reviewed verdict. New tables, filled here from the verdicts already saved; nothing existing changes."""
    m = sa.MetaData()

    def key() -> list[sa.Column]:  # a frozen copy of the tables as this version defines them
        return [sa.Column(name, sa.Text, primary_key=True) for name in ("backend", "language", "review_mode")]

    sa.Table("tune_vector", m, *key(), sa.Column("dim", sa.Integer, primary_key=True),
             sa.Column("total", sa.BigInteger, nullable=False))
    sa.Table("tune_moments", m, *key(), sa.Column("a", sa.Integer, primary_key=True),
             sa.Column("b", sa.Integer, primary_key=True), sa.Column("total", sa.BigInteger, nullable=False))
    sa.Table("tune_tags", m, *key(), sa.Column("tag", sa.Text, primary_key=True),
             sa.Column("bin", sa.Integer, primary_key=True), sa.Column("acc", sa.Integer, primary_key=True),
             sa.Column("lo2", sa.Integer, primary_key=True), sa.Column("n", sa.BigInteger, nullable=False),
             sa.Column("conf", sa.Float, nullable=False))
    m.create_all(conn)
    from tagging.store._tune_sums import rebuild  # it reads this module's names

    rebuild(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "images and per-tag feedback", _v1_images_and_feedback),
    Migration(2, "outbox of remote feedback, key/value settings", _v2_outbox_and_settings),
    Migration(3, "verdict sets with their provenance: reviewed or automatic", _v3_provenance),
    Migration(4, "who saved each verdict set", _v4_saved_by),
    Migration(5, "the result cache and its compute leases in the database", _v5_result_cache),
    Migration(6, "outbox claims (one sender per message) and held automatic messages", _v6_outbox_claims),
    Migration(7, "a bounded preview image per image, and the batches awaiting review, for the review queue",
              _v7_previews),
    Migration(8, "counters, per-tag image counts and parent links kept in step with saves; library indexes",
              _v8_library_aggregates),
    Migration(9, "how each review was made (pre-filled or blind) and the tags a reviewer noted as missing",
              _review_mode_and_missing_tags),
    Migration(10, "users and roles, the audit trail, daily paid-call spend, who queued each outbox message",
              _users_roles_audit_spend),
    Migration(11, "per image and backend: face count, dominant colour, text found (Batch and Library columns)",
              _v11_image_analysis),
    Migration(12, "Tune's sums over reviewed images (vectors, outer products, per-tag bins) kept in step with saves",
              _v12_tune_sums),
)
SCHEMA_VERSION = len(MIGRATIONS)
assert [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))


def read_version(conn: Connection) -> int:
    """The schema version of the database ``conn`` is connected to (0 for an empty one)."""
    if sa.inspect(conn).has_table("schema_version"):
        value = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
        if value is not None:
            return int(value)
    if conn.dialect.name == "sqlite":
        return int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())
    return 0


def write_version(conn: Connection, version: int) -> None:
    if not sa.inspect(conn).has_table("schema_version"):
        schema_version.create(conn)
    conn.execute(schema_version.delete())
    conn.execute(schema_version.insert().values(version=version))
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
