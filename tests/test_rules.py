from __future__ import annotations

import pytest

from tagging.errors import SelectionError
from tagging.models import Tag
from tagging.rules import auto_select, floor_picks, floor_ties, validate_selection


def tags(*pairs: tuple[str, float]) -> list[Tag]:
    return [Tag(name, conf) for name, conf in pairs]


SAMPLE = tags(("mountain", 76.4), ("highland", 69.8), ("mountains", 54.8), ("landscape", 54.5), ("sky", 38.0))


def test_threshold_selects_everything_at_or_above():
    assert auto_select(SAMPLE, threshold=50, min_tags=3) == ["mountain", "highland", "mountains", "landscape"]


def test_floor_wins_when_threshold_selects_fewer():
    assert auto_select(SAMPLE, threshold=60, min_tags=3) == ["mountain", "highland", "mountains"]
    assert auto_select(SAMPLE, threshold=99, min_tags=3) == ["mountain", "highland", "mountains"]


def test_boundary_is_inclusive():
    assert auto_select(SAMPLE, threshold=69.8, min_tags=0) == ["mountain", "highland"]
    assert auto_select(SAMPLE, threshold=69.81, min_tags=0) == ["mountain"]


def test_threshold_zero_selects_all_and_hundred_only_floor():
    assert auto_select(SAMPLE, threshold=0, min_tags=3) == [t.name for t in SAMPLE]
    assert auto_select(SAMPLE, threshold=100, min_tags=1) == ["mountain"]


def test_fewer_tags_than_floor_and_empty():
    assert auto_select(tags(("a", 10), ("b", 5)), threshold=60, min_tags=3) == ["a", "b"]
    assert auto_select([], threshold=60, min_tags=3) == []


def test_ties_at_the_floor_keep_backend_order_and_exact_count():
    tied = tags(("a", 90), ("b", 40), ("c", 40), ("d", 40))
    assert auto_select(tied, threshold=60, min_tags=3) == ["a", "b", "c"]
    # ties above the threshold are all selected
    tied_high = tags(("a", 70), ("b", 70), ("c", 70), ("d", 70))
    assert auto_select(tied_high, threshold=60, min_tags=3) == ["a", "b", "c", "d"]


def test_unsorted_input_is_ordered_by_confidence():
    assert auto_select(tags(("low", 10), ("high", 90), ("mid", 50)), 60, 2) == ["high", "mid"]


def test_per_tag_override_replaces_threshold_for_that_tag():
    assert auto_select(SAMPLE, threshold=60, min_tags=0, overrides={"sky": 30}) == ["mountain", "highland", "sky"]
    assert auto_select(SAMPLE, threshold=60, min_tags=0, overrides={"mountain": 80}) == ["highland"]


def test_negative_floor_rejected():
    with pytest.raises(ValueError):
        auto_select(SAMPLE, 60, -1)


def test_whitelist_accepts_suggested_and_dedupes():
    assert validate_selection(["sky", "mountain", "sky"], [t.name for t in SAMPLE]) == ["sky", "mountain"]
    assert validate_selection([], ["a"]) == []


def test_whitelist_rejects_unsuggested_tags():
    with pytest.raises(SelectionError, match="buy-now"):
        validate_selection(["mountain", "buy-now"], [t.name for t in SAMPLE])


def test_floor_picks_are_the_selected_tags_below_their_threshold():
    tags = [Tag("a", 90), Tag("b", 50), Tag("c", 40), Tag("d", 30)]
    assert floor_picks(tags, 60, 3) == ["b", "c"]
    assert floor_picks(tags, 60, 1) == []  # the threshold alone reaches the floor
    assert floor_picks(tags, 45, 3, {"b": 55}) == ["b", "c"]  # b is below its own threshold
    assert floor_picks(tags, 45, 3, {"b": 55, "c": 35}) == ["b"]


def test_floor_ties_name_the_tied_tags_left_out():
    tags = [Tag("a", 90), Tag("b", 40), Tag("c", 40), Tag("d", 40), Tag("e", 20)]
    assert floor_ties(tags, 60, 2) == ["c", "d"]  # b got in by the backend's order
    assert floor_ties(tags, 60, 4) == []  # every tie is in
    assert floor_ties(tags, 30, 2) == []  # the threshold took them all, no floor
    assert floor_ties([Tag("a", 90), Tag("b", 90)], 95, 1) == ["b"]
