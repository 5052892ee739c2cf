"""The library logic (search, pages, counts, tag tree, exports, CDN tags) and the store queries behind it."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tagging import metrics
from tagging.store import SCHEMA_VERSION, FeedbackItem, LibraryEntry, Store, library
from tagging.store.library import TagTree, cdn_tag_string, paginate, search, tag_counts
from tests.legacy_schema import make_legacy_db


def entry(key: str, *tags: str, backend: str = "embedded", filename: str | None = None) -> LibraryEntry:
    return LibraryEntry(key, filename or f"{key}.jpg", "Upload", backend, "en", tuple(tags), len(tags), "2025-01-01")


# cat, dog and a car; the embedded tagger's parents, and Imagga's "pet" without one.
ENTRIES = [
    entry("cat", "cat", "feline", "mammal", "animal", "pet"),
    entry("dog", "dog", "canine", "mammal", "animal"),
    entry("lynx", "lynx"),  # only the leaf was accepted
    entry("car", "car", backend="imagga"),
]
LINKS = [
    ("cat", "feline", 2), ("lynx", "feline", 1), ("feline", "mammal", 2), ("dog", "canine", 1),
    ("canine", "mammal", 1), ("mammal", "animal", 3), ("tabby", "cat", 1),
]


def keys(entries) -> list[str]:
    return [e.image_key for e in entries]


# --- search ----------------------------------------------------------------------------
def test_search_all_of_and_any_of():
    assert keys(search(ENTRIES, ["mammal", "pet"], library.ALL_OF)) == ["cat"]
    assert keys(search(ENTRIES, ["pet", "car"], library.ANY_OF)) == ["cat", "car"]
    assert keys(search(ENTRIES, ["animal"], library.ALL_OF)) == ["cat", "dog"]


def test_search_empty_query_returns_everything():
    assert keys(search(ENTRIES, [], library.ALL_OF)) == keys(ENTRIES)
    assert keys(search(ENTRIES, ["  "], library.ANY_OF)) == keys(ENTRIES)


def test_search_unknown_tag_matches_nothing():
    assert search(ENTRIES, ["unicorn"], library.ANY_OF) == []
    assert search(ENTRIES, ["cat", "unicorn"], library.ALL_OF) == []  # all-of needs the unknown one too
    assert keys(search(ENTRIES, ["cat", "unicorn"], library.ANY_OF)) == ["cat"]  # any-of ignores it


def test_search_ignores_case_and_spaces():
    assert keys(search(ENTRIES, [" CAT "], library.ALL_OF)) == ["cat"]


def test_search_with_children_via_tree():
    tree = TagTree(LINKS, ENTRIES)
    assert keys(search(ENTRIES, ["feline"], library.ALL_OF)) == ["cat"]  # lynx only carries its leaf
    assert keys(search(ENTRIES, ["feline"], library.ALL_OF, tree)) == ["cat", "lynx"]
    assert keys(search(ENTRIES, ["mammal"], library.ALL_OF, tree)) == ["cat", "dog", "lynx"]
    assert keys(search(ENTRIES, ["feline", "canine"], library.ALL_OF, tree)) == []
    assert keys(search(ENTRIES, ["feline", "canine"], library.ANY_OF, tree)) == ["cat", "dog", "lynx"]


def test_search_rejects_unknown_mode():
    with pytest.raises(ValueError):
        search(ENTRIES, ["cat"], "some")  # type: ignore[arg-type]


# --- pagination --------------------------------------------------------------------------
def test_pagination():
    items = [entry(f"k{i:02d}") for i in range(23)]
    first = paginate(items, 1, 10)
    assert keys(first.items) == [f"k{i:02d}" for i in range(10)]
    assert (first.number, first.pages, first.total, first.first, first.last) == (1, 3, 23, 1, 10)
    last = paginate(items, 3, 10)
    assert keys(last.items) == ["k20", "k21", "k22"] and (last.first, last.last) == (21, 23)
    assert paginate(items, 99, 10).number == 3  # clamped
    assert paginate(items, 0, 10).number == 1
    assert paginate(items, 2, 23).number == 1  # one page holds all
    empty = paginate([], 1, 10)
    assert (empty.items, empty.pages, empty.first, empty.last) == ([], 1, 0, 0)
    with pytest.raises(ValueError):
        paginate(items, 1, 0)


# --- counts and tree -------------------------------------------------------------------------
def test_tag_counts_count_images_not_records():
    entries = [*ENTRIES, entry("cat", "cat", "pet", backend="imagga")]  # same image, second backend
    counts = tag_counts(entries)
    assert list(counts.columns) == ["tag", "imageCount"]
    as_dict = dict(zip(counts["tag"], counts["imageCount"], strict=True))
    assert as_dict["cat"] == 1 and as_dict["mammal"] == 2 and as_dict["car"] == 1
    assert list(counts["tag"][:2]) == ["animal", "mammal"]  # most images first, then by name
    assert tag_counts([]).empty


def test_tag_tree_paths_depth_and_counts():
    tree = TagTree(LINKS, ENTRIES)
    cat = tree.nodes["cat"]
    assert (cat.path, cat.depth, cat.parent, cat.images, cat.images_in_subtree) == (
        "animal/mammal/feline/cat", 3, "feline", 1, 1)
    feline = tree.nodes["feline"]
    assert (feline.images, feline.images_in_subtree) == (1, 2)  # cat carries it; lynx is below it
    assert tree.nodes["mammal"].images_in_subtree == 3
    assert tree.nodes["animal"].depth == 0 and tree.nodes["animal"].parent is None
    assert tree.nodes["pet"].path == "pet" and tree.nodes["car"].depth == 0  # no known parent: root
    assert "tabby" not in tree.nodes  # no image carries it, nor anything below it
    assert tree.descendants("feline") == {"cat", "lynx"}
    assert tree.path("unicorn") == "unicorn"
    frame = tree.frame()
    assert list(frame.columns) == ["path", "tag", "parent", "depth", "images", "images_in_subtree"]
    assert list(frame["path"]) == sorted(frame["path"])
    assert "animal/mammal/canine/dog" in set(frame["path"])


def test_tag_tree_conflicting_parents_and_cycles():
    links = [("crane", "bird", 3), ("crane", "machine", 1), ("a", "b", 1), ("b", "a", 1)]
    tree = TagTree(links, [entry("x", "crane", "a", "b")])
    assert tree.nodes["crane"].path == "bird/crane"  # the parent seen most often
    assert {tree.nodes["a"].depth, tree.nodes["b"].depth} == {0, 1}  # the cycle is cut, not followed forever


# --- CDN tags and exports -----------------------------------------------------------------
def test_cdn_tag_string_rules():
    assert cdn_tag_string(["cat", "tabby, striped", "100% cotton", "  ", "Cat", "pet"]) == (
        "cat,tabby striped,100 cotton,pet")
    assert cdn_tag_string([]) == ""


def test_cdn_tag_string_limit_drops_whole_tags():
    tags = [f"tag{i:03d}" for i in range(100)]  # 6 characters each, 7 with the comma
    text = cdn_tag_string(tags)
    assert len(text) <= 500 and "%" not in text
    assert text.split(",") == tags[:71]  # 71 * 7 - 1 = 496; a 72nd would need 503
    # Exactly 500 fits; 501 does not, and the tag is dropped whole, a later short one still fits.
    assert len(cdn_tag_string(["x" * 500])) == 500
    assert cdn_tag_string(["a" * 495, "b" * 10, "cd"]) == "a" * 495 + ",cd"
    assert cdn_tag_string(["y" * 501]) == ""


def test_exports():
    entries = [entry("k1", "cat", "tabby, striped", "50% off", filename="a,b.jpg"), entry("k2")]
    data = json.loads(library.export_json(entries))
    assert data[0] == {
        "image_key": "k1", "filename": "a,b.jpg", "backend": "embedded", "language": "en",
        "saved_at": "2025-01-01", "tags": ["cat", "tabby, striped", "50% off"],
        "cdn_tags": "cat,tabby striped,50 off", "missing_tags": [], "review_mode": "",
        "face_count": None, "dominant_color": None, "dominant_color_parent": None, "text_found": None,
    }
    assert data[1]["tags"] == [] and data[1]["cdn_tags"] == ""
    rows = list(csv.DictReader(io.StringIO(library.export_csv(entries))))
    assert rows[0]["filename"] == "a,b.jpg"  # quoted, not split
    assert rows[0]["tags"] == "cat; tabby, striped; 50% off"
    assert rows[0]["cdn_tags"] == "cat,tabby striped,50 off"
    assert rows[1]["tags"] == ""


def test_exports_carry_the_missing_tags_note_apart_from_the_tags():
    """Issue 18 item 10: a reviewer's note of tags the tagger missed is exported, never mixed into the tags."""
    noted = replace(entry("k1", "cat"), missing_tags=("dog", "red; ball"), review_mode="blind")
    data = json.loads(library.export_json([noted]))[0]
    assert (data["tags"], data["missing_tags"], data["review_mode"]) == (["cat"], ["dog", "red; ball"], "blind")
    assert data["cdn_tags"] == "cat"
    row = next(csv.DictReader(io.StringIO(library.export_csv([noted]))))
    assert (row["tags"], row["missing_tags"], row["review_mode"]) == ("cat", "dog; red; ball", "blind")


def test_exports_carry_the_analysis_columns():
    from tagging.analysis import Summary

    entries = [entry("k1", "cat"), entry("k2")]
    analysis = {("k1", "embedded"): Summary(2, "navy", "blue", True), ("k2", "imagga"): Summary(1, "red", "red", False)}
    data = json.loads(library.export_json(entries, analysis))
    assert [(d["face_count"], d["dominant_color"], d["dominant_color_parent"], d["text_found"]) for d in data] == [
        (2, "navy", "blue", True), (None, None, None, None)]  # k2's analysis is of another backend
    rows = list(csv.DictReader(io.StringIO(library.export_csv(entries, analysis))))
    assert [(r["face_count"], r["dominant_color"], r["text_found"]) for r in rows] == [
        ("2", "navy", "True"), ("", "", "")]


def test_export_of_many_tags_keeps_cdn_limit():
    e = entry("k", *[f"long-tag-name-{i}" for i in range(60)])
    record = json.loads(library.export_json([e]))[0]
    assert len(record["tags"]) == 60 and len(record["cdn_tags"]) <= 500


# --- store queries -------------------------------------------------------------------------
def save(store: Store, key: str, items, backend="embedded", language="en", **kw):
    return store.save_feedback(image_key=key, filename=f"{key}.jpg", source="Upload", backend=backend,
                               language=language, threshold=60.0, min_tags=3, items=items, **kw)


CAT = [FeedbackItem("feline", 95, True, "mammal"), FeedbackItem("cat", 90, True, "feline"),
       FeedbackItem("dog", 30, False, "canine")]


def test_library_entries_and_groups(open_db):
    store = open_db()
    save(store, "a", CAT, thumbnail=b"\xff\xd8jpeg")
    save(store, "b", [FeedbackItem("car", 80, True)], backend="imagga", language="de")
    save(store, "c", [FeedbackItem("tree", 40, False)])
    entries = {(e.image_key, e.backend): e for e in store.library_entries()}
    assert entries[("a", "embedded")].tags == ("feline", "cat")  # accepted only, most confident first
    assert entries[("a", "embedded")].verdicts == 3 and entries[("a", "embedded")].filename == "a.jpg"
    assert entries[("b", "imagga")].language == "de"
    assert entries[("c", "embedded")].tags == ()  # saved, nothing accepted: still listed
    groups = store.feedback_groups()
    assert [(g.backend, g.language, g.images, g.verdicts) for g in groups] == [
        ("embedded", "en", 2, 4), ("imagga", "de", 1, 1)]
    assert store.feedback_by_image("embedded", "en") == {"a": CAT, "c": [FeedbackItem("tree", 40, False)]}
    assert ("cat", "feline", 1) in store.tag_parents()
    assert store.thumbnail("a") == b"\xff\xd8jpeg" and store.thumbnail("b") is None
    assert store.thumbnails(["a", "b", "zzz"]) == {"a": b"\xff\xd8jpeg"}


def test_delete_image_takes_its_feedback(open_db):
    store = open_db()
    save(store, "a", CAT)
    save(store, "a", [FeedbackItem("cat", 80, True)], backend="imagga")
    save(store, "b", [FeedbackItem("car", 80, True)])
    assert store.delete_image("a") == 4
    assert store.counts() == (1, 1)
    assert [e.image_key for e in store.library_entries()] == ["b"]
    assert store.thumbnail("a") is None
    assert store.delete_image("a") == 0  # already gone: nothing happens


def test_tag_overrides_roundtrip(open_db):
    store = open_db()
    assert store.tag_overrides() == {}
    store.set_tag_override("cat", 35)
    store.set_tag_override("dog", 80.5)
    assert open_db().tag_overrides() == {"cat": 35.0, "dog": 80.5}
    assert store.get_setting("tag_overrides") == {"cat": 35.0, "dog": 80.5}  # the key the Tag page reads
    assert store.set_tag_override("cat", None) == {"dog": 80.5}
    store.set_tag_override("nothing", None)
    assert store.tag_overrides() == {"dog": 80.5}


def test_old_schema_is_upgraded_and_its_feedback_used(tmp_path):
    """A version-1 database (before settings existed) opens, keeps its rows and feeds both pages."""
    path = tmp_path / "v1.db"
    conn = make_legacy_db(path, 1)
    conn.execute("INSERT INTO images VALUES ('k', 'old.jpg', 'Upload', 1, 1, x'ffd8', 't0', 't0')")
    for tag, parent, conf, ok in [("cat", "feline", 90, 1), ("feline", None, 95, 1), ("dog", None, 20, 0)]:
        conn.execute(
            "INSERT INTO feedback (image_key, backend, language, tag, parent, confidence, accepted, threshold,"
            " min_tags, saved_at) VALUES ('k', 'embedded', 'en', ?, ?, ?, ?, 60, 3, '2024-01-01T00:00:00+00:00')",
            (tag, parent, conf, ok),
        )
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.schema_version() == SCHEMA_VERSION
    [old] = store.library_entries()
    assert (old.filename, old.tags, old.saved_at) == ("old.jpg", ("feline", "cat"), "2024-01-01T00:00:00+00:00")
    assert TagTree(store.tag_parents(), [old]).path("cat") == "feline/cat"
    curve = metrics.threshold_curve(store.feedback_by_image("embedded", "en"), 0)
    assert metrics.at_threshold(curve, 50)["precision"] == 1.0
    store.set_tag_override("cat", 10)  # the settings table came with migration 2
    assert store.tag_overrides() == {"cat": 10.0}


# --- several processes writing at once ----------------------------------------------------------
# Each writer is its own Python process (as two Streamlit servers on one database would be). They
# all wait for a start file, then save 30 images and set 3 per-tag overrides as fast as they can.
WRITER = """
import sys, time
from pathlib import Path
from tagging.store import FeedbackItem, Store

path, prefix, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
store = Store(path)
while not go.exists():
    time.sleep(0.005)
for i in range(30):
    store.save_feedback(image_key=f"{prefix}{i}", filename=f"{prefix}{i}.jpg", source="Upload",
                        backend="embedded", language="en", threshold=60.0, min_tags=3,
                        items=[FeedbackItem(f"t{j}", float(j), j % 2 == 0) for j in range(5)])
    if i % 10 == 0:
        store.set_tag_override(f"{prefix}-tag{i}", float(i))
"""


def test_concurrent_processes_lose_nothing(tmp_path, db_target, open_db):
    """Four processes save at once (SQLite: WAL and BEGIN IMMEDIATE; PostgreSQL: row locks): nothing is lost."""
    path = db_target
    open_db()
    go = tmp_path / "go"
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), prefix, str(go)], cwd=root, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for prefix in "abcd"
    ]
    time.sleep(0.3)  # let them open the database
    go.touch()
    outputs = [w.communicate(timeout=120)[0].decode() for w in writers]
    assert [w.returncode for w in writers] == [0, 0, 0, 0], outputs
    store = open_db()
    assert store.counts() == (120, 600)
    assert len(store.library_entries()) == 120
    assert len(store.tag_overrides()) == 12  # every read-modify-write of the overrides kept
    if store.dialect == "sqlite":
        with sqlite3.connect(store.path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()


def test_thumbnail_saved_by_tag_flow_is_small(open_db):
    from tagging.images import load_image
    from tests.conftest import SAMPLES

    image = load_image((SAMPLES / "cat.jpg").read_bytes(), "cat.jpg", max_bytes=50_000_000, max_pixels=100_000_000)
    store = open_db()
    save(store, image.sha256, CAT, thumbnail=image.thumbnail_bytes())
    from PIL import Image

    thumb = Image.open(io.BytesIO(store.thumbnail(image.sha256)))
    assert max(thumb.size) <= 256 and len(store.thumbnail(image.sha256)) < Path(SAMPLES / "cat.jpg").stat().st_size
