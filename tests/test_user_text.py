"""User-supplied text is shown literally on every page, never as Markdown (issue 10, defect 4).

One analyst's file name must not become bold text and a link in another's view. Each test
renders the element's Markdown as the browser would (tests/markdown.py) and asserts the name
is there character for character, with no link and no emphasis made from it.
"""

from __future__ import annotations

import io
import zipfile

import pytest
import streamlit_tags
from PIL import Image

from tagging.store import FeedbackItem, Store
from tests.conftest import SAMPLES
from tests.markdown import assert_literal, plain, render
from ui.text import literal

NAME = "**URGENT** [call IT](mailto:x@example.invalid).jpg"
CAT = (SAMPLES / "cat.jpg").read_bytes()


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def _with(elements, text: str) -> list[str]:
    """The Markdown of the elements whose rendered text contains ``text``."""
    return [str(e.value) for e in elements if " ".join(text.split()) in plain(str(e.value))]


@pytest.mark.parametrize(
    "text",
    [NAME, "# heading", "- item", "1. first", "a_b_c *x* `code` ~~gone~~ <b>bold</b> &amp; |a|b|",
     ":red[alarm] :material/warning: $x^2$ www.example.com https://example.com", "line\nbreak\r\n\n## two"],
)
def test_literal_shows_every_character_and_makes_no_markup(text):
    assert_literal(literal(text), text.replace("\r", " ").replace("\n", " "))
    assert "<h" not in render(literal(text)) and "<li>" not in render(literal(text))
    assert "<code>" not in render(literal(text)) and "<b>" not in render(literal(text))


def test_the_helper_check_catches_markdown():
    with pytest.raises(AssertionError):
        assert_literal(NAME, NAME)  # unescaped, it is a link and bold text


# --- Tag page ------------------------------------------------------------------------------
def test_tag_page_upload_shows_the_name_literally_in_the_caption_and_in_errors(app):
    at = app()
    at.session_state["tag_source"] = "Upload"  # not the sample: nothing to tag first
    at.run()
    at.file_uploader(key="tag_upload").upload(NAME, CAT, "image/jpeg").run()
    assert not at.exception and not at.error
    caption = at.image[0].proto.imgs[0].caption
    assert_literal(caption, NAME)
    at.file_uploader(key="tag_upload").upload(NAME, b"this is not an image at all", "image/jpeg").run()
    (error,) = _with(at.error, NAME)
    assert_literal(error, NAME)


def test_compare_page_upload_takes_any_file_and_says_why_it_cannot_be_read_literally(app):
    at = app()
    at.switch_page("pages/compare.py")
    at.session_state["compare_source"] = "Upload"
    at.run()
    assert not at.exception
    uploader = at.file_uploader(key="compare_upload")
    assert list(uploader.proto.type) == []  # a PDF or HEIC reaches the intake and gets its message
    pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n"
    at.file_uploader(key="compare_upload").upload(NAME.replace(".jpg", ".pdf"), pdf, "application/pdf").run()
    assert not at.exception
    (error,) = _with(at.error, NAME.replace(".jpg", ".pdf"))
    assert_literal(error, NAME.replace(".jpg", ".pdf"))
    assert "PDF" in plain(error)


# --- Batch page ----------------------------------------------------------------------------
def test_batch_page_errors_and_zip_member_names_are_literal(app):
    at = app()
    at.switch_page("pages/batch.py").run()
    archive_name = NAME.replace(".jpg", ".zip")
    at.file_uploader(key="batch_upload").set_value([(archive_name, b"PK\x03\x04garbage", "application/zip")]).run()
    assert not at.exception
    (error,) = _with(at.error, archive_name)
    assert_literal(error, archive_name)

    member = "holiday/" + NAME
    archive = _zip([(member, _png()), ("notes/" + NAME.replace(".jpg", ".txt"), b"hello")])
    at.file_uploader(key="batch_upload").set_value([("trip.zip", archive, "application/zip")]).run()
    assert not at.exception and not at.error
    skipped = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    assert list(skipped["file"]) == ["trip.zip › notes/" + NAME.replace(".jpg", ".txt")]  # a table: as is
    at.button(key="batch_start").click().run()
    assert at.session_state["batch_job"].wait(60)
    at.run()
    rows = next(d.value for d in at.dataframe if "selected tags" in d.value.columns)
    assert list(rows["image"]) == ["trip.zip › " + member]
    for element in [*at.error, *at.warning, *at.info, *at.caption, *at.markdown, *at.toast]:
        assert "<a " not in render(str(element.value))  # no link anywhere on the page


# --- Library page ----------------------------------------------------------------------------
@pytest.fixture
def typed(monkeypatch):
    query: list[str] = []

    def fake_st_tags(value=(), suggestions=(), label="", text="", maxtags=-1, key=None):
        return list(query)

    monkeypatch.setattr(streamlit_tags, "st_tags", fake_st_tags)
    return query


def test_library_captions_and_delete_confirmation_are_literal(app, typed, isolated_env):
    store = Store(isolated_env)
    store.save_feedback(image_key="k1", filename=NAME, source="Upload", backend="embedded", language="en",
                        threshold=60, min_tags=3, items=[FeedbackItem("cat", 90, True)])
    at = app()
    at.switch_page("pages/library.py").run()
    assert not at.exception
    tag = "**boss** [win](https://example.invalid/x)"
    typed[:] = [tag]
    at.run()
    (caption,) = _with(at.caption, tag)
    assert_literal(caption, tag)

    typed[:] = []
    at.run()
    at.radio(key="lib_view").set_value("gallery").run()
    at.button(key="lib_gallery_delete_0").click().run()
    (warning,) = _with(at.warning, NAME)
    assert_literal(warning, NAME)
    at.button(key="lib_delete_yes").click().run()
    (notice,) = _with(at.success, NAME)
    assert_literal(notice, NAME)
