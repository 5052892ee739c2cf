from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests import pgcluster

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
ENV_NAMES = ("IMAGGA_API_KEY", "IMAGGA_API_SECRET", "IMAGGA_API_URL", "TAGGING_MAX_UPLOAD_MB", "TAGGING_DB",
             "TAGGING_DB_PASSWORD", "TAGGING_ANALYST", "DASK_SCHEDULER_ADDRESS")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No developer key, secrets file or database leaks into a test; each test gets its own DB."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    db = tmp_path / "tagging.db"
    monkeypatch.setenv("TAGGING_DB", str(db))
    return db


@pytest.fixture
def clear_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def app(clear_caches):
    """An AppTest of the whole dashboard, isolated from any real .streamlit/secrets.toml."""

    def make(secrets: dict[str, str] | None = None) -> AppTest:
        at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=120)
        # A non-empty secrets dict makes AppTest replace st.secrets, so no file on disk is read.
        at.secrets["TAGGING_TEST"] = "isolated"
        at.secrets.update(secrets or {})
        return at

    return make


# --- databases: SQLite files and a real PostgreSQL ---------------------------------------------
@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pgcluster.Cluster]:
    """One throwaway PostgreSQL cluster for the whole run (Debian's server binaries; scripts/test.sh installs them)."""
    if pgcluster.find_bindir() is None:
        message = "PostgreSQL's server is not installed (apt-get install postgresql; scripts/test.sh does it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    cluster = pgcluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_database(pg_cluster: pgcluster.Cluster) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    name = pg_cluster.create_database()
    yield pg_cluster.url(name)
    pg_cluster.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """``TAGGING_DB`` of an empty database: a SQLite file, then a PostgreSQL database (each test runs on both)."""
    if request.param == "sqlite":
        return str(tmp_path / "t.db")
    return request.getfixturevalue("pg_database")


@pytest.fixture
def open_db(db_target: str) -> Iterator[Callable[..., object]]:
    """Open ``Store``s on the test's database (as often as a test reopens it); all are closed afterwards."""
    from tagging.store import Store

    opened: list[Store] = []

    def make(**kwargs) -> Store:
        store = Store(db_target, **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
@pytest.fixture(scope="session")
def dask_cluster():
    """A real Dask LocalCluster: a scheduler here and two worker processes of one thread each.

    Shared by the cluster, command-line and Batch page tests (starting one takes seconds and
    each worker loads the embedded model once). A test that kills a worker waits for the
    nanny's replacement before it ends.
    """
    import logging

    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           worker_dashboard_address=None, silence_logs=logging.ERROR)
    yield cluster
    cluster.close()


@pytest.fixture(scope="session")
def dask_client(dask_cluster):
    """A client of ``dask_cluster`` made by ``tagging.batch.connect`` (as the command line and the page do)."""
    from tagging.batch import connect

    client = connect(dask_cluster.scheduler_address)
    yield client
    client.close()
