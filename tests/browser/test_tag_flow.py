"""The Tag page in a real browser: sample, upload, bad upload, threshold by keyboard, save, navigation."""

from __future__ import annotations

import ast
import hashlib
import re
import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.server import CHIP_NAMES, ROOT, TAGS_READY

pytestmark = pytest.mark.browser

TIMEOUT = 30_000  # ms; generous for a cold model on a 2-core CI machine
SAMPLES = ROOT / "samples"
DEFAULT_SAMPLE = "cat.jpg"
SOURCE_SAMPLE = "Sample photo"

CHIPS = '[data-testid="stMultiSelect"] span[data-tag]'
CHART = '[data-testid="stVegaLiteChart"] svg, [data-testid="stVegaLiteChart"] canvas'

def wait_for_tags(page: Page, filename: str) -> None:
    page.wait_for_function(TAGS_READY, arg=filename, timeout=TIMEOUT)


def open_tag_page(page: Page, base_url: str) -> None:
    page.goto(base_url + "/")
    expect(page.get_by_role("heading", name="Tag an image")).to_be_visible(timeout=TIMEOUT)
    wait_for_tags(page, DEFAULT_SAMPLE)


def chips(page: Page):
    return page.locator(CHIPS)


def chip(page: Page, name: str):
    return page.locator(f'{CHIPS}[aria-label^="{name} · "]')


def caption(page: Page, starts_with: str):
    return page.locator('[data-testid="stCaptionContainer"]').filter(has_text=re.compile("^" + re.escape(starts_with)))


def no_traceback(page: Page) -> None:
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)


def choose_upload(page: Page) -> None:
    page.locator('[data-testid="stRadio"]').get_by_text("Upload", exact=True).click()
    expect(page.locator('[data-testid="stFileUploader"]')).to_be_visible(timeout=TIMEOUT)
    expect(page.locator('[data-testid="stAlert"]').filter(has_text="Choose an image file")).to_be_visible()
    expect(chips(page)).to_have_count(0)


def upload(page: Page, path: Path) -> None:
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(path))


def router_page_titles() -> list[str]:
    """The titles of the st.Page(...) calls in dashboard.py, in source order."""
    calls = [
        node for node in ast.walk(ast.parse((ROOT / "dashboard.py").read_text()))
        if isinstance(node, ast.Call)
        and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) == "Page"
    ]
    titles = []
    for call in sorted(calls, key=lambda n: (n.lineno, n.col_offset)):
        for kw in call.keywords:
            if kw.arg == "title" and isinstance(kw.value, ast.Constant):
                titles.append(kw.value.value)
    return titles


def sidebar_nav_labels(page: Page) -> list[str]:
    links = page.locator('[data-testid="stSidebarNav"] [data-testid="stSidebarNavLink"]')
    return [text.strip() for text in links.locator('[data-testid="stMarkdownContainer"]').all_inner_texts()]


def expected_nav_labels() -> list[str]:
    titles = router_page_titles()
    return titles if len(titles) > 1 else []  # Streamlit hides the navigation of a one-page app


# --- tests ------------------------------------------------------------------------------------


def test_root_shows_tagged_sample_and_chart(app_server, page: Page):
    open_tag_page(page, app_server.url)
    expect(chips(page).first).to_be_visible()
    assert chips(page).count() >= 3  # the rule's floor of top tags
    expect(page.locator(CHART).first).to_be_visible()
    expect(caption(page, "Tagged by")).to_contain_text("Embedded tagger (offline)")
    no_traceback(page)


def test_upload_cat(app_server, page: Page):
    open_tag_page(page, app_server.url)
    choose_upload(page)
    upload(page, SAMPLES / "cat.jpg")
    wait_for_tags(page, "cat.jpg")
    expect(chip(page, "cat")).to_be_visible()
    expect(page.locator(CHART).first).to_be_visible()
    no_traceback(page)


def test_upload_text_file_named_jpg_is_a_clear_error(app_server, page: Page, tmp_path: Path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("Shopping list: milk, eggs, coffee.\n" * 20)
    open_tag_page(page, app_server.url)
    choose_upload(page)
    upload(page, fake)
    alert = page.locator('[data-testid="stAlert"]').filter(has_text="not an image")
    expect(alert).to_be_visible(timeout=TIMEOUT)
    expect(alert).to_contain_text("notes.jpg")
    no_traceback(page)
    expect(chips(page)).to_have_count(0)
    expect(page.locator('[data-testid="stVegaLiteChart"]')).to_have_count(0)


def test_threshold_slider_by_keyboard(app_server, page: Page):
    open_tag_page(page, app_server.url)
    total = int(re.search(r"(\d+) tags", caption(page, "Tagged by").inner_text()).group(1))
    assert total > 3
    thumb = page.locator('[data-testid="stSlider"] input[type="range"]')
    thumb_value = page.locator('[data-testid="stSliderThumbValue"]')

    thumb.focus()
    page.keyboard.press("End")
    expect(thumb_value).to_have_text("100")
    expect(caption(page, "3 of")).to_contain_text(f"3 of {total} tags accepted", timeout=TIMEOUT)
    expect(chips(page)).to_have_count(3)  # nothing reaches 100: the floor of the top 3 remains

    thumb.focus()
    page.keyboard.press("Home")
    expect(thumb_value).to_have_text("0")
    expect(caption(page, f"{total} of")).to_contain_text(f"{total} of {total} tags accepted", timeout=TIMEOUT)
    expect(chips(page)).to_have_count(total)

    thumb.focus()
    page.keyboard.press("ArrowRight")
    expect(thumb_value).to_have_text("1")
    no_traceback(page)


def test_save_feedback_writes_the_database(app_server, page: Page):
    image_key = hashlib.sha256((SAMPLES / DEFAULT_SAMPLE).read_bytes()).hexdigest()
    open_tag_page(page, app_server.url)
    accepted = sorted(chips(page).evaluate_all(CHIP_NAMES))

    page.get_by_role("button", name="Save feedback").click()
    toast = page.locator('[data-testid="stToast"]').filter(has_text=re.compile(r"(Saved|Updated) feedback"))
    expect(toast).to_be_visible(timeout=TIMEOUT)
    no_traceback(page)

    with sqlite3.connect(app_server.db_path) as conn:
        rows = conn.execute(
            "SELECT tag, accepted, backend FROM feedback WHERE image_key = ?", (image_key,)
        ).fetchall()
        filename = conn.execute("SELECT filename FROM images WHERE image_key = ?", (image_key,)).fetchone()
    conn.close()
    assert rows, "no feedback rows were written"
    assert filename == (DEFAULT_SAMPLE,)
    assert sorted(tag for tag, ok, _ in rows if ok) == accepted
    assert {backend for *_, backend in rows} == {"embedded"}


def test_deep_link_after_entry_script_ran_shows_router_pages(app_server, page: Page):
    open_tag_page(page, app_server.url)  # the entry script has run at least once in this server
    page.goto(app_server.url + "/tag")
    wait_for_tags(page, DEFAULT_SAMPLE)
    assert sidebar_nav_labels(page) == expected_nav_labels()
    assert page.title() == "Image tagging dashboard"


def test_first_request_deep_link_shows_router_pages(fresh_app_server, page: Page):
    page.goto(fresh_app_server.url + "/tag")
    wait_for_tags(page, DEFAULT_SAMPLE)
    observed = (sidebar_nav_labels(page), page.title())
    assert observed == (expected_nav_labels(), "Image tagging dashboard")


def test_imagga_backend_smoke(imagga_app_server, page: Page):
    open_tag_page(page, imagga_app_server.url)
    expect(caption(page, "Tagged by")).to_contain_text("Imagga API")
    no_traceback(page)


def test_first_request_deep_link_to_another_page_lands_there(fresh_app_server, page: Page):
    page.goto(fresh_app_server.url + "/settings")
    expect(page.get_by_role("heading", name="Settings")).to_be_visible(timeout=TIMEOUT)
    assert sidebar_nav_labels(page) == expected_nav_labels()
    assert page.url.rstrip("/").endswith("/settings")
    no_traceback(page)


def test_threshold_survives_switching_the_image_source(app_server, page: Page):
    """The slider disappears while Upload waits for a file; back on the sample it shows the same value."""
    open_tag_page(page, app_server.url)
    thumb = page.locator('[data-testid="stSlider"] input[type="range"]')
    thumb_value = page.locator('[data-testid="stSliderThumbValue"]')
    expect(thumb_value).to_have_text("60")
    at_default = sorted(chips(page).evaluate_all(CHIP_NAMES))

    def following(value: int):
        return page.locator('[data-testid="stCaptionContainer"]').filter(has_text=f"following the rule: ≥ {value} ")

    # One key at a time, each run finished before the next key: quicker presses race the
    # server's own update of the selection (a stale chip list comes back from the browser as
    # an edit, "edited by hand"), which is not what this test is about.
    thumb.focus()
    page.keyboard.press("Home")
    expect(thumb_value).to_have_text("0")
    expect(following(0)).to_be_visible(timeout=TIMEOUT)
    for value in (1, 2, 3):
        page.keyboard.press("ArrowRight")
        expect(thumb_value).to_have_text(str(value))
        expect(following(value)).to_be_visible(timeout=TIMEOUT)
    wait_for_tags(page, DEFAULT_SAMPLE)
    at_three = chips(page).evaluate_all(CHIP_NAMES)
    assert sorted(at_three) != at_default, "pick a threshold whose chips differ from the default's"

    choose_upload(page)
    expect(page.locator('[data-testid="stSlider"]')).to_have_count(0)
    page.locator('[data-testid="stRadio"]').get_by_text(SOURCE_SAMPLE, exact=True).click()
    wait_for_tags(page, DEFAULT_SAMPLE)

    expect(thumb_value).to_have_text("3")
    expect(thumb).to_have_value("3")
    expect(following(3)).to_be_visible()
    assert chips(page).evaluate_all(CHIP_NAMES) == at_three
    no_traceback(page)


def test_quick_slider_moves_keep_following_the_rule(app_server, page: Page):
    """Keys pressed faster than the page redraws must not count as editing the selection."""
    open_tag_page(page, app_server.url)
    thumb = page.locator('[data-testid="stSlider"] input[type="range"]')
    thumb.focus()
    page.keyboard.press("Home")
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    # Every press counts, even when a rerun lands between them (the page no longer writes the slider's value
    # back to the browser when it has not changed: ui.state.bind), and the rule follows the last one.
    value = page.locator('[data-testid="stSliderThumbValue"]')
    expect(value).to_have_text("5")
    rule = page.locator('[data-testid="stCaptionContainer"]').filter(has_text="following the rule: ≥ 5 ")
    expect(rule).to_be_visible(timeout=TIMEOUT)
    wait_for_tags(page, DEFAULT_SAMPLE)
    expect(value).to_have_text("5")
    expect(page.locator('[data-testid="stCaptionContainer"]').filter(has_text="edited by hand")).to_have_count(0)
    no_traceback(page)
