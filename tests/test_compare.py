"""tagging.compare: agreement, sets and their cost, scores against verdicts, the review union (hand-worked)."""

from __future__ import annotations

import hashlib
import io
import math

import numpy as np
import pytest
from PIL import Image

from tagging import metrics
from tagging.backends import EMBEDDED, IMAGGA, MODE_TWO_STEP, ImaggaBackend, TagRequest
from tagging.batch import BatchItem
from tagging.compare import (
    OWN,
    SetImage,
    Side,
    Suggestions,
    TaggerSpec,
    Truth,
    agreement,
    available_taggers,
    compare_set,
    embedded_request,
    gather,
    imagga_request,
    jaccard,
    misses,
    plan_side,
    run_side,
    score_side,
    side_by_side,
    split_verdicts,
    truth_from,
    union_suggestions,
    verdict_counts,
    verdict_summary,
    verdict_table,
)
from tagging.config import load_settings
from tagging.errors import SelectionError
from tagging.imagga import ImaggaClient, ImaggaCredentials
from tagging.models import Tag
from tagging.store import FeedbackItem, ResultCache
from tests.imagga_standin import TEST_API_KEY, TEST_API_SECRET, ImaggaStandin, serve, standin_tags


def tags(*pairs: tuple[str, float]) -> list[Tag]:
    return [Tag(name, confidence) for name, confidence in pairs]


def payload(*pairs: tuple[str, float], language: str = "en") -> dict:
    return {"result": {"tags": [{"confidence": c, "tag": {language: n}} for n, c in pairs]},
            "status": {"text": "", "type": "success"}}


EMBEDDED_SPEC = TaggerSpec(EMBEDDED, embedded_request())
IMAGGA_SPEC = TaggerSpec(IMAGGA, imagga_request("en"))
A = Side(EMBEDDED_SPEC, threshold=60, min_tags=0, name="A")
B = Side(IMAGGA_SPEC, threshold=60, min_tags=0, name="B")

# The set used below, as each side answers it.
ANSWERS_A = {
    "img1": tags(("cat", 90), ("animal", 70), ("pet", 50), ("sky", 10)),
    "img2": tags(("dog", 95), ("sky", 70)),
    "img3": tags(("x", 10)),
    "img4": tags(("tree", 99)),
}
ANSWERS_B = {
    "img1": tags(("cat", 80), ("pet", 65), ("grass", 62), ("animal", 30)),
    "img2": tags(("dog", 91)),
    "img3": tags(("y", 20)),
}
SET = [SetImage(k, f"{k}.jpg") for k in ("img1", "img2", "img3", "img4")]


# --- taggers and specs --------------------------------------------------------------------------
def test_available_taggers_follow_the_settings():
    without = load_settings({})
    assert [c.backend for c in available_taggers(without)] == [EMBEDDED]
    with_key = load_settings({"IMAGGA_API_KEY": "k", "IMAGGA_API_SECRET": "s"})
    choices = available_taggers(with_key, embedded_models=[("places365", "Places365 (offline)")])
    assert [c.backend for c in choices] == [IMAGGA, EMBEDDED, "embedded:places365"]
    assert choices[0].remote and choices[0].takes_imagga_parameters and "de" in choices[0].languages
    assert not choices[2].remote and choices[2].label == "Places365 (offline)"


def test_imagga_request_matches_the_tag_pages_so_its_answers_are_reused():
    # The Tag page's defaults: language en, upload, downscaled to 1600, nothing else set.
    assert imagga_request("en", downscale_to=1600).cache_key() == TagRequest(
        language="en", mode="upload", downscale_to=1600).cache_key()
    custom = imagga_request("de", decrease_parents=True, tagger_id="  mine ", server_threshold=15, limit=20)
    assert (custom.decrease_parents, custom.tagger_id, custom.threshold, custom.limit) == (True, "mine", 15.0, 20)
    assert imagga_request(decrease_parents=False).decrease_parents is None  # off is None, as on the Tag page
    assert embedded_request() == TagRequest(language="en", mode="upload")  # the Tag and Batch pages' request


def test_requests_per_image_and_description():
    assert EMBEDDED_SPEC.requests_per_image == 0
    assert IMAGGA_SPEC.requests_per_image == 1
    assert TaggerSpec(IMAGGA, imagga_request(mode=MODE_TWO_STEP)).requests_per_image == 3  # upload, tag, delete
    text = TaggerSpec(IMAGGA, imagga_request("de", decrease_parents=True, tagger_id="t1")).describe()
    assert text == "Imagga API · de · decrease parents · tagger t1 · original size"
    assert A.describe() == "Embedded tagger (offline) · threshold 60, never fewer than 0 tags"


# --- agreement on one image ----------------------------------------------------------------------
def test_jaccard_and_its_empty_set_convention():
    assert jaccard({"a", "b", "c"}, {"b", "c", "d"}) == 0.5  # 2 shared of 4 in all
    assert jaccard({"a"}, set()) == 0.0
    assert math.isnan(jaccard(set(), set()))  # nothing to agree on: undefined, not 1


def test_agreement_lists_both_and_only_one_side_in_confidence_order():
    result = agreement(["cat", "animal"], ["cat", "pet", "grass"], ANSWERS_A["img1"], ANSWERS_B["img1"])
    assert result.both == ("cat",) and result.only_a == ("animal",) and result.only_b == ("pet", "grass")
    assert result.jaccard == 0.25  # {cat} of {cat, animal, pet, grass}
    assert not result.identical
    # "both" is ordered by the higher confidence of the two sides: b (A 50, B 95) before a (A 90, B 10).
    both = agreement(["a", "b"], ["a", "b"], tags(("a", 90), ("b", 50)), tags(("b", 95), ("a", 10)))
    assert both.both == ("b", "a") and both.identical and both.jaccard == 1.0


def test_side_by_side_has_every_suggested_tag_once():
    frame = side_by_side(ANSWERS_A["img1"], ANSWERS_B["img1"], ["cat", "animal"], ["cat", "pet", "grass"])
    assert list(frame["tag"]) == ["cat", "animal", "pet", "grass", "sky"]  # by the higher confidence: 90 70 65 62 10
    row = frame.set_index("tag")
    assert row.loc["pet", "confidence A"] == 50 and row.loc["pet", "confidence B"] == 65
    assert math.isnan(row.loc["grass", "confidence A"]) and math.isnan(row.loc["sky", "confidence B"])
    assert list(frame["where"]) == ["both", "only A", "only B", "only B", "neither"]


# --- a set ----------------------------------------------------------------------------------------
def test_compare_set_per_image_and_summary():
    result = compare_set(SET, ANSWERS_A, ANSWERS_B, A, B)
    rows = result.per_image.set_index("key")
    # img1: A {cat, animal}, B {cat, pet, grass} -> 1/4. img2: A {dog, sky}, B {dog} -> 1/2.
    # img3: neither reaches 60 and the floor is 0 -> both empty -> NaN. img4: B has no answer.
    assert rows.loc["img1", "agreement"] == 0.25 and rows.loc["img2", "agreement"] == 0.5
    assert math.isnan(rows.loc["img3", "agreement"])
    assert rows.loc["img4", "status"] == "no answer from B"
    assert rows.loc["img1", "only B"] == "pet, grass"
    assert (result.compared, result.missing_a, result.missing_b) == (3, 0, 1)
    assert result.mean_agreement == pytest.approx((0.25 + 0.5) / 2)  # the NaN image is left out of the mean
    assert (result.identical, result.undefined) == (1, 1)  # img3: two empty sets are the same set
    assert result.compared_keys == ["img1", "img2", "img3"]


def test_overrides_apply_to_both_sides():
    result = compare_set(SET[:1], ANSWERS_A, ANSWERS_B, A, B, overrides={"pet": 40})
    # pet now needs 40: A selects it at 50 -> {cat, animal, pet}; B {cat, pet, grass} -> 2/4.
    assert result.per_image.loc[0, "agreement"] == 0.5


def test_misses_say_whether_a_lower_threshold_would_catch_them():
    frame = misses([i.key for i in SET], ANSWERS_A, ANSWERS_B, A, B)
    # img1: A misses pet (it suggested it at 50: below its threshold) and grass (never suggested);
    # B misses animal (suggested at 30). img2: B misses sky (never suggested). img3/img4: nothing.
    assert frame.values.tolist() == [
        ["animal", "B", 1, 1, 0],
        ["grass", "A", 1, 0, 1],
        ["pet", "A", 1, 1, 0],
        ["sky", "B", 1, 0, 1],
    ]
    twice = misses(["img1", "img1"], ANSWERS_A, ANSWERS_B, A, B)  # an image counts once
    assert twice["images"].max() == 1


# --- what a set costs, before any call --------------------------------------------------------------
def _png(index: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (index * 50 % 256, 90, 120)).save(buffer, "PNG")
    return buffer.getvalue()


def _set_image(index: int) -> SetImage:
    data = _png(index)
    return SetImage(hashlib.sha256(data).hexdigest(), f"p{index}.png", BatchItem(f"p{index}.png", data))


def test_plan_counts_cached_calls_over_the_bound_and_images_without_bytes():
    one, two, three = (_set_image(i) for i in range(3))
    library_only = SetImage("f" * 64, "old.jpg")  # a library image: no original kept
    images = [one, two, three, library_only, SetImage(one.key, "copy of p0.png", one.item)]
    plan = plan_side(images, {two.key: []}, TaggerSpec(IMAGGA, imagga_request(mode=MODE_TWO_STEP)), limit=1)
    assert plan.images == 4  # the copy of p0 is the same image
    assert plan.cached == (two.key,)
    assert plan.to_call == (one.key,) and plan.new_calls == 1
    assert plan.over_limit == (three.key,)
    assert plan.unavailable == (library_only.key,)
    assert plan.requests == 3  # one two-step call: upload, tag, delete
    assert plan_side(images, {}, EMBEDDED_SPEC, limit=10).requests == 0  # offline: calls, no requests


def test_gather_reads_only_what_the_cache_holds_in_the_sides_language(tmp_path):
    cache = ResultCache(tmp_path / "cache.db")
    request_key = IMAGGA_SPEC.request.cache_key()
    cache.put("imagga:x", "k1", request_key, payload(("cat", 90)))
    cache.put("imagga:x", "k2", request_key, payload(("Katze", 90), language="de"))  # no English names
    cache.put("imagga:x", "k3", request_key, {"status": {"type": "success"}})  # damaged: no result
    cache.put("imagga:x", "k4", "another request", payload(("dog", 90)))
    answers = gather(cache, "imagga:x", IMAGGA_SPEC, ["k1", "k2", "k3", "k4", "k5"])
    assert list(answers) == ["k1"] and answers["k1"][0].name == "cat"


def test_a_run_makes_exactly_the_planned_calls_and_cached_answers_cost_nothing(tmp_path):
    cache = ResultCache(tmp_path / "cache.db")
    images = [_set_image(i) for i in range(3)]
    with serve(ImaggaStandin()) as (standin, url):
        backend = ImaggaBackend(ImaggaClient(ImaggaCredentials(TEST_API_KEY, TEST_API_SECRET), base_url=url))
        key = f"imagga:{url}"
        plan = plan_side(images, gather(cache, key, IMAGGA_SPEC, [i.key for i in images]), IMAGGA_SPEC, limit=2)
        assert plan.new_calls == 2 and len(plan.over_limit) == 1 and standin.count() == 0  # planning calls nothing
        report = run_side(images, plan, backend, IMAGGA_SPEC, backend_key=key, cache=cache)
        assert report.calls_made == 2 and standin.count("POST", "/v2/tags") == 2
        answers = gather(cache, key, IMAGGA_SPEC, [i.key for i in images])
        assert [t.name for t in answers[images[0].key]] == [t["tag"]["en"] for t in standin_tags(_png(0))]
        again = plan_side(images, answers, IMAGGA_SPEC, limit=2)
        assert again.cached == (images[0].key, images[1].key) and again.to_call == (images[2].key,)
        run_side(images, again, backend, IMAGGA_SPEC, backend_key=key, cache=cache)
        assert standin.count("POST", "/v2/tags") == 3  # only the one left
        done = plan_side(images, gather(cache, key, IMAGGA_SPEC, [i.key for i in images]), IMAGGA_SPEC, limit=2)
        assert done.new_calls == 0
        report = run_side(images, done, backend, IMAGGA_SPEC, backend_key=key, cache=cache)
        assert report.calls_made == 0 and standin.count() == 3  # everything cached: zero calls


# --- against the analyst's verdicts -------------------------------------------------------------------
FEEDBACK = {
    EMBEDDED: {
        "img1": [FeedbackItem("cat", 90, True), FeedbackItem("animal", 70, False)],
        "img2": [FeedbackItem("sky", 70, False)],
    },
    IMAGGA: {
        "img1": [FeedbackItem("cat", 80, True), FeedbackItem("pet", 65, True), FeedbackItem("grass", 62, False),
                 FeedbackItem("animal", 30, True)],
        "img2": [FeedbackItem("dog", 91, True)],
    },
}


def test_pooled_truth_merges_backends_and_leaves_conflicts_out():
    truth = truth_from(FEEDBACK)
    # animal: rejected under the embedded tagger, accepted under Imagga -> a conflict, left out.
    assert truth.verdicts == {"img1": {"cat": True, "pet": True, "grass": False}, "img2": {"sky": False, "dog": True}}
    assert truth.conflicts == 1 and len(truth) == 5
    own = truth_from({IMAGGA: FEEDBACK[IMAGGA]})
    assert own.conflicts == 0 and own.verdicts["img1"]["animal"] is True


def test_each_side_at_its_own_best_threshold_hand_worked():
    truth = truth_from(FEEDBACK)
    both = ["img1", "img2"]
    a = score_side(A, ANSWERS_A, truth, image_keys=both)
    # Side A (floor 0). img1 truth: cat+, pet+, grass-; img2: dog+, sky-.
    #   T 0..50:  img1 {cat, animal, pet(, sky)} TP2;  img2 {dog, sky} TP1 FP1  -> TP3 FP1 FN0: F1 6/7
    #   T 51..70: img1 {cat, animal} TP1 FN1;          img2 {dog, sky} TP1 FP1  -> TP2 FP1 FN1: F1 4/6
    #   T 71..90: img1 {cat} TP1 FN1;                  img2 {dog} TP1           -> TP2 FP0 FN1: F1 4/5
    #   T 91..95: img1 {} FN2;                         img2 {dog} TP1           -> F1 2/4
    #   T 96..:   FN3                                                            -> F1 0
    # Best F1 6/7 over 0..50: the middle, 25. There precision 3/4, recall 1.
    assert a.recommendation.threshold == 25
    assert (a.recommendation.precision, a.recommendation.recall) == (0.75, 1.0)
    assert a.recommendation.f1 == pytest.approx(6 / 7)
    assert float(a.at_own_threshold["f1"]) == pytest.approx(4 / 6)  # its own 60
    # Unjudged at 25: animal (a conflict) on img1. sky on img1 (at 10) is below 25.
    assert a.unjudged_at_best == 1
    # Rests on: img1 cat+, pet+ (suggested, judged); img2 dog+, sky-. animal (conflict) and sky on img1 have
    # no verdict; grass- was never suggested by A, so it cannot move A's scores.
    assert (a.evidence.images, a.evidence.verdicts, a.evidence.accepted, a.evidence.rejected) == (2, 4, 3, 1)

    b = score_side(B, ANSWERS_B, truth, image_keys=both)
    # Side B. img1 {cat 80, pet 65, grass 62, animal 30}, img2 {dog 91}:
    #   T 0..62: TP3 FP1 (grass) -> 6/7;  T 63..65: TP3 -> F1 1;  T 66..80: TP2 FN1 -> 4/5;  T 81..91: TP1 FN2 -> 1/2
    # Best F1 1 over 63..65: 64. sky- on img2 was never suggested by B: not a verdict it rests on.
    assert b.recommendation.threshold == 64 and b.recommendation.f1 == 1.0
    assert b.unjudged_at_best == 0
    assert (b.evidence.verdicts, b.evidence.accepted, b.evidence.rejected) == (4, 3, 1)

    text = verdict_summary(a, b)
    assert text.startswith("B agrees with your verdicts more")
    assert "F1 86% at threshold 25 for A" in text and "F1 100% at threshold 64 for B" in text
    table = verdict_table([a, b])
    assert list(table["side"]) == ["A", "B"] and list(table["best threshold"]) == [25, 64]
    assert list(table["verdicts"]) == [4, 4]
    assert not a.evidence.trusted  # 2 images, 4 verdicts: far below the trust rule


def test_accepted_tags_a_side_never_suggested_are_misses_at_every_threshold():
    truth = Truth({"i": {"cat": True, "tree": True}})
    score = score_side(Side(EMBEDDED_SPEC, min_tags=0), {"i": tags(("cat", 90))}, truth)
    # T 0..90: TP1 FN1 (tree) -> precision 1, recall 1/2, F1 2/3; above 90: F1 0. Middle of 0..90: 45.
    assert score.recommendation.threshold == 45
    assert score.recommendation.recall == 0.5 and score.recommendation.f1 == pytest.approx(2 / 3)
    assert score.evidence.verdicts == 2 and score.evidence.accepted == 2


def test_unjudged_tags_fill_the_floor_as_they_do_on_the_page():
    truth = Truth({"i": {"d": False, "e": True}})
    answer = {"i": tags(("a", 90), ("b", 80), ("c", 70), ("d", 20))}
    counted = verdict_counts(answer, truth, min_tags=3)
    # At 95 nothing reaches the threshold; the floor takes the top three a, b, c (no verdicts), not d.
    # (Scoring the judged tags alone would let the floor pick d: a false positive the page never shows.)
    tp, fp, fn, tn = counted.counts[0, 95]
    assert (tp, fp, fn, tn) == (0, 0, 1, 1) and counted.unjudged[0, 95] == 3


def test_scores_rest_only_on_images_with_verdicts_and_an_answer():
    truth = truth_from(FEEDBACK)
    score = score_side(A, ANSWERS_A, truth, image_keys=["img2", "img4", "nothing"])
    assert score.evidence.images == 1  # img4 has no verdicts, "nothing" no answer
    empty = score_side(A, {}, truth)
    assert empty.recommendation.threshold is None and empty.stability.threshold is None
    assert "Neither side can be scored" in verdict_summary(empty, empty)


def test_own_scope_uses_only_the_sides_backend():
    own = truth_from({IMAGGA: FEEDBACK[IMAGGA]})
    b = score_side(B, ANSWERS_B, own, image_keys=["img1", "img2"])
    # With Imagga's own verdicts animal is accepted: at 64 B misses it (30) -> TP3 FN1.
    assert b.recommendation.threshold is not None
    assert int(metrics.at_threshold(b.curve, 64)["fn"]) == 1
    assert OWN == "own"


def test_stability_from_counts_is_threshold_stability():
    feedback = {f"i{n}": [FeedbackItem("a", 40 + n, n % 2 == 0), FeedbackItem("b", 70 - n, True)] for n in range(8)}
    _, counts = metrics.image_counts(feedback, 1)
    assert metrics.stability_from_counts(counts, resamples=50) == metrics.threshold_stability(feedback, 1, resamples=50)
    assert np.array_equal(metrics.curve_from_counts(counts.sum(axis=0)), metrics.threshold_curve(feedback, 1))


# --- one review for both sides (the Review page's union) ---------------------------------------------
def test_union_is_judged_once_and_split_back_per_backend():
    sides = [
        Suggestions(EMBEDDED, "en", tuple(ANSWERS_A["img1"][:3]), ("cat", "animal")),
        Suggestions(IMAGGA, "en", tuple(ANSWERS_B["img1"][:3]), ("cat", "pet", "grass")),
    ]
    union = union_suggestions(sides)
    assert [(u.name, u.confidence, u.suggested_by, u.preselected) for u in union] == [
        ("cat", 90, (0, 1), True), ("animal", 70, (0,), True), ("pet", 65, (0, 1), True), ("grass", 62, (1,), True),
    ]
    verdicts = split_verdicts(sides, ["cat", "pet"])
    assert verdicts[(EMBEDDED, "en")] == [
        FeedbackItem("cat", 90, True), FeedbackItem("animal", 70, False), FeedbackItem("pet", 50, True)]
    assert verdicts[(IMAGGA, "en")] == [
        FeedbackItem("cat", 80, True), FeedbackItem("pet", 65, True), FeedbackItem("grass", 62, False)]
    with pytest.raises(SelectionError, match="dog"):
        split_verdicts(sides, ["cat", "dog"])  # the whitelist: only suggested tags


def test_union_sides_with_one_backend_share_one_list():
    sides = [
        Suggestions(IMAGGA, "en", tuple(tags(("cat", 80), ("pet", 40)))),
        Suggestions(IMAGGA, "en", tuple(tags(("cat", 70), ("grass", 50)))),  # e.g. decrease_parents
    ]
    verdicts = split_verdicts(sides, ["cat"])
    assert list(verdicts) == [(IMAGGA, "en")]
    assert verdicts[(IMAGGA, "en")] == [
        FeedbackItem("cat", 80, True), FeedbackItem("pet", 40, False), FeedbackItem("grass", 50, False)]
