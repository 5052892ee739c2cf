from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
ENV_NAMES = ("IMAGGA_API_KEY", "IMAGGA_API_SECRET", "IMAGGA_API_URL", "TAGGING_MAX_UPLOAD_MB", "TAGGING_DB",
             "IMAGGA_RETRIES", "IMAGGA_BACKOFF_FACTOR")


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
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


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

    Every cache starts empty except the embedded model, which is read-only: loading it again
    for each test (about half a second) would isolate nothing. Tests that patch its methods
    patch the class, so they reach the shared instance too.
    """
    from ui import resources

    monkeypatch.setattr(resources, "embedded_backend", _shared_embedded_backend)

    def make(secrets: dict[str, str] | None = None) -> AppTest:
        at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=120)
        # A non-empty secrets dict makes AppTest replace st.secrets, so no file on disk is read.
        at.secrets["TAGGING_TEST"] = "isolated"
        at.secrets.update(secrets or {})
        return at

    return make
