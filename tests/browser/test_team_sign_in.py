"""A signed-in team in a real browser: Chromium signs in through a real OpenID Connect provider's redirect flow.

The provider (``oidc-provider-mock``, a real OIDC server) runs on loopback with three users whose
``roles`` claim makes them a viewer, an analyst and an admin. Each signs in through
``st.login`` (the authorization-code flow: app -> provider -> /oauth2callback -> app), and
what the page offers or refuses is checked against what the database then holds. No secret
(client secret, cookie secret, a token) may show in a page or a log.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tagging.auth import audit_entries, cap_of
from tagging.store import FeedbackItem, Store
from tests.browser.server import (
    TAGS_READY,
    App,
    OidcProvider,
    auth_secrets,
    free_port,
    start_app,
    start_oidc_provider,
)

pytestmark = pytest.mark.browser

TIMEOUT = 30_000  # ms
USERS = [
    {"sub": "vic@example.com", "email": "vic@example.com", "roles": "viewer"},
    {"sub": "bob@example.com", "email": "bob@example.com", "roles": ["analyst"]},
    {"sub": "ada@example.com", "email": "ada@example.com", "roles": "admin"},
]
SECRETS = {"client": secrets.token_urlsafe(24), "cookie": secrets.token_urlsafe(24)}
LOCK = '[data-testid="stCaptionContainer"]'


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    provider = start_oidc_provider(tmp_path_factory.mktemp("oidc"), USERS)
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def team_app(tmp_path_factory: pytest.TempPathFactory, provider: OidcProvider) -> Iterator[App]:
    workdir = tmp_path_factory.mktemp("team-app")
    port = free_port()
    (workdir / "secrets.toml").write_text(auth_secrets(port, provider, SECRETS["client"], SECRETS["cookie"]))
    store = Store(workdir / "tagging.db")  # one image a colleague saved, for the Library's delete
    store.save_feedback(image_key="k1", filename="old.jpg", source="Upload", backend="embedded", language="en",
                        threshold=60, min_tags=3, items=[FeedbackItem("cat", 90, True)], saved_by="carol@example.com")
    store.close()
    app = start_app(workdir, port=port)
    yield app
    app.stop()


# How a page shows a user's identity in Markdown: ui.text.literal keeps "bob@example.com" from becoming a mailto
# link with an invisible word joiner (U+2060) before the "@".
JOINED_BOB = r"bob\u2060?@example\.com"

def sign_in(page: Page, app: App, who: str) -> None:
    page.goto(app.url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible(timeout=TIMEOUT)
    page.get_by_role("button", name="Sign in").click()
    # the provider's own authorization page: pick the user, which redirects back with a code
    page.wait_for_url(re.compile(r"/oauth2/authorize"), timeout=TIMEOUT)
    page.get_by_role("button", name=who, exact=True).click()
    page.wait_for_url(re.compile(rf"^{re.escape(app.url)}/?(\?.*)?$"), timeout=TIMEOUT)
    page.wait_for_function(TAGS_READY, arg="cat.jpg", timeout=TIMEOUT)


def go_to(page: Page, title: str, heading: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", name=heading)).to_be_visible(timeout=TIMEOUT)


def no_secret_in(text: str) -> None:
    for value in SECRETS.values():
        assert value not in text
    assert not re.search(r"eyJ[\w-]{10,}\.[\w-]{10,}\.", text)  # no JWT (id or access token)


def test_a_viewer_reads_but_every_change_is_disabled_with_the_reason(page: Page, team_app: App):
    sign_in(page, team_app, "vic@example.com")
    save = page.get_by_role("button", name="Save feedback")
    expect(save).to_be_disabled()
    expect(page.locator(LOCK).filter(has_text="Only the analyst role or above may save or review verdicts; "
                                              "your role is viewer.")).to_be_visible()
    go_to(page, "Batch", "Tag a batch of images")
    expect(page.locator(LOCK).filter(has_text="Only the analyst role or above may run batches")).to_be_visible()
    go_to(page, "Library", "Library")
    page.get_by_text("Gallery", exact=True).click()  # each tile has its own Delete…
    expect(page.get_by_role("button", name="Delete…").first).to_be_disabled()
    expect(page.locator(LOCK).filter(has_text="Only the admin role or above may delete from the library")
           ).to_be_visible()
    go_to(page, "Settings", "Settings")
    expect(page.get_by_text("vic@example.com").first).to_be_visible()
    expect(page.get_by_text("Role: viewer")).to_be_visible()
    expect(page.get_by_role("button", name="Save role")).to_be_disabled()
    no_secret_in(page.content())
    store = Store(team_app.db_path)
    assert store.verdict_set("k1", "embedded", "en").saved_by == "carol@example.com" and store.counts()[0] == 1
    assert ("vic@example.com", "sign-in") in {(e.actor, e.action) for e in audit_entries(store)}


def test_an_analyst_saves_signed_by_their_identity_but_may_not_delete(page: Page, team_app: App):
    sign_in(page, team_app, "bob@example.com")
    page.get_by_role("button", name="Save feedback").click()
    expect(page.locator('[data-testid="stCaptionContainer"]').filter(has_text="Saved so far:").first
           ).to_contain_text("on 2 images", timeout=TIMEOUT)
    store = Store(team_app.db_path)
    cat = [e for e in store.library_entries() if e.filename == "cat.jpg"]
    assert [e.saved_by for e in cat] == ["bob@example.com"]
    go_to(page, "Library", "Library")
    page.get_by_text("Gallery", exact=True).click()  # each tile has its own Delete…
    expect(page.get_by_role("button", name="Delete…").first).to_be_disabled()
    assert store.counts()[0] == 2


def test_an_admin_replaces_a_colleagues_verdict_named_and_deletes(page: Page, team_app: App):
    sign_in(page, team_app, "ada@example.com")
    page.get_by_role("button", name="Save feedback").click()
    replaced = re.compile(JOINED_BOB.join(["You replaced the verdict ", " saved at"]))
    expect(page.get_by_text(replaced)).to_be_visible(timeout=TIMEOUT)
    go_to(page, "Library", "Library")
    page.get_by_text("Gallery", exact=True).click()  # each tile has its own Delete…
    page.get_by_role("button", name="Delete…").first.click()  # the newest record first: cat.jpg
    page.get_by_role("button", name="Yes, delete").click()
    expect(page.get_by_text(re.compile(r"Deleted .*cat\.jpg"))).to_be_visible(timeout=TIMEOUT)
    store = Store(team_app.db_path)
    assert [e.filename for e in store.library_entries()] == ["old.jpg"]
    trail = {(e.actor, e.action) for e in audit_entries(store)}
    assert {("ada@example.com", "delete"), ("ada@example.com", "sign-in"), ("bob@example.com", "sign-in")} <= trail
    go_to(page, "Settings", "Settings")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.get_by_role("textbox", name="Identity (email or subject)").fill("bob@example.com")
    page.get_by_role("spinbutton", name="Daily cap", exact=True).fill("7")
    page.get_by_role("button", name="Save role").click()
    saved = re.compile(JOINED_BOB.join(["Saved the role and cap of ", r"\."]))
    expect(page.get_by_text(saved)).to_be_visible(timeout=TIMEOUT)
    assert cap_of(store, "bob@example.com") == 7
    assert ("ada@example.com", "cap change") in {(e.actor, e.action) for e in audit_entries(store)}
    no_secret_in(page.content())
    no_secret_in(team_app.log())
    no_secret_in(Path(team_app.workdir / "streamlit.log").read_text())
