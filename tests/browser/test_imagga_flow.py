"""The Tag page on the Imagga backend, in a real browser, against the loopback Imagga stand-in.

One analyst's session: the stand-in's tags for the cat sample, the threshold slider moved by
keyboard (no new request), German tags (one new request), a chip removed and the feedback saved
(one feedback POST with the remaining chips as positives and an Idempotency-Key), a categorizer,
the Settings page's connection test with the usage metrics. Then a failure: the stand-in answers
401 to tagging, the page shows a clear error naming IMAGGA_API_KEY, no traceback, the image stays.
The stand-in's key and secret never appear in the page's HTML.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.server import CHIP_NAMES, ROOT, Standin
from tests.browser.test_tag_flow import caption, no_traceback, wait_for_tags
from tests.imagga_standin import CATEGORIZERS, TEST_API_KEY, TEST_API_SECRET, standin_tags

pytestmark = pytest.mark.browser

TIMEOUT = 30_000  # ms; generous for a loaded 2-core machine
SAMPLES = ROOT / "samples"
CAT = "cat.jpg"
OTHER = "coffee.jpg"
DEFAULT_THRESHOLD = 60
MIN_TAGS = 3
SECRETS = (
    TEST_API_KEY,
    TEST_API_SECRET,
    base64.b64encode(f"{TEST_API_KEY}:{TEST_API_SECRET}".encode()).decode(),  # the Basic token
)


# --- the stand-in's control endpoints ------------------------------------------------------
def _control(standin: Standin, action: str, body: dict[str, Any] | None = None, method: str = "POST") -> dict[str, Any]:
    url = f"http://127.0.0.1:{standin.port}/__standin__/{action}"
    data = None if method == "GET" else json.dumps(body or {}).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback only
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
        return json.loads(response.read())


def stats(standin: Standin) -> dict[str, Any]:
    return _control(standin, "stats", method="GET")


def tag_requests(snapshot: dict[str, Any]) -> int:
    """Requests that ask the stand-in for tags (not feedback)."""
    return sum(n for key, n in snapshot["counts"].items() if re.fullmatch(r"(GET|POST) /v2/tags(/[^/]+)?", key)
               and not key.endswith("/feedback"))


# --- page helpers ----------------------------------------------------------------------------
def accepted(page: Page):
    """The chips of the "Accepted tags" multiselect (not the sidebar's "Also ask for")."""
    return page.locator('[data-testid="stMultiSelect"]').filter(has_text="Accepted tags").locator("span[data-tag]")


def as_chips(names: list[str]) -> list[re.Pattern]:
    """What the chips of ``names`` read: each name, then its confidence (``cat · 76``)."""
    return [re.compile("^" + re.escape(name) + r" · \d+$") for name in names]


def chip_names(page: Page) -> list[str]:
    return accepted(page).evaluate_all(CHIP_NAMES)


def settle(page: Page) -> None:
    page.wait_for_function("() => document.querySelectorAll('[data-stale=\"true\"]').length === 0", timeout=TIMEOUT)


def metric(page: Page, label: str):
    """The value of the st.metric labelled ``label`` (not a stale copy the previous run left while a rerun draws)."""
    box = page.locator('[data-testid="stMetric"]:not([data-stale="true"] *):not([data-stale="true"])').filter(
        has=page.get_by_text(label, exact=True))
    return box.locator('[data-testid="stMetricValue"]')


def assert_no_secret(page: Page) -> None:
    html = page.content()
    leaked = [name for name, value in zip(("key", "secret", "basic token"), SECRETS, strict=True) if value in html]
    assert not leaked, f"the stand-in's {', '.join(leaked)} appear(s) in the page HTML"


def choose(page: Page, scope, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label`` inside ``scope``.

    The list closes when the page scrolls (react-aria's popover), and Playwright scrolls to
    click an option below the fold: so the box goes to the middle of the viewport first.
    """
    box = scope.locator('[data-testid="stSelectbox"]').filter(has_text=label)
    box.evaluate("e => e.scrollIntoView({block: 'center'})")
    box.click()
    target = page.get_by_role("option", name=option, exact=True)
    expect(target).to_be_in_viewport(timeout=TIMEOUT)
    target.click()


# The expander's <details> is open and done animating: its height animation scrolls the <details>,
# and a scroll closes an open selectbox list (react-aria's popover).
_EXPANDED = """(details) => details.open && details.getAnimations({subtree: true})
  .filter(a => a.playState === 'running' && a.effect.getComputedTiming().endTime !== Infinity).length === 0"""


def expand(page: Page, expander) -> None:
    expander.locator("summary").click()
    page.wait_for_function(_EXPANDED, arg=expander.locator("details").element_handle(), timeout=TIMEOUT)


def expected_names(language: str, threshold: float, min_tags: int = MIN_TAGS) -> list[str]:
    """What the rule selects from the stand-in's answer for the cat, best first."""
    tags = standin_tags((SAMPLES / CAT).read_bytes(), (language,))
    names = [t["tag"][language] for t in tags]
    above = [t["tag"][language] for t in tags if t["confidence"] >= threshold]
    return above if len(above) >= min_tags else names[:min_tags]


# --- tests -------------------------------------------------------------------------------------
def test_imagga_tag_flow(imagga_app_server, imagga_standin: Standin, page: Page):
    cat_bytes = (SAMPLES / CAT).read_bytes()
    all_en = [t["tag"]["en"] for t in standin_tags(cat_bytes)]
    all_de = [t["tag"]["de"] for t in standin_tags(cat_bytes, ("de",))]
    before = stats(imagga_standin)

    # 1. The stand-in's tags for the cat (451 px: sent as is, below the 1600 px downscale).
    page.goto(imagga_app_server.url + "/")
    expect(page.get_by_role("heading", name="Tag an image")).to_be_visible(timeout=TIMEOUT)
    wait_for_tags(page, CAT)
    expect(caption(page, "Tagged by")).to_contain_text(f"Tagged by Imagga API · {len(all_en)} tags · language en")
    expect(accepted(page)).to_have_text(as_chips(expected_names("en", DEFAULT_THRESHOLD)), timeout=TIMEOUT)
    no_traceback(page)
    assert_no_secret(page)
    loaded = stats(imagga_standin)
    assert tag_requests(loaded) - tag_requests(before) <= 1  # 0 if the cat was already in the cache
    assert loaded["unauthorized"] == before["unauthorized"]

    # 2. The threshold by keyboard: the chips follow, Imagga is not asked again.
    thumb = page.locator('[data-testid="stSlider"] input[type="range"]')
    thumb_value = page.locator('[data-testid="stSliderThumbValue"]')
    thumb.focus()
    page.keyboard.press("End")
    expect(thumb_value).to_have_text("100")
    expect(accepted(page)).to_have_text(as_chips(expected_names("en", 100)), timeout=TIMEOUT)  # the floor: top 3
    thumb.focus()
    page.keyboard.press("Home")
    expect(thumb_value).to_have_text("0")
    expect(accepted(page)).to_have_text(as_chips(all_en), timeout=TIMEOUT)
    expect(caption(page, f"{len(all_en)} of")).to_contain_text(f"{len(all_en)} of {len(all_en)} tags accepted")
    settle(page)
    assert tag_requests(stats(imagga_standin)) == tag_requests(loaded)

    # 3. German tags: one new request.
    choose(page, page.locator('[data-testid="stSidebar"]'), "Tag language", "de")
    expect(accepted(page)).to_have_text(as_chips(all_de), timeout=TIMEOUT)
    expect(caption(page, "Tagged by")).to_contain_text("language de")
    settle(page)
    german = stats(imagga_standin)
    assert tag_requests(german) == tag_requests(loaded) + 1
    assert_no_secret(page)

    # 4. Remove a chip, save: one feedback POST with the remaining chips as positives.
    removed = all_de[-1]
    accepted(page).locator(f'button[aria-label^="Remove {removed} · "]').click()
    expect(accepted(page)).to_have_count(len(all_de) - 1, timeout=TIMEOUT)
    expect(caption(page, f"{len(all_de) - 1} of")).to_contain_text("edited by hand", timeout=TIMEOUT)
    remaining = chip_names(page)
    assert remaining == [name for name in all_de if name != removed]
    page.get_by_role("button", name="Save feedback").click()
    toasts = page.locator('[data-testid="stToast"]')
    expect(toasts.filter(has_text=re.compile(r"(Saved|Updated) feedback")).first).to_be_visible(timeout=TIMEOUT)
    expect(toasts.filter(has_text="Sent 1 feedback message to Imagga").first).to_be_visible(timeout=TIMEOUT)
    no_traceback(page)
    saved = stats(imagga_standin)
    new_feedback = saved["feedback"][len(german["feedback"]):]
    assert saved["counts"].get("POST /v2/tags/feedback", 0) - german["counts"].get("POST /v2/tags/feedback", 0) == 1
    assert len(new_feedback) == 1 and saved["feedback_replays"] == german["feedback_replays"]
    payload = new_feedback[0]["payload"]
    assert new_feedback[0]["idempotency_key"], "the feedback POST has no Idempotency-Key"
    assert sorted(t["tag"] for t in payload["tags"] if t["feedback"] == "positive") == sorted(remaining)
    assert [t["tag"] for t in payload["tags"] if t["feedback"] == "negative"] == [removed]
    assert payload["language"] == "de"
    assert payload["image_sha256"] == hashlib.sha256(cat_bytes).hexdigest()
    assert_no_secret(page)

    # 5. A categorizer.
    expander = page.locator('[data-testid="stExpander"]').filter(has_text="Categories (Imagga categorizers)")
    expand(page, expander)
    categorizer = CATEGORIZERS[1]
    title = f"{categorizer['title']} ({categorizer['id']})"
    choose(page, expander, "Categorizer", title)
    expect(expander.get_by_role("combobox", name="Categorizer")).to_have_value(title)
    settle(page)
    expander.get_by_role("button", name="Categorize this image").click()
    table = expander.locator('[data-testid="stDataFrame"]')
    expect(table).to_be_visible(timeout=TIMEOUT)
    expect(table.locator("canvas").first).to_be_visible(timeout=TIMEOUT)
    no_traceback(page)
    settle(page)
    categorized = stats(imagga_standin)
    path = f"GET /v2/categories/{categorizer['id']}"
    assert categorized["counts"].get(path, 0) - saved["counts"].get(path, 0) == 1
    assert categorized["live_uploads"] == []  # the upload made for categorizing was deleted
    assert_no_secret(page)

    # 6. Settings: the connection test and the usage metrics.
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Settings", exact=True).click()
    expect(page.get_by_role("heading", name="Settings")).to_be_visible(timeout=TIMEOUT)
    settle(page)
    processed = stats(imagga_standin)["processed"]
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator('[data-testid="stAlert"]').filter(has_text="Connected")).to_be_visible(timeout=TIMEOUT)
    expect(metric(page, "Processed this month")).to_have_text(str(250 + processed))  # the stand-in starts at 250
    expect(metric(page, "Monthly limit")).to_have_text("1000")
    expect(metric(page, "Requests at the same time")).to_have_text("3")
    expect(page.get_by_text("Every feedback message has been delivered to Imagga.")).to_be_visible()
    no_traceback(page)
    assert_no_secret(page)


def test_imagga_auth_failure_is_a_clear_error(imagga_app_server, imagga_standin: Standin, page: Page):
    page.goto(imagga_app_server.url + "/")
    expect(page.get_by_role("heading", name="Tag an image")).to_be_visible(timeout=TIMEOUT)
    wait_for_tags(page, CAT)
    try:
        _control(imagga_standin, "fail", {"mode": "auth", "path": "/v2/tags"})
        choose(page, page, "Sample photo", OTHER)
        alert = page.locator('[data-testid="stAlert"]').filter(has_text="IMAGGA_API_KEY")
        expect(alert).to_be_visible(timeout=TIMEOUT)
        expect(alert).to_contain_text("Imagga API: Imagga rejected the API key/secret (HTTP 401)")
        settle(page)
        no_traceback(page)
        image = page.locator('[data-testid="stImage"]').filter(has_text=OTHER)
        expect(image.locator("img")).to_be_visible()
        expect(accepted(page)).to_have_count(0)
        assert_no_secret(page)
    finally:
        _control(imagga_standin, "reset")

    # The failure was not cached: once Imagga answers again, the same photo is tagged.
    choose(page, page, "Sample photo", CAT)
    wait_for_tags(page, CAT)
    choose(page, page, "Sample photo", OTHER)
    wait_for_tags(page, OTHER)
    no_traceback(page)
    assert_no_secret(page)
