"""Two Streamlit app servers on one PostgreSQL database, in a real browser, with the Imagga stand-in.

A team's setup: servers A (analyst "alice", the database password in its secrets.toml) and B
(analyst "**bob**", the password in the URL) share one library. The same image opened on both at
once is billed once; both saving it at once leaves one verdict set and the later saver is told
whose verdict it replaced (the name shown literally); both retrying the outbox at once send each
message once. The password never shows in a page or a server log.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from tagging.store import REVIEWED, Store
from tests.browser.conftest import VIEWPORT
from tests.browser.server import ROOT, App, Standin, start_app
from tests.browser.test_imagga_flow import _control, stats, tag_requests
from tests.browser.test_tag_flow import no_traceback, wait_for_tags
from tests.pgcluster import Cluster

pytestmark = pytest.mark.browser

TIMEOUT = 30_000  # ms
CAT = "cat.jpg"
CAT_KEY = hashlib.sha256((ROOT / "samples" / CAT).read_bytes()).hexdigest()
SECRET = "team-Pass/w0rd:with@odd#chars"
ALICE, BOB = "alice", "**bob**"


@dataclass
class Team:
    a: App
    b: App
    url: str  # with the password, for the test's own checks
    database: str


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, pg_cluster: Cluster, imagga_standin: Standin) -> Iterator[Team]:
    role = f"team_{os.getpid()}"
    database = pg_cluster.create_database("team")
    pg_cluster.create_role(role, SECRET)
    pg_cluster.execute(f'ALTER DATABASE "{database}" OWNER TO "{role}"')
    pg_cluster.execute(f'ALTER SCHEMA public OWNER TO "{role}"', database=database)
    plain = pg_cluster.url(database, user=role)
    with_password = pg_cluster.url(database, user=role, password=quote(SECRET, safe=""))
    work_a, work_b = tmp_path_factory.mktemp("server-a"), tmp_path_factory.mktemp("server-b")
    (work_a / "secrets.toml").write_text(f'TAGGING_DB_PASSWORD = "{SECRET}"\n')
    apps: list[App] = []
    try:
        apps.append(start_app(work_a, {**imagga_standin.credentials, "TAGGING_DB": plain, "TAGGING_ANALYST": ALICE}))
        apps.append(start_app(work_b, {**imagga_standin.credentials, "TAGGING_DB": with_password,
                                       "TAGGING_ANALYST": BOB}))
        yield Team(apps[0], apps[1], with_password, database)
    finally:
        for app in apps:
            app.stop()
        pg_cluster.drop_database(database)
        pg_cluster.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def pages(browser) -> Iterator[tuple[Page, Page]]:
    """One browser session on each server."""
    contexts = [browser.new_context(viewport=VIEWPORT) for _ in range(2)]
    opened = []
    for context in contexts:
        context.set_default_timeout(TIMEOUT)
        opened.append(context.new_page())
    yield opened[0], opened[1]
    for context in contexts:
        context.close()


def open_store(team: Team) -> Store:
    return Store(team.url)


def assert_no_secret(page: Page, *apps: App) -> None:
    html = page.content()
    for text in (html, *(app.log() for app in apps)):
        assert SECRET not in text and quote(SECRET, safe="") not in text


def test_the_same_image_opened_on_both_servers_at_once_is_billed_once(team, imagga_standin, pages):
    page_a, page_b = pages
    _control(imagga_standin, "reset")
    # Every tagging request takes 2 s, so the two servers' first runs overlap.
    _control(imagga_standin, "fail", {"mode": "slow", "delay": 2.0, "path": "/v2/tags", "method": "POST"})
    try:
        page_a.goto(team.a.url + "/")
        page_b.goto(team.b.url + "/")
        wait_for_tags(page_a, CAT)
        wait_for_tags(page_b, CAT)
        counted = stats(imagga_standin)
    finally:
        _control(imagga_standin, "reset")
    assert tag_requests(counted) == 1, counted["counts"]
    no_traceback(page_a)
    no_traceback(page_b)


def test_concurrent_saves_are_atomic_and_the_later_is_told_whose_verdict_it_replaced(team, pages):
    page_a, page_b = pages
    for page, app in ((page_a, team.a), (page_b, team.b)):
        page.goto(app.url + "/")
        wait_for_tags(page, CAT)
    page_a.get_by_role("button", name="Save feedback").click()
    page_b.get_by_role("button", name="Save feedback").click()
    for page in (page_a, page_b):
        toast = page.locator('[data-testid="stToast"]').filter(has_text=re.compile(r"(Saved|Updated) feedback"))
        expect(toast.first).to_be_visible(timeout=TIMEOUT)
        no_traceback(page)
    store = open_store(team)
    try:
        final = store.verdict_set(CAT_KEY, "imagga", "en")
        rows = store.feedback_for(CAT_KEY, "imagga", "en")
        with store.engine.connect() as conn:
            sets = conn.exec_driver_sql("SELECT COUNT(*) FROM verdict_sets WHERE image_key = %(k)s",
                                        {"k": CAT_KEY}).scalar_one()
    finally:
        store.close()
    assert sets == 1 and final.provenance == REVIEWED and final.saved_by in (ALICE, BOB)
    assert len({r.tag for r in rows}) == len(rows) > 0  # one save's rows, no duplicates
    later, earlier_name = (page_a, BOB) if final.saved_by == ALICE else (page_b, ALICE)
    other = page_b if later is page_a else page_a
    warning = later.locator('[data-testid="stAlert"]').filter(has_text="You replaced the verdict")
    expect(warning).to_be_visible(timeout=TIMEOUT)
    assert f"You replaced the verdict {earlier_name} saved at" in warning.inner_text()  # "**bob**" literally
    expect(other.locator('[data-testid="stAlert"]').filter(has_text="You replaced the verdict")).to_have_count(0)
    assert_no_secret(later, team.a, team.b)


def test_both_servers_share_one_library(team, pages):
    page_a, page_b = pages
    page_b.goto(team.b.url + "/library")
    expect(page_b.get_by_role("heading", name="Library")).to_be_visible(timeout=TIMEOUT)
    grid = page_b.locator('[data-testid="stDataFrame"]').first
    expect(grid).to_contain_text(CAT, timeout=TIMEOUT)
    expect(grid).to_contain_text(REVIEWED)
    page_a.goto(team.a.url + "/settings")
    shown = page_a.locator('[data-testid="stText"]').filter(has_text="Database:")
    expect(shown).to_contain_text(f"postgresql://team_{os.getpid()}:***@127.0.0.1")
    for page in (page_a, page_b):
        no_traceback(page)
        assert_no_secret(page, team.a, team.b)


def test_both_servers_retrying_the_outbox_at_once_send_each_message_once(team, imagga_standin, pages):
    page_a, page_b = pages
    store = open_store(team)
    try:
        keys = [store.enqueue(image_key=f"img{i}", backend="imagga", payload={"n": i}) for i in range(6)]
    finally:
        store.close()
    _control(imagga_standin, "reset")
    # Each feedback request takes 0.4 s, so both servers' rounds overlap.
    _control(imagga_standin, "fail", {"mode": "slow", "delay": 0.4, "path": "/v2/tags/feedback"})
    try:
        for page, app in ((page_a, team.a), (page_b, team.b)):
            page.goto(app.url + "/settings")
            expect(page.get_by_role("button", name="Send queued feedback now")).to_be_enabled(timeout=TIMEOUT)
        page_a.get_by_role("button", name="Send queued feedback now").click()
        page_b.get_by_role("button", name="Send queued feedback now").click()
        for page in (page_a, page_b):
            expect(page.locator('[data-testid="stAlert"]').filter(has_text=re.compile(r"Sent \d+ feedback"))
                   ).to_be_visible(timeout=TIMEOUT)
            no_traceback(page)
        counted = stats(imagga_standin)
    finally:
        _control(imagga_standin, "reset")
    sent = Counter(f["idempotency_key"] for f in counted["feedback"])
    assert sent == Counter(keys), sent
    assert counted["counts"].get("POST /v2/tags/feedback") == 6 and counted["feedback_replays"] == 0
    store = open_store(team)
    try:
        assert store.pending() == []
    finally:
        store.close()
