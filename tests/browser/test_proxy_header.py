"""Trusted proxy header mode: an identity header counts only when server.trustedUserHeaders names it.

With proxy mode off a client's forged ``X-Forwarded-Email`` changes nothing (the app stays the
single-user default and signs with the session's id); with it on, the same header is the identity
(a positive control, so the first half can fail), and a request without it is refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tagging.auth import audit_entries
from tagging.store import Store
from tests.browser.conftest import VIEWPORT
from tests.browser.server import App, start_app

pytestmark = pytest.mark.browser

TIMEOUT = 30_000  # ms
HEADER = "X-Forwarded-Email"
FORGED = "boss@example.com"


@pytest.fixture(scope="module")
def proxy_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    app = start_app(tmp_path_factory.mktemp("proxy-app"),
                    extra_args=["--server.trustedUserHeaders", json.dumps({HEADER: "email"})])
    yield app
    app.stop()


def _settings(browser, app: App, headers: dict[str, str]):
    context = browser.new_context(viewport=VIEWPORT, extra_http_headers=headers)
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    page.goto(f"{app.url}/settings")
    return context, page


def test_a_forged_identity_header_is_ignored_when_proxy_mode_is_off(browser, app_server: App):
    context, page = _settings(browser, app_server, {HEADER: FORGED})
    try:
        expect(page.get_by_text("No sign-in: this is the single-user default")).to_be_visible(timeout=TIMEOUT)
        expect(page.get_by_text("session-").first).to_be_visible()
        assert FORGED not in page.content()
    finally:
        context.close()
    assert FORGED not in {e.actor for e in audit_entries(Store(app_server.db_path))}


def test_with_proxy_mode_on_the_header_is_the_identity_and_its_absence_is_refused(browser, proxy_app: App):
    context, page = _settings(browser, proxy_app, {HEADER: FORGED})
    try:
        expect(page.get_by_text("Sign-in: a trusted proxy's header.")).to_be_visible(timeout=TIMEOUT)
        expect(page.get_by_text(FORGED, exact=True)).to_be_visible()
        expect(page.get_by_text("Role: viewer")).to_be_visible()  # TAGGING_DEFAULT_ROLE: nobody gave it one
        expect(page.get_by_role("button", name="Save role")).to_be_disabled()
    finally:
        context.close()
    assert ("boss@example.com", "sign-in") in {(e.actor, e.action) for e in audit_entries(Store(proxy_app.db_path))}
    context, page = _settings(browser, proxy_app, {})
    try:
        expect(page.get_by_text("the reverse proxy sent no identity header")).to_be_visible(timeout=TIMEOUT)
        expect(page.get_by_role("heading", name="Settings")).to_have_count(0)
    finally:
        context.close()


def test_without_sign_in_the_name_typed_on_settings_survives_a_reload(page, app_server: App):
    page.goto(f"{app_server.url}/settings")
    box = page.get_by_role("textbox", name="Your name")
    box.fill("Carol <b>Smith</b>")
    box.press("Enter")
    expect(page.get_by_text("Carol <b>Smith</b>", exact=True)).to_be_visible(timeout=TIMEOUT)
    page.wait_for_function("() => document.cookie.includes('tagging_analyst=')", timeout=TIMEOUT)
    page.reload()  # a new Streamlit session: the browser's cookie brings the name back
    expect(page.get_by_role("textbox", name="Your name")).to_have_value("Carol <b>Smith</b>", timeout=TIMEOUT)
    expect(page.get_by_text("Carol <b>Smith</b>", exact=True)).to_be_visible()
    page.goto(app_server.url)  # and the Tag page signs with it
    page.get_by_role("button", name="Save feedback").click()
    expect(page.locator('[data-testid="stCaptionContainer"]').filter(has_text="Saved so far:").first
           ).to_contain_text("on 1 image.", timeout=TIMEOUT)
    saved = {e.saved_by for e in Store(app_server.db_path).library_entries()}
    assert "Carol <b>Smith</b>" in saved
