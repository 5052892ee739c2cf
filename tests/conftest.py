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
             "TAGGING_DB_PASSWORD", "TAGGING_ANALYST", "DASK_SCHEDULER_ADDRESS", "IMAGGA_RETRIES",
             "IMAGGA_BACKOFF_FACTOR")


BROWSER_GROUP = "browser"


class _WorkUnits:
    """pytest-xdist's work units under ``--dist loadgroup`` (scripts/test.sh): every browser test in one,
    every other test file in its own.

    A worker runs a unit's tests in collection order, so module-scoped fixtures start once and tests that
    follow one another in a file still do. The browser tests (collected first, so started first) run one
    after another on one worker, one Chromium and one Streamlit server busy at a time as in a serial run,
    while the other worker runs the rest. Done here rather than with ``xdist_group`` marks, which
    pytest-xdist 3.8 cannot apply under pytest 9 (it renames a node id attribute pytest 9 no longer reads).
    """

    @staticmethod
    def unit(nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        return BROWSER_GROUP if path.startswith("tests/browser/") else path

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log):
        if config.getvalue("dist") != "loadgroup":
            return None
        from xdist.scheduler import LoadScopeScheduling

        class Scheduler(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                return _WorkUnits.unit(nodeid)

        config.option.loadscopereorder = False  # keep collection order: the long browser unit first
        return Scheduler(config, log)


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_WorkUnits(), "tagging-work-units")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No developer key, secrets file or database leaks into a test; each test gets its own DB.

    Pages retry Imagga as configured, but without sleeping between retries (backoff 0).
    """
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    db = tmp_path / "tagging.db"
    monkeypatch.setenv("TAGGING_DB", str(db))
    monkeypatch.setenv("IMAGGA_BACKOFF_FACTOR", "0")
    return db


@pytest.fixture
def clear_caches():
    from ui import persist

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
    persist.UPLOADS.clear()  # the uploads and batches the server keeps for reloads (stopping any still running)
    persist.BATCHES.clear()


_SHARED: dict[str, object] = {}


def _shared_embedded_backend():
    """The real embedded backend, its model loaded once per test process."""
    if "embedded" not in _SHARED:
        from tagging.backends import EmbeddedBackend

        backend = EmbeddedBackend()
        backend.tagger  # noqa: B018 - load the model now
        _SHARED["embedded"] = backend
    return _SHARED["embedded"]


@pytest.fixture
def embedded_backend():
    """The real embedded backend, shared by the test process (its model is read-only)."""
    return _shared_embedded_backend()


@pytest.fixture
def app(clear_caches, monkeypatch):
    """An AppTest of the whole dashboard, isolated from any real .streamlit/secrets.toml.

    Every cache starts empty except the shipped embedded model, which is read-only: loading it
    again for each test (about half a second) would isolate nothing. Tests that patch its methods
    patch the class, so they reach the shared instance too.
    """
    from tagging.embedded import DEFAULT_MANIFEST_ID
    from ui import resources

    own_loader = resources.embedded_backend

    def embedded_backend(manifest_id: str | None = None):
        if manifest_id in (None, DEFAULT_MANIFEST_ID):
            return _shared_embedded_backend()
        return own_loader(manifest_id)  # another model (a test's manifest): the page's own cached loader

    monkeypatch.setattr(resources, "embedded_backend", embedded_backend)
    # As tests/browser and the scripts start servers: on loopback (elsewhere, without sign-in, every page warns).
    address = st.config.get_option("server.address")
    st.config.set_option("server.address", "127.0.0.1")

    def make(secrets: dict[str, str] | None = None) -> AppTest:
        at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=120)
        # A non-empty secrets dict makes AppTest replace st.secrets, so no file on disk is read.
        at.secrets["TAGGING_TEST"] = "isolated"
        at.secrets.update(secrets or {})
        return at

    yield make
    st.config.set_option("server.address", address)


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


def tag_names(multiselect) -> list[str]:
    """The tag names of an accepted-tags multiselect's options (each shown as ``name · confidence``)."""
    from ui.text import CONFIDENCE_SEPARATOR

    return [option.rsplit(CONFIDENCE_SEPARATOR, 1)[0] for option in multiselect.options]
