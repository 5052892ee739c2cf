"""Precision/recall/F1 of the auto-select rule, the recommendation and per-tag thresholds, on hand-worked cases."""

from __future__ import annotations

import math
import random

import pandas as pd
import pytest

from tagging import metrics
from tagging.models import Tag
from tagging.rules import auto_select
from tagging.store import FeedbackItem as F

# Hand-worked: 3 accepted (cat 90, pet 70, tree 80) and 2 rejected (dog 40, car 50).
TWO_IMAGES = {
    "img1": [F("cat", 90, True), F("pet", 70, True), F("dog", 40, False)],
    "img2": [F("tree", 80, True), F("car", 50, False)],
}


def row(curve, threshold):
    return metrics.at_threshold(curve, threshold)


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)


@pytest.mark.parametrize(
    ("threshold", "tp", "fp", "fn", "precision", "recall", "f1"),
    [
        (0, 3, 2, 0, 3 / 5, 1.0, 6 / 8),  # everything selected
        (45, 3, 1, 0, 3 / 4, 1.0, 6 / 7),  # dog (40) out, car (50) still in
        (50, 3, 1, 0, 3 / 4, 1.0, 6 / 7),  # car at exactly 50: selected (>=)
        (60, 3, 0, 0, 1.0, 1.0, 1.0),
        (85, 1, 0, 2, 1.0, 1 / 3, 2 / 4),  # only cat
        (95, 0, 0, 3, math.nan, 0.0, 0.0),  # nothing selected: precision undefined, not 0 or 1
    ],
)
def test_curve_hand_worked_without_floor(threshold, tp, fp, fn, precision, recall, f1):
    r = row(metrics.threshold_curve(TWO_IMAGES, min_tags=0), threshold)
    assert (r["tp"], r["fp"], r["fn"], r["selected"]) == (tp, fp, fn, tp + fp)
    assert r["tn"] == 2 - fp
    assert same(r["precision"], precision) and same(r["recall"], recall) and same(r["f1"], f1)


def test_curve_has_every_integer_threshold():
    curve = metrics.threshold_curve(TWO_IMAGES, 0)
    assert list(curve["threshold"]) == list(range(101))
    assert list(curve.columns) == metrics.CURVE_COLUMNS


def test_floor_is_applied():
    # At 95 nothing reaches the threshold; a floor of 2 takes the top two of each image.
    r = row(metrics.threshold_curve(TWO_IMAGES, min_tags=2), 95)
    assert (r["tp"], r["fp"], r["fn"]) == (3, 1, 0)  # cat, pet | tree, car
    assert r["precision"] == pytest.approx(0.75) and r["f1"] == pytest.approx(6 / 7)


def test_overrides_are_applied():
    r = row(metrics.threshold_curve(TWO_IMAGES, 0, overrides={"car": 100, "cat": 95}), 0)
    assert (r["tp"], r["fp"], r["fn"]) == (2, 1, 1)  # car and cat need more than they have


def test_no_feedback_at_all():
    curve = metrics.threshold_curve({}, 3)
    assert len(curve) == 101
    assert (curve[["selected", "tp", "fp", "fn", "tn"]] == 0).all().all()
    assert curve[["precision", "recall", "f1"]].isna().all().all()
    rec = metrics.recommend(curve)
    assert rec.threshold is None and "nothing to recall" in rec.reason
    assert metrics.recommend(curve, metrics.TARGET_PRECISION, 0.9).threshold is None
    ev = metrics.evidence({})
    assert (ev.images, ev.verdicts, ev.accepted, ev.rejected) == (0, 0, 0, 0)
    assert not ev.trusted and len(ev.problems) == 4
    assert metrics.tag_stats({}, 60, 3).empty


def test_only_accepted():
    fb = {"a": [F("cat", 90, True), F("pet", 70, True)]}
    curve = metrics.threshold_curve(fb, 0)
    assert row(curve, 70)["precision"] == 1.0 and row(curve, 70)["recall"] == 1.0
    assert row(curve, 80)["recall"] == 0.5 and row(curve, 80)["precision"] == 1.0
    assert math.isnan(row(curve, 95)["precision"]) and row(curve, 95)["f1"] == 0.0
    rec = metrics.recommend(curve)
    assert rec.threshold == 35  # F1 = 1 on 0..70, the middle of that run
    assert (rec.precision, rec.recall, rec.f1) == (1.0, 1.0, 1.0)
    ev = metrics.evidence(fb)
    assert (ev.accepted, ev.rejected) == (2, 0)
    assert any("rejected" in p for p in ev.problems)


def test_only_rejected():
    fb = {"a": [F("dog", 40, False), F("car", 50, False)]}
    curve = metrics.threshold_curve(fb, 0)
    assert curve["recall"].isna().all()  # nothing accepted: recall undefined everywhere
    assert row(curve, 50)["precision"] == 0.0 and row(curve, 50)["f1"] == 0.0
    assert math.isnan(row(curve, 51)["precision"]) and math.isnan(row(curve, 51)["f1"])
    assert metrics.recommend(curve).threshold is None
    assert metrics.recommend(curve, metrics.TARGET_PRECISION, 0.5).threshold is None


def test_recommend_best_f1_is_middle_of_best_run():
    rec = metrics.recommend(metrics.threshold_curve(TWO_IMAGES, 0))
    # F1 = 1 exactly when car (50) is out and pet (70) is in: thresholds 51..70.
    assert rec.threshold == 60 and rec.method == metrics.BEST_F1
    assert (rec.precision, rec.recall, rec.f1) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(("target", "expected"), [(0.6, 0), (0.7, 41), (0.75, 41), (0.9, 51), (1.0, 51)])
def test_recommend_lowest_threshold_reaching_target_precision(target, expected):
    curve = metrics.threshold_curve(TWO_IMAGES, 0)
    rec = metrics.recommend(curve, metrics.TARGET_PRECISION, target)
    assert rec.threshold == expected
    assert rec.precision >= target


def test_a_tie_with_the_current_threshold_keeps_the_current_one():
    """Issue 18 item 8: 63 was recommended over 60 with the same precision, recall and F1."""
    curve = metrics.threshold_curve(TWO_IMAGES, 0)
    assert metrics.recommend(curve).threshold == 60  # the middle of 51..70 anyway
    keep = metrics.recommend(curve, current=66)  # F1 = 1 at 66 too: no reason to move
    assert keep.threshold == 66 and "current" in keep.reason
    assert metrics.recommend(curve, current=40).threshold == 60  # 40 is worse: move
    # target precision: 55 selects exactly what 51 (the lowest reaching 90%) selects
    assert metrics.recommend(curve, metrics.TARGET_PRECISION, 0.9, current=55).threshold == 55
    assert metrics.recommend(curve, metrics.TARGET_PRECISION, 0.9, current=75).threshold == 51  # 75 loses pet
    moving = metrics.threshold_stability(TWO_IMAGES, 0, current=66)
    assert moving.threshold == 66


def test_recommend_target_out_of_reach():
    fb = {"a": [F("cat", 90, False), F("pet", 70, True)]}  # the most confident tag is wrong
    curve = metrics.threshold_curve(fb, 0)
    rec = metrics.recommend(curve, metrics.TARGET_PRECISION, 0.9)
    assert rec.threshold is None and "50%" in rec.reason
    with pytest.raises(ValueError):
        metrics.recommend(curve, metrics.TARGET_PRECISION)
    with pytest.raises(ValueError):
        metrics.recommend(curve, "median")


def _images(n: int, accepted: int, rejected: int) -> dict[str, list[F]]:
    verdicts = [True] * accepted + [False] * rejected
    return {f"i{k}": [F(f"t{j}", 50 + j, v) for j, v in enumerate(verdicts[k::n])] for k in range(n)}


def test_trust_rule():
    assert metrics.evidence(_images(5, 15, 15)).trusted
    few_images = metrics.evidence(_images(4, 15, 15))
    assert not few_images.trusted and few_images.problems == ("only 4 images (need at least 5)",)
    few_verdicts = metrics.evidence(_images(5, 14, 15))
    assert few_verdicts.problems == ("only 29 tag verdicts (need at least 30)",)
    few_rejected = metrics.evidence(_images(5, 26, 4))
    assert few_rejected.problems == ("only 4 rejected tags (need at least 5)",)
    assert metrics.evidence(_images(5, 4, 26)).problems == ("only 4 accepted tags (need at least 5)",)


def test_curve_matches_the_rule_run_naively():
    rng = random.Random(7)
    names = [f"t{i}" for i in range(15)]
    fb = {
        f"img{k}": [F(name, float(rng.choice([rng.randint(0, 100), rng.uniform(0, 100)])), rng.random() < 0.5)
                    for name in rng.sample(names, rng.randint(0, 9))]
        for k in range(40)
    }
    overrides = {"t1": 30.0, "t2": 95.5, "t3": 0.0}
    for min_tags in (0, 3):
        curve = metrics.threshold_curve(fb, min_tags, overrides)
        for threshold in range(0, 101, 7):
            tp = fp = fn = 0
            for items in fb.values():
                chosen = set(auto_select([Tag(i.tag, i.confidence) for i in items], threshold, min_tags, overrides))
                tp += sum(i.tag in chosen and i.accepted for i in items)
                fp += sum(i.tag in chosen and not i.accepted for i in items)
                fn += sum(i.tag not in chosen and i.accepted for i in items)
            r = row(curve, threshold)
            assert (r["tp"], r["fp"], r["fn"]) == (tp, fp, fn)


def test_tag_stats_hand_worked():
    fb = {
        "a": [F("cat", 90, True), F("dog", 10, False)],
        "b": [F("cat", 30, False)],
        "c": [F("cat", 60, True), F("dog", 20, False)],
    }
    stats = metrics.tag_stats(fb, threshold=60, min_tags=0).set_index("tag")
    cat = stats.loc["cat"]
    assert (cat["suggested"], cat["accepted"], cat["rejected"]) == (3, 2, 1)
    assert cat["mean_confidence"] == pytest.approx(60.0)
    assert cat["best_threshold"] == 45  # F1 = 1 for thresholds 31..60
    assert cat["best_f1"] == 1.0
    dog = stats.loc["dog"]
    assert (dog["suggested"], dog["accepted"], dog["rejected"]) == (2, 0, 2)
    assert pd.isna(dog["best_threshold"])
    assert pd.isna(dog["best_f1"])
    assert list(stats.index) == ["cat", "dog"]  # most suggested first


def test_tag_stats_best_threshold_counts_the_floor():
    # With a floor of 1, "cat" is the only tag of image b, so the floor selects it at any threshold;
    # its rejection there cannot be fixed by a per-tag threshold, only the others can.
    fb = {"a": [F("cat", 90, True), F("pet", 95, True)], "b": [F("cat", 30, False)]}
    stats = metrics.tag_stats(fb, threshold=60, min_tags=1).set_index("tag")
    assert stats.loc["cat", "best_f1"] == pytest.approx(2 / 3)  # TP 1, FP 1 everywhere up to 90
    assert stats.loc["cat", "best_threshold"] == 45  # middle of 0..90


def test_tag_stats_keeps_other_overrides():
    # pet's override selects it, so the floor of 2 only adds dog and cat needs its own threshold;
    # without the override the floor would add dog and cat, and any threshold would do.
    fb = {"a": [F("dog", 90, False), F("cat", 70, True), F("pet", 10, False)]}
    with_override = metrics.tag_stats(fb, threshold=95, min_tags=2, overrides={"pet": 0}).set_index("tag")
    assert with_override.loc["cat", "best_threshold"] == 35  # F1 = 1 for 0..70
    without = metrics.tag_stats(fb, threshold=95, min_tags=2).set_index("tag")
    assert without.loc["cat", "best_threshold"] == 50  # F1 = 1 everywhere


# --- stability of the recommendation (bootstrap over images) -------------------------------------
def _mixed(n_a: int, n_b: int) -> dict[str, list[F]]:
    """Type A images want a high threshold (accepted 90, rejected 50: best F1 on 51..90, middle 70);
    type B a low one (accepted 30, rejected 10: 11..30, middle 20). Mixed with floor 0, the low
    run wins while n_a / n_b < 1.618 (2x/(2x+1) < 2(x+1)/(3x+2)), so at 1:1 the recommendation is 20."""
    feedback = {f"a{i}": [F("a", 90.0, True), F("ra", 50.0, False)] for i in range(n_a)}
    feedback.update({f"b{i}": [F("b", 30.0, True), F("rb", 10.0, False)] for i in range(n_b)})
    return feedback


def test_stability_of_identical_images_is_total():
    result = metrics.threshold_stability(_mixed(6, 0), 0)
    assert (result.threshold, result.low, result.high, result.within, result.undecided) == (70, 70, 70, 1.0, 0)
    assert result.stable


def test_few_mixed_images_give_a_wide_unstable_interval_and_many_a_narrow_one():
    few = metrics.threshold_stability(_mixed(2, 2), 0)
    assert few.threshold == 20
    assert few.low == 20 and few.high == 70  # resamples with 3 or 4 A images recommend 70
    assert not few.stable and few.within < metrics.STABLE_SHARE
    many = metrics.threshold_stability(_mixed(100, 100), 0)
    assert (many.threshold, many.low, many.high) == (20, 20, 20) and many.stable


def test_stability_is_seeded_and_follows_the_target_precision_method():
    first = metrics.threshold_stability(_mixed(3, 2), 0, method=metrics.TARGET_PRECISION, target_precision=1.0)
    again = metrics.threshold_stability(_mixed(3, 2), 0, method=metrics.TARGET_PRECISION, target_precision=1.0)
    assert first == again
    # Precision 100% needs the rejected 50 left out: the lowest such threshold is 51 for every resample
    # that holds an A image; a resample of only B images reaches 100% at 11.
    assert first.threshold == 51 and first.high == 51


def test_stability_without_feedback_or_acceptance_recommends_nothing():
    assert metrics.threshold_stability({}, 3).threshold is None
    none_accepted = {"x": [F("a", 80.0, False)], "y": [F("b", 70.0, False)]}
    result = metrics.threshold_stability(none_accepted, 0)
    assert result.threshold is None and result.undecided == result.resamples and not result.stable
