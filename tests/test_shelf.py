"""tagging.shelf: the bounded store of each browser's last upload and batch."""

from __future__ import annotations

import pytest

from tagging.shelf import Shelf, is_content_key


def test_oldest_entry_leaves_when_the_count_is_reached():
    dropped = []
    shelf = Shelf(max_entries=2, max_bytes=100)
    shelf.put("a", 1, on_drop=lambda: dropped.append("a"))
    shelf.put("b", 2)
    assert shelf.get("a") == 1  # a is now the most recently used
    shelf.put("c", 3)
    assert (shelf.get("a"), shelf.get("b"), shelf.get("c")) == (1, None, 3)
    shelf.put("d", 4)
    assert shelf.get("a") is None and dropped == ["a"]
    assert len(shelf) == 2


def test_bytes_bound_drops_as_many_as_needed_and_refuses_what_never_fits():
    shelf = Shelf(max_entries=10, max_bytes=100)
    for key in "abc":
        shelf.put(key, key, size=40)
    assert "a" not in shelf and shelf.bytes == 80
    assert not shelf.put("huge", "x", size=101)
    assert "huge" not in shelf and shelf.bytes == 80
    shelf.put("d", "d", size=100)
    assert len(shelf) == 1 and shelf.bytes == 100


def test_forget_and_replace_call_on_drop_once():
    calls = []
    shelf = Shelf(max_entries=3, max_bytes=10)
    value = object()
    shelf.put("k", value, on_drop=lambda: calls.append("first"))
    shelf.put("k", value, on_drop=lambda: calls.append("second"))  # the same value again: not dropped
    assert calls == []
    shelf.put("k", object(), on_drop=lambda: calls.append("third"))
    assert calls == ["second"]
    shelf.forget("k")
    shelf.forget("k")
    shelf.forget(None)
    assert calls == ["second", "third"] and shelf.get("k") is None


@pytest.mark.parametrize("value, ok", [("a" * 64, True), ("A" * 64, False), ("a" * 63, False), (None, False),
                                       ("g" * 64, False), ("0123456789abcdef" * 4, True)])
def test_content_keys_are_sha256_hex(value, ok):
    assert is_content_key(value) is ok
