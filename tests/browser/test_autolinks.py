"""No link in a real browser from a file name carrying a web address or an e-mail address (issue 20).

Streamlit's Markdown (remark-gfm) autolinks ``www.`` names and e-mail addresses even after
backslash escapes; ``ui.text.literal`` breaks them with an invisible joiner. Here Chromium shows
the Tag page caption, the Tag page error and the Batch page error for such names, and the page
must hold no ``<a>`` made from them while reading exactly the name.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.server import ROOT, TAGS_READY

pytestmark = pytest.mark.browser

TIMEOUT = 30_000  # ms
SAMPLES = ROOT / "samples"
WWW = "see www.evil.example now.jpg"
MAIL = "mail x@example.invalid.jpg"
# Links a name could make: to the names' hosts, mailto:, or any address outside the app.
FOREIGN_LINKS = 'a[href*="evil.example"], a[href*="example.invalid"], a[href^="mailto:"], a[href*="127.0.0.1:9"]'
_READ = "el => el.innerText.replace(/\\u2060/g, '')"  # the joiner is invisible: what a person reads


# server.TAGS_READY, reading captions as a person does (without the invisible joiners).
READY = TAGS_READY.replace("c.innerText.startsWith", "c.innerText.replace(/\\u2060/g, '').startsWith")


def _no_foreign_link(page: Page) -> None:
    expect(page.locator(FOREIGN_LINKS)).to_have_count(0)
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)


def _open(page: Page, url: str) -> None:
    page.goto(url + "/")
    expect(page.get_by_role("heading", name="Tag an image")).to_be_visible(timeout=TIMEOUT)
    page.wait_for_function(TAGS_READY, arg="cat.jpg", timeout=TIMEOUT)
    page.locator('[data-testid="stRadio"]').get_by_text("Upload", exact=True).click()
    expect(page.locator('[data-testid="stFileUploader"]')).to_be_visible(timeout=TIMEOUT)


def test_tag_caption_library_confirmation_and_tag_error_hold_no_link(app_server, page: Page, tmp_path: Path):
    photo = tmp_path / WWW
    photo.write_bytes((SAMPLES / "cat.jpg").read_bytes())
    _open(page, app_server.url)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(photo))
    assert READY != TAGS_READY
    page.wait_for_function(READY, arg=WWW, timeout=TIMEOUT)
    caption = page.locator('[data-testid="stImageCaption"]').filter(has_text="evil").first
    expect(caption).to_be_visible(timeout=TIMEOUT)
    assert caption.evaluate(_READ).startswith(WWW)
    _no_foreign_link(page)

    # saved, then about to be deleted from the Library: the confirmation names it
    page.get_by_role("button", name="Save feedback").click()
    expect(page.locator('[data-testid="stToast"]').filter(has_text="feedback").first).to_be_visible(timeout=TIMEOUT)
    page.goto(app_server.url + "/library")
    expect(page.get_by_role("heading", name="Library")).to_be_visible(timeout=TIMEOUT)
    page.get_by_text("Gallery", exact=True).click()  # each tile has its own Delete…
    page.get_by_role("button", name="Delete…").first.click()
    confirm = page.locator('[data-testid="stAlert"]').filter(has_text="cannot be undone")
    expect(confirm).to_be_visible(timeout=TIMEOUT)
    assert WWW in confirm.first.evaluate(_READ)
    _no_foreign_link(page)
    _open(page, app_server.url)

    notes = tmp_path / MAIL
    notes.write_text("not an image\n" * 20)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(notes))
    alert = page.locator('[data-testid="stAlert"]').filter(has_text="example.invalid")
    expect(alert).to_be_visible(timeout=TIMEOUT)
    assert MAIL in alert.first.evaluate(_READ)
    _no_foreign_link(page)


def test_batch_error_box_holds_no_link_from_the_archive_name(app_server, page: Page, tmp_path: Path):
    archive = tmp_path / "see www.evil.example or x@example.invalid.zip"
    archive.write_bytes(b"PK\x03\x04 not really a zip")
    page.goto(app_server.url + "/batch")
    expect(page.get_by_role("heading", name="Tag a batch of images")).to_be_visible(timeout=TIMEOUT)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(archive))
    alert = page.locator('[data-testid="stAlert"]').filter(has_text="not a zip archive")
    expect(alert).to_be_visible(timeout=TIMEOUT)
    assert archive.name in alert.first.evaluate(_READ)
    _no_foreign_link(page)
