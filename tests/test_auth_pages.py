"""Without sign-in: the single-user default says so on Settings, and a server others can reach warns on every page."""

from __future__ import annotations

import pytest
import streamlit as st

from tests.test_store_pages import texts
from ui.text import literal

PAGES = ("tag", "batch", "review", "compare", "tune", "library", "settings")
EXPOSED = "without sign-in: anyone who reaches it can delete the library"


@pytest.fixture
def listening_on(app):
    """Set server.address for the AppTest runs (the ``app`` fixture puts it on loopback)."""

    def use(address: str | None) -> None:
        st.config.set_option("server.address", address)

    return use


@pytest.mark.parametrize("address", ["0.0.0.0", "192.168.1.20", None])
def test_an_exposed_server_without_sign_in_warns_on_every_page(app, listening_on, address):
    listening_on(address)
    at = app().run()
    for page in PAGES:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, page
        assert EXPOSED in texts(at.warning), page
    assert literal(address or "every network interface") in texts(at.warning)


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost", "::1"])
def test_a_loopback_server_does_not_warn_and_settings_says_there_is_no_sign_in(app, listening_on, address):
    listening_on(address)
    at = app().run()
    at.switch_page("pages/settings.py").run()
    assert EXPOSED not in texts(at.warning)
    assert "No sign-in: this is the single-user default" in texts(at.info)
    assert not at.button(key="settings_team_cap_save").disabled  # the single user is the admin


def test_the_tag_page_says_when_the_daily_cap_is_reached_and_sends_nothing(app, isolated_env, monkeypatch):
    from tagging.auth import spent_today
    from tagging.store import Store
    from tests.imagga_standin import TEST_API_KEY, TEST_API_SECRET, ImaggaStandin, serve

    with serve(ImaggaStandin()) as (standin, base_url):
        monkeypatch.setenv("IMAGGA_API_KEY", TEST_API_KEY)
        monkeypatch.setenv("IMAGGA_API_SECRET", TEST_API_SECRET)
        monkeypatch.setenv("IMAGGA_API_URL", base_url)
        monkeypatch.setenv("TAGGING_DAILY_IMAGGA_CAP", "1")
        at = app().run()
        at.selectbox(key="tag_sample").set_value("cat.jpg").run()
        assert not at.error and standin.count("POST", "/v2/tags") == 1
        at.selectbox(key="tag_sample").set_value("coffee.jpg").run()
        assert "has used 1 of the 1 paid Imagga calls allowed per day" in texts(at.error)
        assert "midnight UTC" in texts(at.error) and not at.exception
        assert standin.count("POST", "/v2/tags") == 1
    assert spent_today(Store(isolated_env), at.session_state["analyst_session"]) == 1


def test_the_shipped_config_listens_on_loopback_only():
    """A fresh clone's app (scripts/run-app.sh) is the single-user default: not reachable from the network,
    so it has nothing to warn about."""
    import tomllib
    from pathlib import Path

    from ui.auth import LOOPBACK

    config = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] in LOOPBACK
