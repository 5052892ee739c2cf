"""User text never becomes a link, not even a GFM literal autolink (issue 20, item 1).

Streamlit's Markdown (react-markdown + remark-gfm) links bare ``www.`` names, ``http://`` addresses
and e-mail addresses found in a text node after the backslash escapes were merged into it, so
``ui.text.literal``'s escapes alone left them clickable. tests/markdown.py renders as remark-gfm
does; these tests check the renderer first (it must link what the browser links), then every
page that shows a file name, on names carrying each kind of autolink.
"""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from tagging.store import AUTOMATIC, FeedbackItem, Store
from tests.conftest import SAMPLES
from tests.markdown import assert_literal, plain, render
from ui.text import literal

WWW = "see www.evil.example now.jpg"
MAIL = "mail x@example.invalid.jpg"
NAMES = [WWW, MAIL, "WWW.Evil.Example.jpg", "a+b.c@d-e.example.org copy.png"]
URL_IN_FOLDER = "http://127.0.0.1:9/x/photo.jpg"
CAT = (SAMPLES / "cat.jpg").read_bytes()


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def _with(elements, text: str) -> list[str]:
    return [str(e.value) for e in elements if " ".join(text.split()) in plain(str(e.value))]


# --- the renderer links what remark-gfm links, after escapes ----------------------------------
@pytest.mark.parametrize(("markdown", "href"), [
    ("see www\\.evil\\.example now\\.jpg", "http://www.evil.example"),
    ("mail x\\@example\\.invalid\\.jpg", "mailto:x@example.invalid.jpg"),
    ("in http\\:\\/\\/127\\.0\\.0\\.1\\:9\\/x b", "http://127.0.0.1:9/x"),
    ("(https://a.example/b).", "https://a.example/b"),
])
def test_the_renderer_links_autolinks_after_escapes_as_remark_gfm_does(markdown, href):
    assert f'<a href="{href}">' in render(markdown), render(markdown)


@pytest.mark.parametrize("markdown", ["cat.jpg", "evil.example", "x@y", "wwwx.example.com", "a/x@b.example",
                                      "www.a_b.c_d", "mail to x@example.org-"])
def test_the_renderer_links_nothing_gfm_does_not(markdown):
    assert "<a " not in render(markdown), render(markdown)


@pytest.mark.parametrize("name", NAMES + [URL_IN_FOLDER])
def test_literal_makes_no_autolink_and_shows_every_character(name):
    assert_literal(literal(name), name)
    assert plain(literal(name)) == name


# --- every page that shows a file name -------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_tag_page_caption_and_error_make_no_link(app, name):
    at = app()
    at.session_state["tag_source"] = "Upload"
    at.run()
    at.file_uploader(key="tag_upload").upload(name, CAT, "image/jpeg").run()
    assert not at.exception and not at.error
    assert_literal(at.image[0].proto.imgs[0].caption, name)
    at.file_uploader(key="tag_upload").upload(name, b"this is not an image at all", "image/jpeg").run()
    (error,) = _with(at.error, name)
    assert_literal(error, name)


def test_batch_error_box_names_an_archive_without_a_link(app):
    at = app()
    at.switch_page("pages/batch.py").run()
    for name in (WWW, MAIL):
        archive_name = name.replace(".jpg", ".zip")
        at.file_uploader(key="batch_upload").set_value([(archive_name, b"PK\x03\x04junk", "application/zip")]).run()
        assert not at.exception
        (error,) = _with(at.error, archive_name)
        assert_literal(error, archive_name)


def test_batch_results_name_zip_members_without_a_link(app):
    at = app()
    at.switch_page("pages/batch.py").run()
    archive = _zip([(URL_IN_FOLDER, _png()), ("x@example.invalid/notes.txt", b"hello")])
    at.file_uploader(key="batch_upload").set_value([(MAIL.replace(".jpg", ".zip"), archive,
                                                     "application/zip")]).run()
    assert not at.exception and not at.error
    at.button(key="batch_start").click().run()
    assert at.session_state["batch_job"].wait(60)
    at.run()
    for element in [*at.error, *at.warning, *at.info, *at.caption, *at.markdown, *at.toast, *at.success]:
        assert "<a " not in render(str(element.value)), element.value


@pytest.mark.parametrize("name", [WWW, MAIL])
def test_library_delete_confirmation_makes_no_link(app, isolated_env, name):
    Store(isolated_env).save_feedback(image_key="k1", filename=name, source="Upload", backend="embedded",
                                      language="en", threshold=60, min_tags=3,
                                      items=[FeedbackItem("cat", 90, True)])
    at = app()
    at.switch_page("pages/library.py").run()
    at.radio(key="lib_view").set_value("gallery").run()
    at.button(key="lib_gallery_delete_0").click().run()  # the only image's tile
    (warning,) = _with(at.warning, name)
    assert_literal(warning, name)
    at.button(key="lib_delete_yes").click().run()
    (notice,) = _with(at.success, name)
    assert_literal(notice, name)


def test_review_card_caption_makes_no_link(app, isolated_env):
    Store(isolated_env).save_feedback(image_key="k1", filename=WWW, source="Upload", backend="embedded",
                                      language="en", threshold=60, min_tags=3,
                                      items=[FeedbackItem("cat", 90, True)], provenance=AUTOMATIC,
                                      saved_by="x@example.invalid", batch="www.batch.example")
    at = app()
    at.switch_page("pages/review.py").run()
    assert not at.exception
    (caption,) = _with(at.caption, WWW)
    assert_literal(caption, WWW)
    (who,) = _with(at.caption, "x@example.invalid")
    assert_literal(who, "saved by x@example.invalid")
    assert "<a " not in render(who) and "www.batch.example" in plain(who)


def test_compare_page_error_makes_no_link(app):
    at = app()
    at.switch_page("pages/compare.py")
    at.session_state["compare_source"] = "Upload"
    at.run()
    at.file_uploader(key="compare_upload").upload(MAIL.replace(".jpg", ".pdf"), b"%PDF-1.7\n",
                                                  "application/pdf").run()
    assert not at.exception
    (error,) = _with(at.error, MAIL.replace(".jpg", ".pdf"))
    assert_literal(error, MAIL.replace(".jpg", ".pdf"))
