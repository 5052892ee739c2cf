"""The Compare page's one-image view in a real browser, against the loopback Imagga stand-in.

An analyst opens the page by its address, sets side B to Imagga's custom tagger, reads the two
taggers' agreement on the cat (worked out here from the stand-in's documented answers), moves side
A's threshold by keyboard (no new request), and, in a new session, finds both answers cached: the
page says so and the stand-in sees no request. No traceback, and the stand-in's key never shows.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.server import ROOT, Standin
from tests.browser.test_imagga_flow import assert_no_secret, expand, metric, settle, stats, tag_requests
from tests.browser.test_tag_flow import no_traceback
from tests.imagga_standin import standin_tags

pytestmark = pytest.mark.browser

TIMEOUT = 30_000  # ms; generous for a loaded 2-core machine
CAT = (ROOT / "samples" / "cat.jpg").read_bytes()
CUSTOM = "custom1"
MIN_TAGS = 3  # the page's default floor on both sides
CHART = '[data-testid="stVegaLiteChart"] svg, [data-testid="stVegaLiteChart"] canvas'


def selected(tagger_id: str | None, threshold: float) -> set[str]:
    """The rule on the stand-in's answer for the cat: all at or above the threshold, at least MIN_TAGS."""
    tags = standin_tags(CAT, tagger_id=tagger_id)
    above = [t["tag"]["en"] for t in tags if t["confidence"] >= threshold]
    return set(above if len(above) >= MIN_TAGS else [t["tag"]["en"] for t in tags[:MIN_TAGS]])


def expect_agreement(page: Page, a: set[str], b: set[str]) -> None:
    expect(metric(page, "Agreement")).to_have_text(f"{len(a & b) / len(a | b):.0%}", timeout=TIMEOUT)
    expect(metric(page, "Selected by both")).to_have_text(str(len(a & b)), timeout=TIMEOUT)
    expect(metric(page, "Only A")).to_have_text(str(len(a - b)), timeout=TIMEOUT)
    expect(metric(page, "Only B")).to_have_text(str(len(b - a)), timeout=TIMEOUT)


def choose_nth(page: Page, label: str, index: int, option: str) -> None:
    """Pick ``option`` in the ``index``-th selectbox labelled ``label`` (A is 0, B is 1)."""
    box = page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').filter(has_text=label).nth(index)
    box.evaluate("e => e.scrollIntoView({block: 'center'})")
    box.click()
    target = page.get_by_role("option", name=option, exact=True)
    expect(target).to_be_in_viewport(timeout=TIMEOUT)
    target.click()


def cost(page: Page, side: str):
    return page.locator('[data-testid="stText"]').filter(has_text=f"Cost of {side}:")


def open_compare(page: Page, url: str) -> None:
    page.goto(url + "/compare")
    expect(page.get_by_role("heading", name="Compare taggers")).to_be_visible(timeout=TIMEOUT)
    expect(metric(page, "Agreement")).to_be_visible(timeout=TIMEOUT)
    expect(page.locator(CHART).first).to_be_visible(timeout=TIMEOUT)
    settle(page)


def test_compare_one_image_in_a_browser(imagga_app_server, imagga_standin: Standin, page: Page):
    before = tag_requests(stats(imagga_standin))

    # 1. By its address: A is Imagga, B the embedded tagger; the cat is tagged once by Imagga.
    open_compare(page, imagga_app_server.url)
    no_traceback(page)
    expect(cost(page, "A")).to_have_text("Cost of A: 1 call made in this session: 1 Imagga request.")
    expect(cost(page, "B")).to_have_text("Cost of B: 1 call made in this session (offline: no request, no cost).")
    assert tag_requests(stats(imagga_standin)) == before + 1

    # 2. Side B becomes Imagga's custom tagger: one more request, and the agreement of two known answers.
    choose_nth(page, "Tagger", 1, "Imagga API")
    settle(page)  # B's Imagga widgets are drawn by that rerun: typing before it ends could be lost
    expander = page.locator('[data-testid="stMain"] [data-testid="stExpander"]').filter(
        has_text="Imagga parameters").nth(1)
    expect(expander).to_be_visible(timeout=TIMEOUT)
    expand(page, expander)
    box = expander.get_by_label("Custom tagger id")
    box.fill(CUSTOM)
    box.press("Enter")
    settle(page)
    expect_agreement(page, selected(None, 60), selected(CUSTOM, 60))
    expect(cost(page, "B")).to_have_text("Cost of B: 1 call made in this session: 1 Imagga request.")
    settle(page)
    asked = tag_requests(stats(imagga_standin))
    assert asked == before + 2

    # 3. Side A's threshold by keyboard: the agreement follows, nothing is asked again.
    thumb = page.locator('[data-testid="stMain"] [data-testid="stSlider"] input[type="range"]').first
    thumb.focus()
    page.keyboard.press("End")
    expect(page.locator('[data-testid="stMain"] [data-testid="stSliderThumbValue"]').first).to_have_text("100")
    expect_agreement(page, selected(None, 100), selected(CUSTOM, 60))
    settle(page)
    no_traceback(page)
    assert tag_requests(stats(imagga_standin)) == asked
    assert_no_secret(page)

    # 4. A new session: both default answers come from the result cache, and the page says so.
    page.reload()
    open_compare(page, imagga_app_server.url)
    expect(cost(page, "A")).to_have_text("Cost of A: Answered from the result cache: no call.")
    expect(cost(page, "B")).to_have_text("Cost of B: Answered from the result cache: no call.")
    assert tag_requests(stats(imagga_standin)) == asked
    no_traceback(page)
    assert_no_secret(page)
