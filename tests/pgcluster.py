"""A throwaway PostgreSQL cluster from Debian's ``postgresql`` package, for tests and benchmarks.

``start()`` runs ``initdb`` and ``pg_ctl`` from ``/usr/lib/postgresql/*/bin`` on a free
loopback port, with its unix socket and data in a new temporary folder, and ``stop()`` removes
it all. ``initdb`` refuses to run as root (as CI does), so as root the server runs as the
``postgres`` user the package creates (``runuser -u postgres --``), owning the folder.

Roles: ``postgres`` connects over TCP without a password (``trust``, fast: one per test
database); every other role needs its password (``scram-sha-256``), for the tests of secrets.
Durability is switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the data
lives for one test run.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SERVER_USER = "postgres"
START_TIMEOUT_SECONDS = 60


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has ``initdb`` and ``pg_ctl``."""
    found = []
    for candidate in Path("/usr/lib/postgresql").glob("*/bin"):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            try:
                found.append((float(candidate.parent.name), candidate))
            except ValueError:
                continue
    return max(found)[1] if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Cluster:
    """A running throwaway cluster; ``url(db)`` is a ``postgresql://`` URL as ``TAGGING_DB`` takes it."""

    bindir: Path
    root: Path
    port: int
    prefix: list[str]
    _names: itertools.count = field(default_factory=lambda: itertools.count(1), repr=False)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres", user: str = SERVER_USER, password: str | None = None) -> str:
        auth = user if password is None else f"{user}:{password}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> list[tuple]:
        """Run one statement as the superuser in autocommit mode; return its rows (if any)."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=SERVER_USER, dbname=database,
                             autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database (from ``template0``); returns its name."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any connection still open to it."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def create_role(self, name: str, password: str) -> None:
        escaped = password.replace("'", "''")
        self.execute(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{escaped}'")

    def stop(self) -> None:
        """Stop the server at once and remove its folder."""
        if self.datadir.exists():
            subprocess.run([*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate",
                            "-w", "stop"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-10_000:]
        except OSError:
            return ""


def start(bindir: Path | None = None) -> Cluster:
    """initdb and start a cluster in a new temporary folder. Raises RuntimeError with the server's log."""
    bindir = bindir or find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL's server binaries are missing: apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="tagging-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the package's postgres user
        account = pwd.getpwnam(SERVER_USER)
        os.chown(root, account.pw_uid, account.pw_gid)
        prefix = ["runuser", "-u", SERVER_USER, "--"]
    cluster = Cluster(bindir, root, _free_port(), prefix)
    try:
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(cluster.datadir), "-U", SERVER_USER, "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-sync"],
            check=True, capture_output=True, text=True, timeout=START_TIMEOUT_SECONDS,
        )
        hba = ("local all all trust\n"
               f"host all {SERVER_USER} 127.0.0.1/32 trust\n"
               "host all all 127.0.0.1/32 scram-sha-256\n")
        subprocess.run([*prefix, "sh", "-c", f"cat > {cluster.datadir / 'pg_hba.conf'}"], input=hba, text=True,
                       check=True, timeout=30)
        options = " ".join([
            f"-p {cluster.port}", f"-k {root}", "-c listen_addresses=127.0.0.1", "-c fsync=off",
            "-c synchronous_commit=off", "-c full_page_writes=off", "-c max_connections=300",
            "-c shared_buffers=64MB",
        ])
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(cluster.datadir), "-l", str(cluster.logfile), "-w",
             "-t", str(START_TIMEOUT_SECONDS), "-o", options, "start"],
            check=True, capture_output=True, text=True, timeout=START_TIMEOUT_SECONDS + 10,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        output = getattr(exc, "stderr", "") or ""
        log = cluster.log()
        cluster.stop()
        raise RuntimeError(f"could not start PostgreSQL: {exc}\n{output}\n--- server log ---\n{log}") from exc
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:  # pg_ctl -w waited for the socket; make sure TCP answers too
        try:
            cluster.execute("SELECT 1")
            break
        except Exception:  # noqa: BLE001 - any failure means "not yet", until the deadline
            if time.monotonic() > deadline:
                log = cluster.log()
                cluster.stop()
                raise RuntimeError(f"PostgreSQL did not answer on port {cluster.port}\n{log}") from None
            time.sleep(0.1)
    return cluster
