"""Issue 18 in a real browser: the Review photo large, a reload that keeps the review, the Tune chart, the Library
gallery, Compare's controls beside each other; on a database of the samples (tests/browser/pages_seed.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages_seed import seed
from tests.browser.server import App, start_app

pytestmark = pytest.mark.browser

TIMEOUT = 30_000  # ms
SETTLED = "() => document.querySelectorAll('[data-stale=\"true\"]').length === 0"


@pytest.fixture(scope="module")
def seeded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    workdir: Path = tmp_path_factory.mktemp("judging")
    seed(workdir / "tagging.db")
    app = start_app(workdir)
    yield app
    app.stop()


def settle(page: Page) -> None:
    page.wait_for_function(SETTLED, timeout=TIMEOUT)


def progress(page: Page) -> str:
    return page.locator('[data-testid="stProgress"]').first.inner_text()


def box(page: Page, selector: str) -> dict:
    element = page.locator(selector).first
    expect(element).to_be_visible(timeout=TIMEOUT)
    return element.bounding_box()


def test_review_photo_is_the_large_column_and_a_reload_keeps_the_review(seeded_server: App, page: Page):
    """Items 11 (the photo, not a chart, takes the larger column) and 4 (a reload keeps progress and undo)."""
    page.goto(seeded_server.url + "/review")
    caption = page.locator('[data-testid="stImageCaption"]').first
    expect(caption).to_be_visible(timeout=TIMEOUT)
    settle(page)
    photo = box(page, '[data-testid="stImage"] img')
    tags = box(page, '[data-testid="stMultiSelect"]')
    assert photo["width"] > tags["width"] and photo["width"] >= 500  # about 350 px before
    assert page.locator('[data-testid="stVegaLiteChart"]').count() == 0 or not page.locator(
        '[data-testid="stVegaLiteChart"]').first.is_visible()  # the chart waits in a closed expander
    first = caption.inner_text()
    page.wait_for_timeout(400)  # a glance: keys within 0.2 s of a new card are ignored
    page.get_by_role("button", name="Accept as shown").click()
    expect(page.locator('[data-testid="stProgress"]').first).to_contain_text("Reviewed 1 of", timeout=TIMEOUT)
    settle(page)
    assert "review=" in page.url
    page.reload()
    expect(page.locator('[data-testid="stProgress"]').first).to_contain_text("Reviewed 1 of", timeout=TIMEOUT)
    settle(page)
    undo = page.get_by_role("button", name="Undo")
    expect(undo).to_be_enabled(timeout=TIMEOUT)
    page.wait_for_timeout(400)
    undo.click()
    expect(page.locator('[data-testid="stImageCaption"]').first).to_have_text(first, timeout=TIMEOUT)
    expect(page.locator('[data-testid="stProgress"]').first).to_contain_text("Reviewed 0 of", timeout=TIMEOUT)


def test_tune_chart_is_tall_and_reads_out_on_hover(seeded_server: App, page: Page):
    """Item 9: about 170 px before; a readout of every number at the threshold under the pointer."""
    page.goto(seeded_server.url + "/tune")
    chart = page.locator('[data-testid="stVegaLiteChart"]').first
    expect(chart).to_be_visible(timeout=TIMEOUT)
    settle(page)
    chart.evaluate("e => e.scrollIntoView({block: 'center'})")
    page.wait_for_timeout(500)
    area = chart.bounding_box()
    assert area["height"] >= 400
    page.mouse.move(area["x"] + area["width"] * 0.5, area["y"] + area["height"] * 0.4)
    page.wait_for_timeout(300)
    page.mouse.move(area["x"] + area["width"] * 0.52, area["y"] + area["height"] * 0.4)
    tooltip = page.locator("#vg-tooltip-element")
    expect(tooltip).to_be_visible(timeout=TIMEOUT)
    for word in ("precision", "recall", "F1", "accepted and picked"):
        expect(tooltip).to_contain_text(word)
    assert "threshold" not in chart.locator("svg, canvas").first.evaluate(  # no stray legend title
        "e => [...e.querySelectorAll('.role-legend-title')].map(t => t.textContent).join('|')")


def test_library_gallery_enlarges_an_image(seeded_server: App, page: Page):
    """Item 11: tiles instead of 40 px thumbnails, and an enlarged view."""
    page.goto(seeded_server.url + "/library")
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible(timeout=TIMEOUT)
    page.get_by_text("Gallery", exact=True).click()
    settle(page)
    tile = page.locator('[data-testid="stImage"] img').first
    expect(tile).to_be_visible(timeout=TIMEOUT)
    assert tile.bounding_box()["width"] >= 150
    page.get_by_role("button", name="Enlarge").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible(timeout=TIMEOUT)
    assert dialog.locator("img").first.bounding_box()["width"] >= 300


def test_compare_sides_have_their_controls_side_by_side_not_in_the_sidebar(seeded_server: App, page: Page):
    """Item 13: sliders 80 px wide in the sidebar before."""
    page.goto(seeded_server.url + "/compare")
    expect(page.get_by_text("Only one offline model is installed")).to_be_visible(timeout=TIMEOUT)
    sliders = page.locator('[data-testid="stMain"] [data-testid="stSlider"]')
    expect(sliders.nth(1)).to_be_visible(timeout=TIMEOUT)
    a, b = sliders.nth(0).bounding_box(), sliders.nth(1).bounding_box()
    assert a["width"] >= 150 and b["width"] >= 150 and b["x"] > a["x"] + a["width"]  # two columns
    assert page.locator('[data-testid="stSidebar"] [data-testid="stSlider"]').count() == 0
