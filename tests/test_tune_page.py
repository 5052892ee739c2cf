"""AppTest tests of the Tune page."""

from __future__ import annotations

import json
import math

import pytest

from tagging import metrics
from tagging.models import Tag
from tagging.rules import auto_select
from tagging.store import FeedbackItem as F
from tagging.store import Store
from tests.markdown import shown

TUNE = "pages/tune.py"
TAG = "pages/tag.py"

# 2 images, 5 verdicts: too few to trust.
SMALL = {
    "img1": [F("cat", 90, True), F("pet", 70, True), F("dog", 40, False)],
    "img2": [F("tree", 80, True), F("car", 50, False)],
}


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def seed(db, feedback, backend="embedded", language="en") -> Store:
    store = Store(db)
    for key, items in feedback.items():
        store.save_feedback(image_key=key, filename=f"{key}.jpg", source="Upload", backend=backend,
                            language=language, threshold=60, min_tags=3, items=items)
    return store


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def open_tune(app):
    at = app()
    at.switch_page(TUNE).run()
    assert not at.exception
    return at


def test_without_feedback_points_to_the_tag_page(app):
    at = open_tune(app)
    assert "No reviewed feedback saved yet" in texts(at.info) and "Tag" in texts(at.info)
    assert not at.get("vega_lite_chart") and not at.error


def test_curve_numbers_and_recommendation_shown(app, isolated_env):
    seed(isolated_env, SMALL)
    at = open_tune(app)
    at.number_input(key="tune_min_tags").set_value(0).run()
    assert not at.exception and not at.error
    expected = metrics.recommend(metrics.threshold_curve(SMALL, 0))
    assert expected.threshold == 60
    assert metric(at, "Recommended: keep") == "60"  # the current threshold is the best: nothing to apply
    assert metric(at, "Precision there") == "100.0%"
    assert "tune_apply" not in [b.key for b in at.button] and "Keep the current threshold 60" in shown(at.markdown)
    charts = at.get("vega_lite_chart")
    assert charts and '"precision"' in charts[0].proto.spec and '"marker": "recommended"' not in charts[0].proto.spec
    curve = at.dataframe[0].value
    assert len(curve) == 101 and {"accepted and picked", "rejected but picked", "accepted but not picked",
                                  "precision", "recall", "F1"} <= set(curve.columns)
    assert not {"TP", "FP", "FN", "TN"} & set(curve.columns)  # no jargon
    assert curve.loc[85, "accepted and picked"] == 1 and curve.loc[85, "accepted but not picked"] == 2
    assert math.isnan(curve.loc[95, "precision"])  # nothing selected: shown empty, not 0
    warning = texts(at.warning)
    assert "Too few to trust" in warning and "only 2 images" in warning and "2 images" in warning
    assert "5 tag verdicts" in warning


def test_floor_and_target_precision(app, isolated_env):
    seed(isolated_env, SMALL)
    at = open_tune(app)
    assert at.number_input(key="tune_min_tags").value == 3  # the Tag page's floor
    at.radio(key="tune_method").set_value(metrics.TARGET_PRECISION).run()
    at.slider(key="tune_target").set_value(75).run()
    # A floor of 3 selects every tag of both images at any threshold: precision 3/5 throughout.
    assert metric(at, "Recommended threshold") == "—"
    assert "No threshold reaches a precision of 75% (the best is 60%)" in texts(at.info)
    at.number_input(key="tune_min_tags").set_value(0).run()
    assert metric(at, "Recommended threshold") == "41"
    at.slider(key="tune_target").set_value(100).run()
    assert metric(at, "Recommended: keep") == "60"  # 51 reaches 100% too, with the very same picks: keep 60


def test_a_floor_without_kept_sums_on_a_large_library_says_it_reads_every_verdict(app, isolated_env, monkeypatch):
    seed(isolated_env, SMALL)
    monkeypatch.setattr(metrics, "EXACT_BOOTSTRAP_IMAGES", 1)  # two reviewed images count as a large library
    at = open_tune(app)
    assert "running sums" not in texts(at.info)  # the default floor: read from the sums
    at.number_input(key="tune_min_tags").set_value(4).run()
    assert not at.exception and not at.error
    assert ("At a floor of 4 it reads every verdict of these 2 reviewed images" in texts(at.info)
            and "set the floor back to 3" in texts(at.info))
    assert at.metric and at.get("vega_lite_chart")  # and the page still answers
    at.number_input(key="tune_min_tags").set_value(3).run()
    assert "running sums" not in texts(at.info)
    monkeypatch.setattr(metrics, "EXACT_BOOTSTRAP_IMAGES", 2)  # a small library: no note at any floor
    at.number_input(key="tune_min_tags").set_value(4).run()
    assert "running sums" not in texts(at.info)


def test_target_out_of_reach_says_so(app, isolated_env):
    seed(isolated_env, {"a": [F("cat", 90, False), F("pet", 70, True)]})
    at = open_tune(app)
    at.radio(key="tune_method").set_value(metrics.TARGET_PRECISION).run()
    at.slider(key="tune_target").set_value(95).run()
    assert metric(at, "Recommended threshold") == "—"
    assert "No threshold reaches a precision of 95%" in texts(at.info)
    assert "tune_apply" not in [b.key for b in at.button]


def test_only_rejected_feedback_gives_no_recommendation(app, isolated_env):
    seed(isolated_env, {"a": [F("dog", 40, False)]})
    at = open_tune(app)
    assert "nothing to recall" in texts(at.info)
    assert not at.exception


def test_enough_feedback_is_trusted(app, isolated_env):
    fb = {f"i{k}": [F(f"t{j}", 10 + 15 * j, j >= 3) for j in range(6)] for k in range(6)}
    seed(isolated_env, fb)
    at = open_tune(app)
    assert "Based on **6 images** and **36 tag verdicts** (18 accepted, 18 rejected)" in texts(at.success)
    assert "Too few" not in texts(at.warning)


def test_backend_and_language_are_separate(app, isolated_env):
    seed(isolated_env, SMALL)
    seed(isolated_env, {"x": [F("Katze", 90, True)]}, backend="imagga", language="de")
    at = open_tune(app)
    choice = at.selectbox(key="tune_group")
    assert choice.options[0].startswith("Embedded tagger (offline) · en · 2 images")
    choice.set_value("imagga:de").run()
    assert "1 tag verdicts" in texts(at.warning) and "`de`" in texts(at.warning)
    assert list(at.dataframe[1].value["tag"]) == ["Katze"]


def test_apply_sets_the_tag_page_default_and_persists(app, isolated_env):
    store = seed(isolated_env, SMALL)
    at = open_tune(app)
    at.number_input(key="tune_min_tags").set_value(0).run()
    at.session_state["threshold"] = 45  # F1 6/7 there; 60 is better
    at.run()
    at.button(key="tune_apply").click().run()
    assert store.get_setting("default_threshold") is None  # not before it is confirmed
    assert "for everyone using this database" in texts(at.warning)
    at.button(key="tune_apply_yes").click().run()
    assert "now starts at threshold 60" in texts(at.success)
    assert store.get_setting("default_threshold") == 60
    assert at.session_state["threshold"] == 60
    at.switch_page(TAG).run()
    assert at.slider(key="tag_threshold").value == 60
    assert at.number_input(key="tag_min_tags").value == 0  # the floor is shared too
    restarted = app()
    restarted.run()  # a new session after a restart starts at the applied default
    assert restarted.slider(key="tag_threshold").value == 60


def test_per_tag_table_and_overrides_change_the_tag_page(app, isolated_env):
    at = app().run()
    at.selectbox(key="tag_sample").set_value("cat.jpg").run()
    before = at.multiselect(key="tag_selection").value
    at.button(key="tag_save").click().run()
    key = at.session_state["last_saved"]
    saved = Store(isolated_env).feedback_for(key, "embedded", "en")
    tags = [Tag(f.tag, f.confidence) for f in saved]
    # Derived from what was saved, not from one model's numbers: the most confident accepted tag
    # and the most confident rejected one the override can still lift (the rule is at 60, floor 3).
    high = max((f for f in saved if f.accepted), key=lambda f: f.confidence)
    low = max((f for f in saved if not f.accepted and f.confidence >= 10), key=lambda f: f.confidence)
    assert high.tag in before and low.tag not in before
    expected_after = auto_select(tags, 60, 3, {low.tag: 10, high.tag: 100})
    assert low.tag in expected_after and high.tag not in expected_after  # the scenario is meaningful

    at.switch_page(TUNE).run()
    table = at.dataframe[1].value
    assert {"tag", "suggested", "accepted", "rejected", "mean_confidence", "best_threshold", "override"} <= set(
        table.columns)
    row = table.set_index("tag").loc[low.tag]
    assert (row["suggested"], row["accepted"], row["rejected"]) == (1, 0, 1)
    assert row["mean_confidence"] == pytest.approx(low.confidence)  # one image: the mean is its confidence
    at.selectbox(key="tune_override_tag").set_value(low.tag).run()
    at.slider(key="tune_override_value").set_value(10).run()
    at.button(key="tune_override_set").click().run()
    at.selectbox(key="tune_override_tag").set_value(high.tag).run()
    at.slider(key="tune_override_value").set_value(100).run()
    at.button(key="tune_override_set").click().run()
    assert not at.exception
    assert Store(isolated_env).tag_overrides() == {low.tag: 10.0, high.tag: 100.0}
    assert f"{low.tag} → 10" in shown(at.caption)
    assert at.dataframe[1].value.set_index("tag").loc[low.tag, "override"] == 10

    at.switch_page(TAG).run()
    assert at.multiselect(key="tag_selection").value == expected_after

    at.switch_page(TUNE).run()
    at.selectbox(key="tune_override_tag").set_value(low.tag).run()
    at.button(key="tune_override_clear").click().run()
    assert Store(isolated_env).tag_overrides() == {high.tag: 100.0}


def test_unreadable_database_shows_an_error_not_a_traceback(app, isolated_env):
    isolated_env.write_bytes(b"this is not a database" * 100)
    at = open_tune(app)
    assert "Could not open the feedback database" in texts(at.error) and "TAGGING_DB" in texts(at.error)


# --- issue 18 items 8 and 9 ------------------------------------------------------------------------------
def test_too_few_to_trust_is_never_called_stable(app, isolated_env):
    """Item 8: "Too few to trust" beside "Stable between 51 and 51"."""
    seed(isolated_env, SMALL)
    at = open_tune(app)
    at.number_input(key="tune_min_tags").set_value(0).run()
    assert "Too few to trust" in texts(at.warning)
    assert "Stable" not in texts(at.success) + texts(at.warning)
    assert "between 51 and 51" not in texts(at.success) + texts(at.warning)
    assert "Not settled" in texts(at.warning)


def test_a_tie_with_the_current_threshold_is_not_offered_as_better(app, isolated_env):
    """Item 8: 63 recommended over 60 with the same precision, recall and F1."""
    fb = {f"i{k}": [F("a", 90, True), F("b", 64, True), F("c", 55, False)] for k in range(6)}
    seed(isolated_env, fb)  # every threshold from 56 to 64 picks exactly the accepted tags
    at = open_tune(app)
    at.number_input(key="tune_min_tags").set_value(0).run()
    assert metric(at, "Recommended: keep") == "60" and "tune_apply" not in [b.key for b in at.button]
    at.session_state["threshold"] = 50
    at.run()
    assert metric(at, "Recommended threshold") == "60"
    assert "Moving from 50 to 60 changes precision 66.7% → 100.0%" in shown(at.markdown)


def test_blind_reviews_are_counted_and_can_be_used_alone(app, isolated_env):
    store = Store(isolated_env)
    for key, mode in (("p1", "prefilled"), ("b1", "blind"), ("b2", "blind")):
        store.save_feedback(image_key=key, filename=f"{key}.jpg", source="Upload", backend="embedded",
                            language="en", threshold=60, min_tags=3, items=[F("cat", 90, True), F("dog", 30, False)],
                            review_mode=mode)
    at = open_tune(app)
    assert "1 pre-filled with the rule's picks" in texts(at.caption) and "2 blind" in texts(at.caption)
    assert "Based on **3 images**" in texts(at.warning)
    at.radio(key="tune_source").set_value("blind").run()
    assert "Based on **2 images**" in texts(at.warning)


def test_curve_chart_is_tall_within_100_percent_has_no_legend_title_and_a_hover_readout(app, isolated_env):
    """Item 9."""
    seed(isolated_env, SMALL)
    at = open_tune(app)
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["height"] >= 400
    layers = spec["layer"]
    lines = next(layer for layer in layers if layer["mark"]["type"] == "line")
    assert lines["mark"].get("clip") is True and lines["encoding"]["y"]["scale"]["domain"][1] > 1
    for layer in layers:
        for channel in layer["encoding"].values():
            legend = channel.get("legend") if isinstance(channel, dict) else None
            assert legend is None or legend.get("title") is None
    [hover] = [p for p in spec.get("params", []) + [p for layer in layers for p in layer.get("params", [])]]
    assert hover["select"]["nearest"] is True and hover["select"]["on"] == "pointerover"
    pointer = next(layer for layer in layers if len(layer["encoding"].get("tooltip", [])) > 3)
    assert {t["field"] for t in pointer["encoding"]["tooltip"]} >= {"precision", "recall", "F1",
                                                                     "accepted and picked"}


def test_the_default_threshold_can_be_reset_and_is_shown_on_settings(app, isolated_env):
    store = seed(isolated_env, SMALL)
    store.set_setting("default_threshold", 70)
    at = open_tune(app)
    assert "Default threshold: 70, set on the Tune page" in texts(at.caption)
    at.button(key="tune_reset_default").click().run()
    assert store.get_setting("default_threshold") is None and at.session_state["threshold"] == 60
    store.set_setting("default_threshold", 55)
    at.switch_page("pages/settings.py").run()
    assert "Default threshold: 55, set on the Tune page" in texts(at.markdown)
