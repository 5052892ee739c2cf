"""Issue 18 in a real browser, the Tag and Batch pages: readable charts, confidences and the floor's picks shown,
chips that wrap, a reload that keeps the work, a first-visit explanation, slider reruns scoped to a fragment and
an upload cap stated and checked to the byte."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.server import ROOT, TAGS_READY
from tests.browser.test_tag_flow import CHIPS, TIMEOUT, caption, chips, no_traceback, wait_for_tags

pytestmark = pytest.mark.browser

SAMPLES = ROOT / "samples"
PHONE = {"width": 390, "height": 844}
BARS = '[data-testid="stVegaLiteChart"] path[aria-roledescription="bar"]'
Y_LABELS = '[data-testid="stVegaLiteChart"] g[aria-label^="Y-axis"] g.role-axis-label text'
VALUES = '[data-testid="stVegaLiteChart"] g.mark-text.role-mark text'
SLIDER = '[data-testid="stSlider"] input[type="range"]'


def open_sample(page: Page, base_url: str, name: str, lowest_threshold: bool = False) -> None:
    """The Tag page on sample ``name``, chosen as an analyst would (and the threshold moved to 0 by keyboard)."""
    page.goto(base_url + "/")
    wait_for_tags(page, "cat.jpg")
    if name != "cat.jpg":
        box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Sample photo")
        box.get_by_role("combobox").click()
        page.get_by_role("option", name=name, exact=True).click()
        wait_for_tags(page, name)
    if lowest_threshold:
        page.locator(SLIDER).focus()
        page.keyboard.press("Home")
        expect(page.locator('[data-testid="stSliderThumbValue"]')).to_have_text("0")
        expect(caption(page, "Tagged by")).to_be_visible()
        page.wait_for_timeout(300)
        wait_for_tags(page, name)


def boxes(page: Page, selector: str) -> list[dict]:
    return [page.locator(selector).nth(i).bounding_box() for i in range(page.locator(selector).count())]


def svg_texts(page: Page, selector: str) -> list[str]:
    return page.locator(selector).evaluate_all("els => els.map(e => e.textContent)")


def visible_count(page: Page, selector: str) -> int:
    """How many of the SVG elements are drawn (Vega hides overlapping axis labels with opacity 0)."""
    return page.locator(selector).evaluate_all(
        "els => els.filter(e => e.getAttribute('opacity') !== '0' && getComputedStyle(e).opacity !== '0').length")


def chip_labels(page: Page) -> list[str]:
    return chips(page).evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")


def settle(page: Page, name: str) -> None:
    page.wait_for_function(TAGS_READY, arg=name, timeout=TIMEOUT)


# --- item 1: the Tag page's chart, readable with few tags ---------------------------------------------------


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_few_tags_get_tall_bars_separate_labels_and_their_values(imagga_app_server, page: Page, viewport):
    # Five tags from the Imagga stand-in (its "Limit" parameter): a constructed answer, whatever the offline model.
    if viewport:
        page.set_viewport_size(viewport)
    open_sample(page, imagga_app_server.url, "cat.jpg")
    if viewport:  # the sidebar starts collapsed on a phone
        page.locator('[data-testid="stExpandSidebarButton"], [data-testid="stSidebarCollapsedControl"] button'
                     ).first.click()
    page.locator('[data-testid="stExpander"]').filter(has_text="Imagga parameters").locator("summary").click()
    limit = page.get_by_label("Limit (0 = all tags)")
    limit.fill("5")
    limit.press("Enter")
    expect(caption(page, "Tagged by")).to_contain_text("· 5 tags", timeout=TIMEOUT)
    if viewport:
        page.keyboard.press("Escape")
        page.locator('[data-testid="stSidebarCollapseButton"] button, [data-testid="stSidebarCollapseButton"]'
                     ).first.click()
    settle(page, "cat.jpg")
    total = int(re.search(r"(\d+) tags", caption(page, "Tagged by").inner_text()).group(1))
    assert total == 5
    bars = boxes(page, BARS)
    assert len(bars) == total
    assert min(b["height"] for b in bars) >= 16, bars  # was 2-3 px
    labels = boxes(page, Y_LABELS)
    assert len(labels) == visible_count(page, Y_LABELS) == total
    for upper, lower in zip(labels, labels[1:], strict=False):
        assert upper["y"] + upper["height"] <= lower["y"] + 1, "tag labels printed over each other"
    values = svg_texts(page, VALUES)
    shown = [int(v) for v in values if v.strip().isdigit()]
    assert len(shown) == total  # the value at each bar's end
    no_traceback(page)


# --- item 2: the Batch page's tag-frequency chart labels every bar ------------------------------------------


def quarters(folder: Path) -> list[Path]:
    """The four quarters of each sample photo, as JPEG files: enough different tags for a full chart (30 bars)."""
    from PIL import Image

    paths = []
    for sample in sorted(SAMPLES.glob("*.jpg")):
        with Image.open(sample) as image:
            w, h = image.size
            for i, box in enumerate([(0, 0, w // 2, h // 2), (w // 2, 0, w, h // 2), (0, h // 2, w // 2, h),
                                     (w // 2, h // 2, w, h)]):
                paths.append(folder / f"{sample.stem}-{i}.jpg")
                image.convert("RGB").crop(box).save(paths[-1], "JPEG")
    return paths


def test_batch_frequency_chart_labels_every_bar(app_server, page: Page, tmp_path: Path):
    page.goto(app_server.url + "/batch")
    expect(page.get_by_role("heading", name="Tag a batch of images")).to_be_visible(timeout=TIMEOUT)
    photos = quarters(tmp_path)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files([str(p) for p in photos])
    page.get_by_role("button", name=f"Tag {len(photos)} images").click()
    expect(page.get_by_role("heading", name="How often each tag is selected")).to_be_visible(timeout=60_000)
    page.locator(SLIDER).focus()
    page.keyboard.press("Home")  # every tag of every image selected
    expect(page.locator('[data-testid="stSliderThumbValue"]')).to_have_text("0")
    page.wait_for_timeout(500)
    page.wait_for_function("() => document.querySelectorAll('[data-stale=\"true\"]').length === 0")
    page.locator('[data-testid="stVegaLiteChart"]').last.scroll_into_view_if_needed()  # drawn when in view
    expect(page.locator(BARS).first).to_be_attached(timeout=TIMEOUT)
    bars, labels = page.locator(BARS).count(), visible_count(page, Y_LABELS)
    assert bars == 30  # the chart's most frequent 30
    assert labels == bars  # was every other one
    no_traceback(page)

    # the download is noted in the audit trail, as the Library's exports are
    from tagging import auth
    from tagging.store import Store

    with page.expect_download(timeout=TIMEOUT) as download:
        page.get_by_role("button", name="Download CSV").click()
    with open(download.value.path(), encoding="utf-8", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(photos)
    noted = {"what": "batch CSV", "rows": len(photos)}
    store = Store(str(app_server.db_path))
    try:
        for _ in range(150):  # the click's callback writes the note on the server while the file downloads
            exports = [e.detail for e in auth.audit_entries(store, action="export")]
            if noted in exports:
                break
            page.wait_for_timeout(200)
    finally:
        store.close()
    assert noted in exports
    no_traceback(page)


# --- item 4: a reload keeps the work ----------------------------------------------------------------------


def test_a_reload_keeps_the_image_threshold_floor_and_edits(app_server, page: Page):
    open_sample(page, app_server.url, "cat.jpg")
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Sample photo")
    box.get_by_role("combobox").click()
    page.get_by_role("option", name="rocket.jpg", exact=True).click()
    settle(page, "rocket.jpg")
    thumb = page.locator(SLIDER)
    thumb.focus()
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    expect(page.locator('[data-testid="stSliderThumbValue"]')).to_have_text("57")
    expect(caption(page, "3 of")).to_contain_text("following the rule: ≥ 57", timeout=TIMEOUT)
    removed = chip_labels(page)[-1]
    page.locator(f'{CHIPS}[aria-label="{removed}"] button').click()
    expect(caption(page, "2 of")).to_contain_text("edited by hand", timeout=TIMEOUT)
    settle(page, "rocket.jpg")
    kept = chip_labels(page)

    page.reload()
    settle(page, "rocket.jpg")
    expect(page.locator('[data-testid="stSliderThumbValue"]')).to_have_text("57")
    expect(caption(page, "2 of")).to_contain_text("edited by hand")
    assert chip_labels(page) == kept
    no_traceback(page)


def test_a_reload_brings_the_last_upload_back(app_server, page: Page, tmp_path: Path):
    mine = tmp_path / "my-coffee.jpg"
    mine.write_bytes((SAMPLES / "coffee.jpg").read_bytes())
    open_sample(page, app_server.url, "cat.jpg")
    page.locator('[data-testid="stRadio"]').get_by_text("Upload", exact=True).click()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(mine))
    settle(page, "my-coffee.jpg")
    page.reload()
    settle(page, "my-coffee.jpg")
    expect(page.locator('[data-testid="stCaptionContainer"]').filter(has_text="Showing your last upload")
           ).to_be_visible()
    no_traceback(page)


def test_a_batch_reloaded_mid_run_shows_the_finished_result(app_server, page: Page):
    page.goto(app_server.url + "/batch")
    expect(page.get_by_role("heading", name="Tag a batch of images")).to_be_visible(timeout=TIMEOUT)
    photos = sorted(p for p in SAMPLES.glob("*.jpg"))
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files([str(p) for p in photos])
    page.get_by_role("button", name=f"Tag {len(photos)} images").click()
    page.wait_for_url(re.compile(r"batch=[0-9a-f]{64}"), timeout=TIMEOUT)
    page.reload()
    expect(page.get_by_role("heading", name=f"Last batch: {len(photos)} images")).to_be_visible(timeout=60_000)
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible()
    no_traceback(page)


# --- item 7: confidences beside each tag, the floor's picks marked ------------------------------------------


def test_chips_show_confidences_and_floor_picks_are_marked(app_server, page: Page):
    open_sample(page, app_server.url, "rocket.jpg")  # nothing reaches the default 60: the floor picks all 3
    labels = chip_labels(page)
    assert labels and all(re.fullmatch(r".+ · \d{1,3}", label) for label in labels), labels
    outline = chips(page).first.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline == "dashed"
    legend = svg_texts(page, '[data-testid="stVegaLiteChart"] g.role-legend text')
    assert any("picked by the floor" in text for text in legend), legend
    expect(caption(page, "Below the threshold")).to_be_visible()
    no_traceback(page)


# --- item 12: the accepted-tags box wraps -----------------------------------------------------------------------


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_every_accepted_chip_is_visible(app_server, page: Page, viewport):
    if viewport:
        page.set_viewport_size(viewport)
    open_sample(page, app_server.url, "cat.jpg", lowest_threshold=True)  # all nine tags accepted
    box = page.locator('[data-testid="stMultiSelectTagsContainer"]').first.bounding_box()
    chip_boxes = boxes(page, CHIPS)
    assert len(chip_boxes) >= 8
    for chip in chip_boxes:
        assert chip["x"] >= box["x"] - 1 and chip["x"] + chip["width"] <= box["x"] + box["width"] + 1, (chip, box)
        assert chip["y"] >= box["y"] - 1 and chip["y"] + chip["height"] <= box["y"] + box["height"] + 1, (chip, box)
    no_traceback(page)


# --- item 14: a first-visit explanation, plain counts -----------------------------------------------------------


def test_first_visit_explains_the_rule_and_counts_read_right(app_server, page: Page):
    open_sample(page, app_server.url, "coffee.jpg")
    expect(page.get_by_text("How tags are picked.")).to_be_visible()
    page.get_by_role("button", name="Got it").click()
    expect(page.get_by_text("How tags are picked.")).to_have_count(0, timeout=TIMEOUT)
    page.wait_for_function("() => document.cookie.includes('tagging_intro_seen=1')", timeout=TIMEOUT)
    page.reload()  # a new session: this browser has seen it
    settle(page, "coffee.jpg")
    expect(page.get_by_text("How tags are picked.")).to_have_count(0)
    settle(page, "coffee.jpg")
    expect(caption(page, "Tagged by")).to_contain_text(re.compile(r"· \d+ tags? ·"))
    page.get_by_role("button", name="Save feedback").click()
    expect(caption(page, "Saved so far")).to_contain_text(re.compile(r"on \d+ images?\.$"), timeout=TIMEOUT)
    text = page.locator('[data-testid="stMain"]').inner_text()
    assert "None" not in text and " 1 images" not in text and "At least" not in text
    no_traceback(page)


# --- item 15: a slider key reruns only the editor; "Review them now" near the top -----------------------------


def test_a_slider_key_reruns_only_the_editor_fragment(app_server, page: Page):
    from streamlit.proto.BackMsg_pb2 import BackMsg

    sent: list[BackMsg] = []

    def watch(ws) -> None:
        ws.on("framesent", lambda payload: sent.append(BackMsg.FromString(payload))
              if isinstance(payload, bytes) else None)

    page.on("websocket", watch)
    open_sample(page, app_server.url, "cat.jpg")
    sent.clear()
    page.locator(SLIDER).focus()
    page.keyboard.press("ArrowRight")
    expect(caption(page, "6 of")).to_contain_text("≥ 61", timeout=TIMEOUT)
    reruns = [m.rerun_script for m in sent if m.WhichOneof("type") == "rerun_script"]
    assert reruns, "the slider sent no rerun"
    assert all(r.fragment_id for r in reruns), "a slider key reran the whole page"
    no_traceback(page)


def test_review_them_now_is_offered_above_the_results(app_server, page: Page):
    page.goto(app_server.url + "/batch")
    expect(page.get_by_role("heading", name="Tag a batch of images")).to_be_visible(timeout=TIMEOUT)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        [str(SAMPLES / "cat.jpg"), str(SAMPLES / "coffee.jpg")])
    page.get_by_role("button", name="Tag 2 images").click()
    page.get_by_role("button", name="Save 2 images to the library").click(timeout=60_000)
    review = page.get_by_role("button", name="Review them now")
    expect(review).to_be_visible(timeout=TIMEOUT)
    table = page.locator('[data-testid="stDataFrame"]').first
    assert review.bounding_box()["y"] < table.bounding_box()["y"]
    no_traceback(page)


# --- the upload cap, to the byte -------------------------------------------------------------------------------


def test_a_file_of_exactly_25_mib_is_tagged_and_one_byte_more_is_explained(app_server, page: Page, tmp_path: Path):
    cat = (SAMPLES / "cat.jpg").read_bytes()
    exact, over = tmp_path / "exact.jpg", tmp_path / "over.jpg"
    exact.write_bytes(cat + b"\0" * (25 * 1024 * 1024 - len(cat)))  # decoders ignore bytes after the JPEG's end
    over.write_bytes(cat + b"\0" * (25 * 1024 * 1024 + 1 - len(cat)))
    open_sample(page, app_server.url, "cat.jpg")
    page.locator('[data-testid="stRadio"]').get_by_text("Upload", exact=True).click()
    uploader = page.locator('[data-testid="stFileUploader"]')
    expect(uploader).to_contain_text("26,214,400 bytes")
    uploader.locator('input[type="file"]').set_input_files(str(exact))
    settle(page, "exact.jpg")
    uploader.locator('input[type="file"]').set_input_files(str(over))
    alert = page.locator('[data-testid="stAlert"]').filter(has_text="over.jpg")
    expect(alert).to_be_visible(timeout=60_000)
    expect(alert).to_contain_text("26,214,401 bytes")
    no_traceback(page)
