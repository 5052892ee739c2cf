"""The review queue in a real browser: batch-tag, save, review from the keyboard, and Tune counts exactly that.

Against the loopback Imagga stand-in (its counters prove that reviewing calls nothing): the Batch
page tags four sample photos and saves them to the library as automatic verdicts; "Review them now"
opens the Review page on that batch; the analyst works only with the keyboard (2 toggles the second
tag, A accepts as shown, X rejects all, S skips, B goes back, U undoes) until the queue is empty.
The Tune page then rests on exactly those verdicts: four images, every suggested tag, as many
accepted as were shown accepted when A was pressed. Imagga got no tagging request during the review
and no feedback either (the reviewed verdicts wait in the outbox; sending is the Settings page's).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.server import ROOT, Standin
from tests.browser.test_imagga_flow import stats, tag_requests
from tests.imagga_standin import standin_tags

pytestmark = pytest.mark.browser

TIMEOUT = 30_000  # ms
PHOTOS = ("cat.jpg", "coffee.jpg", "astronaut.jpg", "rocket.jpg")
SAMPLES = ROOT / "samples"
GLANCE_MS = 400
SETTLED = "() => document.querySelectorAll('[data-stale=\"true\"]').length === 0"


def settle(page: Page) -> None:
    page.wait_for_function(SETTLED, timeout=TIMEOUT)


def no_traceback(page: Page) -> None:
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)


def shown(page: Page) -> str:
    """The file name under the card's image ("" when no card is shown)."""
    text = page.evaluate("() => { const c = document.querySelector('[data-testid=\"stImageCaption\"]');"
                         " return c ? c.innerText : ''; }")
    return text.split(" ")[0]


def chips(page: Page) -> list[str]:
    box = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Accepted tags")
    return box.locator("span[data-tag]").evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")


CHIPS = ("() => [...document.querySelectorAll('[data-testid=\"stMultiSelect\"] span[data-tag]')]"
         ".map(e => e.getAttribute('aria-label')).join('|')")


def glance(page: Page) -> None:
    """A reviewer looks at a new card before pressing a key (keys within 0.2 s of a new card are ignored)."""
    page.wait_for_timeout(GLANCE_MS)


def toggle(page: Page, key: str) -> None:
    """Press a number key; wait until the accepted tags have changed."""
    glance(page)
    before = page.evaluate(CHIPS)
    page.keyboard.press(key)
    page.wait_for_function(f"(before) => ({CHIPS})() !== before", arg=before, timeout=TIMEOUT)
    settle(page)


def press(page: Page, key: str, *, next_card: bool = True) -> None:
    """Press a shortcut; wait until the panel has redrawn (with another card, if ``next_card``)."""
    glance(page)
    before = shown(page)
    page.keyboard.press(key)
    if next_card:
        page.wait_for_function(
            "(before) => { const c = document.querySelector('[data-testid=\"stImageCaption\"]');"
            " return (c ? c.innerText.split(' ')[0] : '') !== before; }", arg=before, timeout=TIMEOUT)
    settle(page)
    no_traceback(page)


def test_batch_then_keyboard_review_then_tune_counts_exactly_the_reviews(imagga_app_server, imagga_standin: Standin,
                                                                         page: Page):
    # --- Batch: tag four photos with Imagga (the stand-in), save them as automatic verdicts ---
    page.goto(imagga_app_server.url + "/batch")
    expect(page.get_by_role("heading", name="Tag a batch of images")).to_be_visible(timeout=TIMEOUT)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        [str(SAMPLES / name) for name in PHOTOS])
    start = page.get_by_role("button", name=f"Tag {len(PHOTOS)} images")
    expect(start).to_be_enabled(timeout=TIMEOUT)
    start.click()
    expect(page.get_by_role("heading", name=re.compile(r"Last batch: 4 images"))).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Save 4 images to the library").click()
    expect(page.locator('[data-testid="stAlert"]').filter(has_text="awaiting your review")).to_be_visible(
        timeout=TIMEOUT)
    settle(page)
    tagged = tag_requests(stats(imagga_standin))
    assert tagged == len(PHOTOS)

    # --- Review them now: the Review page on that batch ---
    page.get_by_role("button", name="Review them now").click()
    expect(page.get_by_role("heading", name="Review", exact=True)).to_be_visible(timeout=TIMEOUT)
    expect(page.locator('[data-testid="stImageCaption"]').first).to_be_visible(timeout=TIMEOUT)
    settle(page)
    batch_box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text="Batch")
    expect(batch_box.get_by_role("combobox")).to_have_value(re.compile(r" UTC · 4 images · session-"))
    expect(page.locator('[data-testid="stProgress"]')).to_contain_text("Reviewed 0 of 4")
    page.get_by_role("heading", name="Review", exact=True).click()  # keys go to the page, not an input

    accepted: dict[str, list[str]] = {}
    first = shown(page)
    before = chips(page)
    toggle(page, "2")  # the second tag changes its state
    toggled = chips(page)
    assert set(toggled) ^ set(before) and len(set(toggled) ^ set(before)) == 1
    accepted[first] = toggled
    press(page, "a")

    second = shown(page)
    accepted[second] = []
    press(page, "x")

    third = shown(page)
    press(page, "s")  # skipped: it stays in the queue
    fourth = shown(page)
    press(page, "b")
    assert shown(page) == third
    accepted[third] = chips(page)
    press(page, "a")
    assert shown(page) == fourth
    press(page, "a")  # then undone: the fourth comes back with the rule's selection
    expect(page.get_by_text("Nothing left to review with these filters.")).to_be_visible(timeout=TIMEOUT)
    press(page, "u")
    assert shown(page) == fourth
    expect(page.locator('[data-testid="stProgress"]')).to_contain_text("Reviewed 3 of 4")
    accepted[fourth] = chips(page)
    press(page, "a", next_card=False)
    expect(page.get_by_text("Nothing left to review with these filters.")).to_be_visible(timeout=TIMEOUT)
    expect(page.locator('[data-testid="stProgress"]')).to_contain_text("Reviewed 4 of 4")
    assert sorted(accepted) == sorted(PHOTOS)

    # --- no backend call during the review; the reviewed Imagga verdicts wait in the outbox ---
    after = stats(imagga_standin)
    assert tag_requests(after) == tagged
    assert not any(key.endswith("/feedback") for key in after["counts"])

    # --- Tune rests on exactly those verdicts ---
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Tune", exact=True).click()
    expect(page.get_by_role("heading", name="Tune the threshold")).to_be_visible(timeout=TIMEOUT)
    settle(page)
    suggested = {name: len(standin_tags((SAMPLES / name).read_bytes(), ("en",))) for name in PHOTOS}
    verdicts = sum(suggested.values())
    yes = sum(len(names) for names in accepted.values())
    summary = page.locator('[data-testid="stAlert"]').filter(has_text="Based on")
    expect(summary).to_contain_text(
        f"Based on 4 images and {verdicts} tag verdicts ({yes} accepted, {verdicts - yes} rejected)")
    expect(page.get_by_text("await review")).to_have_count(0)
    no_traceback(page)
