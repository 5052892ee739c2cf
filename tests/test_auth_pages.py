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
