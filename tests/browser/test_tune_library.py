"""An analyst's round trip in a real browser: save feedback on two photos, tune the threshold, find the photos.

Tag page: feedback on cat.jpg and coffee.jpg. Tune: the precision/recall/F1 chart, a recommended
threshold with the too-few-to-trust warning, applied. Library: the streamlit-tags search (type a
tag, press Enter) finds one photo with "All of", both with "Any of".
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.server import CHIP_NAMES, TAGS_READY

pytestmark = pytest.mark.browser

TIMEOUT = 30_000  # ms
PHOTOS = ("cat.jpg", "coffee.jpg")
CHIPS = '[data-testid="stMultiSelect"] span[data-tag]'
CHART = '[data-testid="stVegaLiteChart"]'

_SETTLED = "() => document.querySelectorAll('[data-stale=\"true\"]').length === 0"


def settle(page: Page) -> None:
    page.wait_for_function(_SETTLED, timeout=TIMEOUT)


def no_traceback(page: Page) -> None:
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)


def choose_sample(page: Page, name: str) -> None:
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Sample photo").click()
    page.get_by_role("option", name=name, exact=True).click()
    page.wait_for_function(TAGS_READY, arg=name, timeout=TIMEOUT)


def save_feedback(page: Page, images: int) -> list[str]:
    """Press Save and wait until the store holds ``images`` images (the previous save's toast may
    still be on screen, so the toast alone does not say this save landed)."""
    accepted = page.locator(CHIPS).evaluate_all(CHIP_NAMES)
    page.get_by_role("button", name="Save feedback").click()
    toast = page.locator('[data-testid="stToast"]').filter(has_text=re.compile(r"(Saved|Updated) feedback"))
    expect(toast.first).to_be_visible(timeout=TIMEOUT)
    store = page.locator('[data-testid="stCaptionContainer"]').filter(has_text="Saved so far:")
    expect(store.first).to_contain_text(f"on {images} image{'' if images == 1 else 's'}.", timeout=TIMEOUT)
    no_traceback(page)
    return accepted


def go_to(page: Page, title: str, heading: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", name=heading)).to_be_visible(timeout=TIMEOUT)
    settle(page)


def search_tag(page: Page, tag: str) -> None:
    """Type a tag into the streamlit-tags input and press Enter."""
    frame = page.frame_locator('iframe[title="streamlit_tags.streamlit_tags"]')
    box = frame.locator("input").first
    box.click()
    box.fill(tag)
    box.press("Enter")
    expect(frame.get_by_text(tag, exact=True).first).to_be_visible(timeout=TIMEOUT)


def matches(page: Page):
    captions = page.locator('[data-testid="stCaptionContainer"]')
    return captions.filter(has_text=re.compile(r"records? \(\d+ images?\) match"))


def test_feedback_on_two_photos_then_tune_and_find_them(app_server, page: Page):
    page.goto(app_server.url + "/")
    expect(page.get_by_role("heading", name="Tag an image")).to_be_visible(timeout=TIMEOUT)
    accepted = {}
    for saved, name in enumerate(PHOTOS, start=1):
        choose_sample(page, name)
        accepted[name] = save_feedback(page, saved)
    assert "cat" in accepted["cat.jpg"] and "coffee" in accepted["coffee.jpg"]

    # --- Tune: the curve, the numbers and a recommendation resting on too little feedback ---
    go_to(page, "Tune", "Tune the threshold")
    chart = page.locator(CHART).first
    expect(chart).to_be_visible(timeout=TIMEOUT)
    expect(chart.locator("svg, canvas").first).to_be_visible()
    recommended = page.locator('[data-testid="stMetric"]').filter(has_text="Recommended")
    expect(recommended).to_be_visible()
    value = recommended.locator('[data-testid="stMetricValue"]').inner_text().strip()
    assert value.isdigit(), value
    expect(page.locator('[data-testid="stAlert"]').filter(has_text="Too few to trust")).to_contain_text("2 images")
    expect(page.get_by_role("heading", name="The numbers behind the curve")).to_be_visible()
    if value == "60":  # the threshold in use already: nothing better to apply
        expect(page.get_by_text("Keep the current threshold 60")).to_be_visible()
        expect(page.get_by_role("button", name=re.compile("the default threshold"))).to_have_count(0)
    else:  # asked first, then applied
        page.get_by_role("button", name=f"Make {value} the default threshold…").click()
        page.get_by_role("button", name=f"Yes, make {value} the default").click()
        expect(page.locator('[data-testid="stAlert"]').filter(has_text=f"now starts at threshold {value}")
               ).to_be_visible(timeout=TIMEOUT)
    no_traceback(page)

    # --- Library: both photos listed; the tag search finds them ---
    go_to(page, "Library", "Library")
    expect(matches(page)).to_contain_text("2 records (2 images) match")
    search_tag(page, "cat")
    expect(matches(page)).to_contain_text("1 record (1 image) match", timeout=TIMEOUT)
    grid = page.locator('[data-testid="stDataFrame"]').first
    expect(grid).to_contain_text("cat.jpg", timeout=TIMEOUT)
    expect(grid).not_to_contain_text("coffee.jpg")

    page.locator('[data-testid="stRadio"]').get_by_text("Any of these tags", exact=True).click()
    search_tag(page, "coffee")
    expect(matches(page)).to_contain_text("2 records (2 images) match", timeout=TIMEOUT)
    expect(grid).to_contain_text("coffee.jpg", timeout=TIMEOUT)
    no_traceback(page)
