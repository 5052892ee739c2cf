"""AppTest tests of the Library page.

AppTest cannot type into a custom component, so ``streamlit_tags.st_tags`` is replaced by a
stand-in that returns what the test "typed" (the page imports it on every run); the real
component is driven in tests/browser/test_tune_library.py.
"""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest
import streamlit_tags

from tagging.store import FeedbackItem as F
from tagging.store import Store
from tests.markdown import shown
from ui.library import NO_PICTURE

LIBRARY = "pages/library.py"
CAT = [F("animal", 96, True), F("feline", 95, True, "animal"), F("cat", 94, True, "feline"),
       F("tabby", 17, False, "cat")]
LYNX = [F("animal", 90, True), F("feline", 80, False, "animal"), F("lynx", 70, True, "feline")]
COFFEE = [F("food", 98, True), F("coffee", 95, True, "food"), F("cup", 20, False)]
CAR = [F("car", 91, True), F("red", 60, True)]


class TypedTags(list):
    """What the analyst typed into the tag search; ``suggestions`` records what the page offered."""

    suggestions: list[str]


@pytest.fixture
def typed(monkeypatch) -> TypedTags:
    query = TypedTags()
    query.suggestions = []

    def fake_st_tags(value=(), suggestions=(), label="", text="", maxtags=-1, key=None):
        assert key == "lib_search"
        query.suggestions = list(suggestions)
        return list(query)

    monkeypatch.setattr(streamlit_tags, "st_tags", fake_st_tags)
    return query


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def seed(db) -> Store:
    store = Store(db)
    for key, items, backend in [("cat", CAT, "embedded"), ("lynx", LYNX, "embedded"),
                                ("coffee", COFFEE, "embedded"), ("car", CAR, "imagga")]:
        store.save_feedback(image_key=key, filename=f"{key}.jpg", source="Upload", backend=backend, language="en",
                            threshold=60, min_tags=3, items=items, thumbnail=b"\xff\xd8" + key.encode())
    return store


def results(at) -> list[str]:
    frames = [d.value for d in at.dataframe if "thumbnail" in d.value.columns]
    return list(frames[0]["file"]) if frames else []


def frame_with(at, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def open_library(app):
    at = app()
    at.switch_page(LIBRARY).run()
    assert not at.exception
    return at


def test_empty_library_points_to_the_tag_page(app, typed):
    at = open_library(app)
    assert "No saved tags yet" in texts(at.info) and "Tag" in texts(at.info)


def test_lists_every_image_with_thumbnail_tags_backend_date(app, typed, isolated_env):
    seed(isolated_env)
    at = open_library(app)
    assert not at.error
    table = frame_with(at, "thumbnail")
    assert sorted(table["file"]) == ["car.jpg", "cat.jpg", "coffee.jpg", "lynx.jpg"]
    cat = table.set_index("file").loc["cat.jpg"]
    assert cat["tags"] == "animal, feline, cat"  # accepted only
    assert cat["thumbnail"].startswith("data:image/jpeg;base64,")
    assert cat["backend"] == "Embedded tagger (offline)" and cat["saved"].endswith("UTC")
    assert table.set_index("file").loc["car.jpg", "backend"] == "Imagga API"
    assert sorted(typed.suggestions) == sorted({"animal", "feline", "cat", "lynx", "food", "coffee", "car", "red"})


def test_search_all_of_any_of_children_and_unknown(app, typed, isolated_env):
    seed(isolated_env)
    at = open_library(app)
    typed[:] = ["animal", "lynx"]
    at.run()
    assert results(at) == ["lynx.jpg"]
    at.radio(key="lib_mode").set_value("any").run()
    assert sorted(results(at)) == ["cat.jpg", "lynx.jpg"]
    typed[:] = ["feline"]  # lynx's feline was rejected, but lynx sits below feline in the tree
    at.radio(key="lib_mode").set_value("all").run()
    assert sorted(results(at)) == ["cat.jpg", "lynx.jpg"]
    at.checkbox(key="lib_children").uncheck().run()
    assert results(at) == ["cat.jpg"]
    typed[:] = ["cat", "unicorn"]
    at.run()
    assert results(at) == [] and "No image matches" in texts(at.info)
    assert "unicorn" in texts(at.caption)
    at.radio(key="lib_mode").set_value("any").run()
    assert results(at) == ["cat.jpg"]
    typed[:] = ["unicorn"]
    at.run()
    assert results(at) == []
    assert not at.exception


def test_pagination_and_new_search_starts_on_page_one(app, typed, isolated_env):
    store = Store(isolated_env)
    for i in range(23):
        store.save_feedback(image_key=f"k{i:02d}", filename=f"photo{i:02d}.jpg", source="Upload", backend="embedded",
                            language="en", threshold=60, min_tags=3,
                            items=[F("even" if i % 2 == 0 else "odd", 80, True), F("all", 90, True)])
    at = open_library(app)
    assert len(results(at)) == 10
    page = at.number_input(key="lib_page")
    assert (page.value, page.max) == (1, 3)
    page.set_value(3).run()
    assert len(results(at)) == 3 and "showing 21–23 · page 3 of 3" in texts(at.caption)
    at.selectbox(key="lib_page_size").set_value(25).run()
    assert len(results(at)) == 23 and at.number_input(key="lib_page").value == 1
    at.selectbox(key="lib_page_size").set_value(10).run()
    at.number_input(key="lib_page").set_value(2).run()
    typed[:] = ["odd"]
    at.run()
    assert at.number_input(key="lib_page").value == 1  # a new search starts on page 1
    assert len(results(at)) == 10 and "11 records (11 images) match" in texts(at.caption)


def test_tag_counts_and_tree(app, typed, isolated_env):
    seed(isolated_env)
    at = open_library(app)
    counts = frame_with(at, "imageCount")
    assert dict(zip(counts["tag"], counts["imageCount"], strict=True))["animal"] == 2
    assert list(counts["tag"])[0] == "animal"
    at.radio(key="lib_count_sort").set_value("Tag name").run()
    counts = frame_with(at, "imageCount")
    assert list(counts["tag"]) == sorted(counts["tag"])
    tree = frame_with(at, "path").set_index("path")
    assert tree.loc["animal/feline/cat", "tag"] == "\u2003" * 4 + "└ cat"  # drawn as a tree: two levels in
    assert tree.loc["animal/feline", "images"] == 1 and pd.isna(tree.loc["animal/feline", "images in subtree"])
    assert tree.loc["animal/feline/cat", "images in subtree"] == 1  # a leaf: its own count
    at.toggle(key="lib_subtrees").set_value(True).run()
    tree = frame_with(at, "path").set_index("path")
    assert tree.loc["animal/feline", "images in subtree"] == 2 and tree.loc["animal", "images in subtree"] == 2
    assert tree.loc["car", "tag"] == "car"  # Imagga's tags have no parent: a root
    assert not any(p.endswith("cup") for p in tree.index)  # rejected everywhere
    order = list(tree.index)  # each tag right under its parent
    assert order.index("animal") + 1 == order.index("animal/feline") < order.index("animal/feline/cat")


def ask_delete_on_the_tile(at, filename: str) -> None:
    """The gallery's Delete… on the image's own tile (the table offers it on the selected row)."""
    index = results(at).index(filename)
    at.radio(key="lib_view").set_value("gallery").run()
    at.button(key=f"lib_gallery_delete_{index}").click().run()


def test_delete_asks_first_and_takes_the_feedback(app, typed, isolated_env):
    store = seed(isolated_env)
    at = open_library(app)
    ask_delete_on_the_tile(at, "cat.jpg")
    assert "Delete “cat.jpg” and all its 4 tag verdicts" in shown(at.warning)
    at.button(key="lib_delete_no").click().run()
    assert store.counts()[0] == 4 and "lib_delete_yes" not in [b.key for b in at.button]
    at.radio(key="lib_view").set_value("table").run()
    ask_delete_on_the_tile(at, "cat.jpg")
    at.button(key="lib_delete_yes").click().run()
    assert not at.exception
    assert "Deleted cat.jpg and its 4 tag verdicts" in shown(at.success)
    assert store.counts() == (3, 8)  # lynx 3, coffee 3, car 2
    at.radio(key="lib_view").set_value("table").run()
    assert "cat.jpg" not in results(at)
    assert store.thumbnail("cat") is None


def test_export_buttons_and_cdn_tags(app, typed, isolated_env):
    seed(isolated_env)
    at = open_library(app)
    typed[:] = ["food"]
    at.run()
    cdn = frame_with(at, "cdn_tags")
    assert list(cdn["file"]) == ["coffee.jpg"] and list(cdn["cdn_tags"]) == ["food,coffee"]
    assert "search results (1 record)" in texts(at.caption)
    buttons = at.get("download_button")
    assert [b.proto.label for b in buttons] == ["Download CSV", "Download JSON"]
    assert not any(b.proto.disabled for b in buttons)


def test_unreadable_database_shows_an_error_not_a_traceback(app, typed, isolated_env):
    isolated_env.write_bytes(b"this is not a database" * 100)
    at = open_library(app)
    assert "Could not open the feedback database" in texts(at.error) and "TAGGING_DB" in texts(at.error)


def test_thumbnails_that_cannot_be_loaded_are_reported_and_the_list_still_shows(app, typed, isolated_env):
    seed(isolated_env)
    with sqlite3.connect(isolated_env) as conn:  # a damaged database: the thumbnails' column is gone
        conn.execute("ALTER TABLE images RENAME COLUMN thumbnail TO thumbnail_lost")
    at = open_library(app)
    assert "Could not load the thumbnails" in shown(at.warning) and "thumbnail" in shown(at.warning)
    table = frame_with(at, "thumbnail")
    assert sorted(table["file"]) == ["car.jpg", "cat.jpg", "coffee.jpg", "lynx.jpg"]
    assert (table["thumbnail"] == NO_PICTURE).all()  # says so in the cell, never "None"


def test_an_image_saved_without_a_picture_says_so_in_its_cell(app, typed, isolated_env):
    store = seed(isolated_env)
    store.save_feedback(image_key="bare", filename="bare.jpg", source="batch", backend="embedded", language="en",
                        threshold=60, min_tags=3, items=CAR)
    table = frame_with(open_library(app), "thumbnail").set_index("file")
    assert table.loc["bare.jpg", "thumbnail"] == NO_PICTURE
    assert table.loc["cat.jpg", "thumbnail"].startswith("data:image/jpeg;base64,")
    assert not table["thumbnail"].isna().any()


def test_review_mode_missing_tags_gallery_and_no_none(app, typed, isolated_env):
    """Issue 18 items 8, 10, 11, 14: how each set was reviewed, its missing-tags note, large tiles, blanks."""
    store = seed(isolated_env)
    store.save_feedback(image_key="cat", filename="cat.jpg", source="Upload", backend="embedded", language="en",
                        threshold=60, min_tags=3, items=CAT, review_mode="blind",
                        missing_tags=["dog"])
    at = open_library(app)
    frame = frame_with(at, "thumbnail").set_index("file")
    assert frame.loc["cat.jpg", "review"] == "blind" and frame.loc["cat.jpg", "missing tags"] == "dog"
    assert frame.loc["car.jpg", "review"] == "" and frame.loc["car.jpg", "missing tags"] == ""
    assert not frame.isna().any().any() and "None" not in frame.astype(str).to_numpy()
    [table] = [d for d in at.dataframe if "thumbnail" in d.value.columns]
    assert table.proto.row_height >= 90  # thumbnails big enough to see
    at.radio(key="lib_view").set_value("gallery").run()
    assert not at.exception
    assert len(at.get("imgs")) >= 4 or len(at.get("image")) >= 4  # one large tile per record
    assert {f"lib_enlarge_{i}" for i in range(4)} <= {b.key for b in at.button}


def test_analysis_columns_and_filters(app, typed, isolated_env):
    from tagging.analysis import Summary

    store = seed(isolated_env)
    store.save_analysis("cat", "embedded", Summary(1, "sienna", "brown", False))
    store.save_analysis("coffee", "embedded", Summary(0, "firebrick", "red", True))
    store.save_analysis("car", "imagga", Summary(0, "red", "red", False))
    at = open_library(app)
    table = frame_with(at, "thumbnail").set_index("file")
    assert table.loc["cat.jpg", "faces"] == "1" and table.loc["cat.jpg", "dominant colour"] == "sienna"
    assert table.loc["coffee.jpg", "text found"] == "yes" and table.loc["car.jpg", "colour family"] == "red"
    assert table.loc["cat.jpg", "text found"] == "no"
    assert (table["faces"] == "").sum() == 1  # the lynx was never analysed: a blank, never "None"
    assert at.selectbox(key="lib_colour").options == ["Any", "brown", "firebrick", "red", "sienna"]
    at.selectbox(key="lib_colour").set_value("red").run()
    assert sorted(results(at)) == ["car.jpg", "coffee.jpg"]
    at.radio(key="lib_text").set_value("yes").run()
    assert results(at) == ["coffee.jpg"]
    at.selectbox(key="lib_colour").set_value("any").run()
    at.radio(key="lib_text").set_value("any").run()
    at.radio(key="lib_faces").set_value("yes").run()
    assert results(at) == ["cat.jpg"]
    assert not at.exception and not at.error


def test_a_failed_delete_says_so_once_escaped_and_keeps_the_image(app, typed, isolated_env, monkeypatch):
    """The notice after a callback is shown as stored (already Markdown-safe): no doubled escapes on the page."""
    from tagging.errors import StoreError

    store = seed(isolated_env)
    at = open_library(app)
    ask_delete_on_the_tile(at, "cat.jpg")

    def down(self, image_key):
        raise StoreError("the database went away (test).")

    monkeypatch.setattr(Store, "delete_image", down)
    at.button(key="lib_delete_yes").click().run()
    assert not at.exception
    errors = [str(e.value) for e in at.error]
    assert any("Could not delete the image's record" in e for e in errors)
    assert not any("\\\\" in e for e in errors)  # escaped once: the page shows no backslash
    assert "the database went away (test)." in shown(at.error)
    assert store.counts()[0] == 4
