"""The Tag page's Analysis view in a real browser: the overlay, its toggles and a crop download, offline."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.server import TAGS_READY

pytestmark = pytest.mark.browser

TIMEOUT = 90_000  # a cold start loads the tagger and the text reader; CI machines are busy


def test_offline_analysis_draws_boxes_and_downloads_a_crop(page, app_server):
    page.goto(app_server.url + "/")
    page.wait_for_function(TAGS_READY, arg="cat.jpg", timeout=TIMEOUT)
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Sample photo")
    box.get_by_role("combobox").click()
    page.get_by_role("option", name="astronaut.jpg", exact=True).click()
    page.wait_for_function(TAGS_READY, arg="astronaut.jpg", timeout=TIMEOUT)
    expect(page.get_by_role("heading", name="Analysis")).to_be_visible(timeout=TIMEOUT)
    page.get_by_text("Show faces, colours, text and crops").click()  # shown on request
    faces = page.locator('[data-testid="stCheckbox"]').filter(has_text="Faces (1)")
    expect(faces).to_be_visible(timeout=TIMEOUT)
    overlay = page.locator('[data-testid="stImage"]').filter(has_text="Faces yellow")
    expect(overlay).to_be_visible()
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    page.get_by_role("tab", name="Crops").click()
    with page.expect_download(timeout=TIMEOUT) as download:
        page.get_by_role("button", name="Download the 4:5 crop").click()
    data = open(download.value.path(), "rb").read()
    width, height = Image.open(io.BytesIO(data)).size
    assert height == 512 and abs(width / height - 4 / 5) < 0.01  # the whole height of the 512 px portrait
