"""Which database ``TAGGING_DB`` names, one SQLAlchemy engine for it, and errors without secrets.

``TAGGING_DB`` is a file path (SQLite, as before), a ``sqlite:///`` URL or a ``postgresql://``
URL (driven by psycopg 3). A PostgreSQL password may sit in the URL or come separately
(``TAGGING_DB_PASSWORD``); it is only ever rendered as ``***`` and every message this module
builds from a driver error has it scrubbed out.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url

from tagging.errors import StoreConfigError, StoreError, StoreUnavailableError

log = logging.getLogger("tagging.store")

SQLITE, POSTGRESQL = "sqlite", "postgresql"
# How long a SQLite writer waits for another session's transaction. Writes take milliseconds,
# so 10 s only runs out when something is badly wrong.
BUSY_TIMEOUT_SECONDS = 10.0
# A reachable PostgreSQL answers a connection in milliseconds; 5 s fails fast on a dead or
# firewalled host, so the page can say so while the analyst is still looking at it.
CONNECT_TIMEOUT_SECONDS = 5
# The PostgreSQL counterpart of the SQLite busy timeout: a row lock held longer than this
# (another server's save is milliseconds) means something is stuck; fail instead of hanging.
LOCK_TIMEOUT_MS = 10_000
_SQLITE_SCHEMA_ERRORS = ("no such ", "near ", "table ", "duplicate column", "index ")
_SCHEMES = "a file path, a sqlite:/// URL or a postgresql:// URL"


def is_url(target: str | Path) -> bool:
    return "://" in str(target)


def database_url(target: str | Path, password: str | None = None) -> URL:
    """The SQLAlchemy URL of a ``TAGGING_DB`` value; ``password`` (if given) replaces the URL's own.

    Raises StoreConfigError, whose message never repeats the value (it may hold a password).
    """
    text = str(target).strip()
    if not text:
        raise StoreConfigError(f"TAGGING_DB is empty; set it to {_SCHEMES}.")
    if not is_url(text):
        url = URL.create("sqlite+pysqlite", database=str(Path(text)))
    else:
        try:
            url = make_url(text)
            port = url.port  # parsing the port raises for "host:abc"
        except (sa.exc.ArgumentError, ValueError):
            raise StoreConfigError(
                f"TAGGING_DB is not a valid database URL (not shown: it may contain a password); use {_SCHEMES}. "
                "Put special characters of a password in TAGGING_DB_PASSWORD instead of the URL."
            ) from None
        del port
        backend, _, driver = url.drivername.partition("+")
        if backend in ("postgresql", "postgres"):
            if driver not in ("", "psycopg"):
                raise StoreConfigError(f"TAGGING_DB names the driver {driver!r}; this app uses psycopg 3: "
                                       "write postgresql://… (or postgresql+psycopg://…).")
            url = url.set(drivername="postgresql+psycopg")
            if not url.database:
                raise StoreConfigError("TAGGING_DB's PostgreSQL URL names no database: postgresql://USER@HOST/DBNAME.")
        elif backend == "sqlite":
            if driver not in ("", "pysqlite"):
                raise StoreConfigError(f"TAGGING_DB names the SQLite driver {driver!r}; use sqlite:///PATH.")
            if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
                raise StoreConfigError("TAGGING_DB's sqlite:/// URL must name a database file: sqlite:///PATH.")
            url = url.set(drivername="sqlite+pysqlite")
        else:
            raise StoreConfigError(f"TAGGING_DB must be {_SCHEMES}; {backend!r} databases are not supported.")
    if password:
        if url.get_backend_name() != POSTGRESQL:
            log.info("TAGGING_DB_PASSWORD is set but TAGGING_DB is not PostgreSQL; it is ignored")
        else:
            url = url.set(password=password)
    return url


def display(target: str | Path, password: str | None = None) -> str:
    """How a ``TAGGING_DB`` value is shown: a file path as is, a URL with its password (or ``password``) as ``***``."""
    if not is_url(target):
        return str(target)
    try:
        url = make_url(str(target).strip())
    except (sa.exc.ArgumentError, ValueError):
        return "(TAGGING_DB: not a valid URL, not shown)"
    if password and url.get_backend_name() == POSTGRESQL:
        url = url.set(password=password)
    return url.render_as_string(hide_password=True)


def display_url(url: URL) -> str:
    """A URL as shown to people: SQLite as its file path, PostgreSQL with the password hidden."""
    if url.get_backend_name() == SQLITE:
        return str(url.database)
    return url.set(drivername="postgresql").render_as_string(hide_password=True)


def without_password(target: str | Path) -> tuple[str, str | None]:
    """Split a ``TAGGING_DB`` value into (value without its password, password or None)."""
    if not is_url(target):
        return str(target), None
    try:
        url = make_url(str(target).strip())
    except (sa.exc.ArgumentError, ValueError):
        return str(target), None  # open_store reports it, without echoing it
    if url.password is None:
        return str(target).strip(), None
    return url._replace(password=None).render_as_string(hide_password=False), str(url.password)  # set() ignores None


def _ensure_wal(cursor: Any) -> None:
    """Put the file in WAL mode (readers never wait for the writer; the file keeps the mode).

    Switching needs a moment's exclusive lock and SQLite answers "database is locked" at once,
    without its busy timeout, when another connection opening a new file holds it: retry.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    delay = 0.005
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _sqlite_engine(url: URL) -> Engine:
    Path(str(url.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        hide_parameters=True,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event (below) open transactions instead of pysqlite, so a
        # write can start with BEGIN IMMEDIATE and DDL runs inside the migration's transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        _ensure_wal(cursor)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write takes the database's write lock up front: two sessions saving at once queue up
        # (busy timeout) instead of one failing when its deferred transaction tries to upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("tagging_write") else "BEGIN")

    return engine


def _postgresql_engine(url: URL) -> Engine:
    return sa.create_engine(
        url,
        pool_pre_ping=True,  # a restarted server leaves dead pooled connections behind
        hide_parameters=True,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "application_name": "tagging-dashboard",
            "options": f"-c lock_timeout={LOCK_TIMEOUT_MS}",
        },
    )


def make_engine(url: URL) -> Engine:
    """An engine with a connection pool, set up for the store's transactions on this database."""
    if url.get_backend_name() == SQLITE:
        return _sqlite_engine(url)
    return _postgresql_engine(url)


def scrub(text: str, url: URL) -> str:
    """``text`` with the URL's password (if any) replaced by ``***``."""
    if url.password:
        text = text.replace(str(url.password), "***")
    return text


def describe(exc: sa.exc.DBAPIError | sa.exc.TimeoutError, url: URL) -> StoreError:
    """A StoreError for an SQLAlchemy error: what failed, on which database, without any secret."""
    where = display_url(url)
    original = getattr(exc, "orig", None)
    reason = str(original if original is not None else exc).strip().splitlines()
    first = reason[0] if reason else type(exc).__name__
    detail = scrub(first, url)
    # SQLite reports schema mistakes as OperationalError too; those are not about reaching the database.
    schema_mistake = url.get_backend_name() == SQLITE and detail.startswith(_SQLITE_SCHEMA_ERRORS)
    if not schema_mistake and (
        isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.TimeoutError)
        or (isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated)
    ):
        return StoreUnavailableError(f"The database {where} is unavailable ({detail}).")
    return StoreError(f"The database {where} refused the operation ({detail}).")


@contextmanager
def guarded(url: URL) -> Iterator[None]:
    """Turn the driver's errors into StoreErrors (chained for the log); SQLAlchemy's own usage errors stay bugs."""
    try:
        yield
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
        error = describe(exc, url)
        if url.password and str(url.password) in f"{exc}{exc.__cause__}{getattr(exc, 'orig', '')}":
            raise error from None  # a driver that echoed the password must not reach a log through the chain
        raise error from exc


def db_epoch(conn: Connection) -> float:
    """Seconds since the epoch by the database's clock (PostgreSQL's), so app servers agree on leases."""
    if conn.dialect.name == POSTGRESQL:
        return float(conn.exec_driver_sql("SELECT EXTRACT(EPOCH FROM clock_timestamp())").scalar_one())
    return time.time()  # SQLite: every process using the file shares this machine's clock
