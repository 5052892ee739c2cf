"""The Library in the database: SQL search equals ``library.search``; keyset pages, streamed exports, kept totals."""

from __future__ import annotations

import io
import random

import pytest

from tagging.store import AUTOMATIC, REVIEWED, FeedbackItem, Store, TagSearch, cursor_of, library
from tagging.store.library import TagTree

TAGS = ["Animal", "feline", "cat", "lynx", "dog", "food", "coffee", "cup", "car", "red", "Cat ", "ca,t%"]
PARENTS = {"feline": "Animal", "cat": "feline", "lynx": "feline", "dog": "Animal", "coffee": "food", "cup": "food"}


def save(store: Store, rng: random.Random, key: str, backend: str = "embedded", fewest: int = 0) -> None:
    items = [FeedbackItem(t, rng.uniform(0, 100), rng.random() < 0.6, PARENTS.get(t))
             for t in rng.sample(TAGS, rng.randint(fewest, 6))]
    store.save_feedback(image_key=key, filename=f"{key}.jpg", source="Upload", backend=backend, language="en",
                        threshold=60, min_tags=3, items=items,
                        provenance=AUTOMATIC if rng.random() < 0.3 else REVIEWED)


def random_library(store: Store, rng: random.Random, images: int) -> None:
    for k in range(images):
        save(store, rng, f"k{k:03d}", rng.choice(["embedded", "imagga"]))
        if rng.random() < 0.2:
            save(store, rng, f"k{k:03d}", "imagga")  # a second record of the same image
    for k in rng.sample(range(images), 4):
        store.delete_image(f"k{k:03d}")


def everything(store: Store, search: TagSearch) -> list:
    return [e for chunk in store.iter_library(search, chunk=7) for e in chunk]


def test_search_counts_and_tree_in_sql_equal_the_python_ones(db_target):
    rng = random.Random(5)
    store = Store(db_target)
    random_library(store, rng, 60)
    for provenance in (None, REVIEWED, AUTOMATIC):
        entries = sorted(store.library_entries(provenance), key=lambda e: (e.saved_at, e.image_key, e.backend,
                                                                           e.language), reverse=True)
        names = [t for t, _ in store.library_tags(provenance)]
        counts = library.tag_counts(entries)
        assert library.counts_frame(store.library_tags(provenance)).equals(counts)
        tree = TagTree(store.tag_parents(), entries)
        fast = TagTree.from_counts(store.tag_parents(), dict(store.library_tags(provenance)))
        fast = TagTree.from_counts(store.tag_parents(), dict(store.library_tags(provenance)),
                                   store.subtree_images(fast.subtrees(), provenance))
        assert fast.frame().equals(tree.frame())
        assert store.library_size(TagSearch(provenance)) == (len(entries), len({e.image_key for e in entries}))
        for query in (["cat"], ["animal", "food"], ["CAT", "red"], ["unicorn"], ["cat", "unicorn"], [" feline "]):
            for mode in (library.ALL_OF, library.ANY_OF):
                for with_tree in (None, tree):
                    expected = library.search(entries, query, mode, with_tree)
                    search = library.search_of(query, mode, names, with_tree, provenance)
                    assert everything(store, search) == expected, (query, mode, provenance)
                    assert store.library_size(search) == (len(expected), len({e.image_key for e in expected}))


def test_keyset_pages_never_skip_or_repeat_a_row_while_others_save(db_target):
    rng = random.Random(9)
    store = Store(db_target)
    for k in range(30):
        save(store, rng, f"old{k:02d}", fewest=1)
    search = TagSearch()
    seen: list[str] = []
    page = store.library_page(search, 7)
    new = 0
    while page:
        seen += [e.image_key for e in page]
        for _ in range(3):  # saves arriving while the analyst reads a page (some sort before, some after it)
            save(store, rng, f"{'a' if new % 2 else 'z'}new{new:02d}", fewest=1)
            new += 1
        page = store.library_page(search, 7, after=cursor_of(page[-1]))
    assert len(seen) == len(set(seen))  # no row twice
    assert sorted(k for k in seen if k.startswith("old")) == [f"old{k:02d}" for k in range(30)]  # none skipped
    first = store.library_page(search, 7)
    assert store.library_page(search, 7, before=cursor_of(first[-1])) == first[:-1]
    assert store.library_page(search, 7, start=cursor_of(first[2]))[:5] == first[2:]


def test_streamed_exports_are_byte_identical_beyond_one_chunk(db_target):
    rng = random.Random(3)
    store = Store(db_target)
    random_library(store, rng, 40)
    search = TagSearch()
    entries = everything(store, search)
    assert len(entries) > 3 * 7
    for stream, whole in ((library.stream_csv, library.export_csv), (library.stream_json, library.export_json)):
        out = io.BytesIO()
        library.write_export(stream(store.iter_library(search, chunk=7)), out)
        assert out.getvalue() == whole(entries).encode("utf-8")
    empty = library.search_of(["unicorn"], library.ALL_OF, [t for t, _ in store.library_tags()])
    assert "".join(library.stream_json(store.iter_library(empty))) == library.export_json([])
    assert "".join(library.stream_csv(store.iter_library(empty))) == library.export_csv([])


def test_kept_totals_equal_a_recount_after_saves_replacements_and_deletions(db_target):
    rng = random.Random(11)
    store = Store(db_target)
    random_library(store, rng, 40)
    store.delete_verdict_set("k005", "imagga", "en")
    save(store, rng, "k006", "embedded")
    totals, tags, links, groups = store.totals(), store.library_tags(), store.tag_parents(), store.feedback_groups()
    tags_by_scope = {p: store.library_tags(p) for p in (REVIEWED, AUTOMATIC)}
    version = store.data_version()
    store.rebuild_totals()
    assert store.data_version() > version
    assert {k: v for k, v in store.totals().items() if k != "version" and v} == {
        k: v for k, v in totals.items() if k != "version" and v}
    assert store.feedback_groups() == groups and groups
    assert store.library_tags() == tags and store.tag_parents() == links
    assert {p: store.library_tags(p) for p in (REVIEWED, AUTOMATIC)} == tags_by_scope
    images = {e.image_key for e in store.library_entries()}
    assert store.counts() == (len(images), sum(e.verdicts for e in store.library_entries()))


def test_data_version_moves_on_every_change(tmp_path):
    store = Store(tmp_path / "t.db")
    rng = random.Random(1)
    versions = [store.data_version()]
    save(store, rng, "a")
    versions.append(store.data_version())
    save(store, rng, "a")
    versions.append(store.data_version())
    store.delete_image("a")
    versions.append(store.data_version())
    assert versions == sorted(set(versions))


def test_unknown_search_mode_is_refused():
    with pytest.raises(ValueError):
        library.search_of(["cat"], "some", [])
    with pytest.raises(ValueError):
        TagSearch(provenance="maybe")
