"""AppTest tests of the Compare page: one image and a set, with and without Imagga (the loopback stand-in).

Expected selections and agreements are worked out here from the stand-in's documented answers
(``standin_tags``) and the rule (at least N tags, else all at or above the threshold), not read
back from the page.
"""

from __future__ import annotations

import hashlib
import io
import threading

import pytest
from PIL import Image

from tagging.embedded import EmbeddedTagger
from tagging.store import FeedbackItem, Store
from tests.conftest import SAMPLES
from tests.imagga_standin import TEST_API_KEY, TEST_API_SECRET, ImaggaStandin, serve, standin_tags
from tests.test_embedded_manifest import colour_manifest  # noqa: F401 (a fixture)

CAT = (SAMPLES / "cat.jpg").read_bytes()
CUSTOM = "custom1"


@pytest.fixture
def standin(monkeypatch):
    with serve(ImaggaStandin()) as (server, base_url):
        monkeypatch.setenv("IMAGGA_API_KEY", TEST_API_KEY)
        monkeypatch.setenv("IMAGGA_API_SECRET", TEST_API_SECRET)
        monkeypatch.setenv("IMAGGA_API_URL", base_url)
        yield server


@pytest.fixture
def embedded_calls(monkeypatch):
    """Sizes of the embedded tagger's forward passes (``tag`` is a pass of one, through ``tag_batch``)."""
    seen: list[int] = []
    lock = threading.Lock()
    tag_batch = EmbeddedTagger.tag_batch

    def counting(self, images):
        with lock:
            seen.append(len(images))
        return tag_batch(self, images)

    monkeypatch.setattr(EmbeddedTagger, "tag_batch", counting)
    return seen


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def table(at, column: str):
    """The first table with this column (AppTest does not expose keys of read-only tables)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def compare_page(app):
    at = app()
    at.switch_page("pages/compare.py")
    return at.run()


def selected(tags: list[dict], threshold: float, min_tags: int, language: str = "en") -> set[str]:
    """The rule on a stand-in answer (sorted best first): all at or above the threshold, at least min_tags."""
    names = [t["tag"][language] for t in tags]
    above = [t["tag"][language] for t in tags if t["confidence"] >= threshold]
    return set(above if len(above) >= min_tags else names[:min_tags])


def _png(index: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (index * 41 % 256, 120, index * 67 % 256)).save(buffer, "PNG")
    return buffer.getvalue()


def imagga_vs_custom(at, min_tags: int = 0):
    """Side A: Imagga as is; side B: Imagga's custom tagger CUSTOM; both at 60 and the given floor."""
    at.selectbox(key="compare_b_tagger").set_value("imagga").run()
    at.text_input(key="compare_b_tagger_id").input(CUSTOM).run()
    at.number_input(key="compare_a_min_tags").set_value(min_tags).run()
    at.number_input(key="compare_b_min_tags").set_value(min_tags).run()
    return at


def tag_requests(standin) -> int:
    return standin.count("POST", "/v2/tags") + standin.count("POST", f"/v2/tags/{CUSTOM}")


# --- without Imagga ---------------------------------------------------------------------------------------------
def test_without_imagga_it_compares_two_embedded_settings_and_says_how_to_add_imagga(app, embedded_calls):
    at = compare_page(app)
    assert not at.exception and not at.error
    assert "IMAGGA_API_KEY" in texts(at.info) and "IMAGGA_API_SECRET" in texts(at.info)
    assert at.selectbox(key="compare_a_tagger").options == ["Embedded tagger (offline)"]
    assert at.slider(key="compare_a_threshold").value == 60 and at.slider(key="compare_b_threshold").value == 40
    assert sum(embedded_calls) == 1  # both sides ask the same tagger the same thing: one call
    assert "none of its own" in texts(at.text)

    tags_a, tags_b = table(at, "selected"), at.dataframe[2].value
    assert list(tags_a["tag"]) == list(tags_b["tag"])  # the same answer, two rules
    chosen_a = set(tags_a.loc[tags_a["selected"], "tag"])
    chosen_b = set(tags_b.loc[tags_b["selected"], "tag"])
    assert chosen_a <= chosen_b  # a lower threshold selects a superset
    assert metrics(at)["Agreement"] == f"{len(chosen_a) / len(chosen_b):.0%}"

    for value in (10, 90, 60):
        at.slider(key="compare_b_threshold").set_value(value).run()
    assert sum(embedded_calls) == 1 and not at.exception
    assert metrics(at)["Agreement"] == "100%"  # 60 and 60, floor 3 on both: the same set


# --- one image with Imagga ------------------------------------------------------------------------------------------
def test_one_image_two_imagga_settings_side_by_side(app, standin):
    at = imagga_vs_custom(compare_page(app))
    assert not at.exception and not at.error
    expected_a = selected(standin_tags(CAT), 60, 0)
    expected_b = selected(standin_tags(CAT, tagger_id=CUSTOM), 60, 0)
    both = expected_a & expected_b
    assert metrics(at)["Agreement"] == f"{len(both) / len(expected_a | expected_b):.0%}"
    assert metrics(at)["Selected by both"] == str(len(both))
    assert metrics(at)["Only A"] == str(len(expected_a - expected_b))
    where = table(at, "where")
    assert set(where.loc[where["where"] == "only B", "tag"]) == expected_b - expected_a
    assert standin.count("POST", "/v2/tags") == 1 and standin.count("POST", f"/v2/tags/{CUSTOM}") == 1
    assert "Cost of B: 1 call made in this session: 1 Imagga request." in texts(at.text)

    before = tag_requests(standin)
    for value in (20, 80, 55):
        at.slider(key="compare_a_threshold").set_value(value).run()
    assert tag_requests(standin) == before  # the rule runs on the cached answers
    assert metrics(at)["Only A"] == str(len(selected(standin_tags(CAT), 55, 0) - expected_b))
    assert at.get("vega_lite_chart") or at.get("arrow_vega_lite_chart")


def test_an_answer_the_tag_page_paid_for_costs_nothing_here(app, standin):
    at = app().run()  # the Tag page: Imagga on the cat sample, its default parameters
    at.selectbox(key="tag_sample").set_value("cat.jpg").run()
    paid = standin.count("POST", "/v2/tags")
    assert paid == 1
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    assert standin.count("POST", "/v2/tags") == paid
    assert "Cost of A: Answered from the result cache: no call." in texts(at.text)


def test_a_failing_side_says_why_and_the_other_side_still_shows(app, standin):
    standin.fail("api_error", path="/v2/tags", text="Unsupported image type")
    at = compare_page(app)
    assert not at.exception
    assert "Tagger A: " in texts(at.error) and "Unsupported image type" in texts(at.error)
    assert table(at, "selected")["tag"].tolist()  # B (embedded) is shown


# --- a set ----------------------------------------------------------------------------------------------------------
def set_page(app, files):
    at = compare_page(app)
    at.radio(key="compare_mode").set_value("A set of images").run()
    at.file_uploader(key="compare_set_upload").set_value(files).run()
    return at


def test_a_set_counts_its_cost_before_calling_and_calls_only_on_the_button(app, standin):
    pngs = [(f"p{i}.png", _png(i), "image/png") for i in range(3)]
    at = imagga_vs_custom(set_page(app, pngs))
    at.number_input(key="compare_max_calls").set_value(2).run()
    assert not at.exception and not at.error
    opened = tag_requests(standin)  # the one-image view tagged the default sample when the page opened
    plan = table(at, "new calls now").set_index("side")
    assert plan.loc["A", "images"] == 3 and plan.loc["A", "new calls now"] == 2
    assert plan.loc["A", "over the bound (a later run)"] == 1 and plan.loc["B", "new calls now"] == 2
    assert tag_requests(standin) == opened  # nothing is called for the set before the button
    run = at.button(key="compare_run")
    assert run.label == "Make 4 new calls (4 Imagga requests)"
    run.click().run()
    assert not at.exception
    assert tag_requests(standin) == opened + 4
    assert "Last run, tagger A: 2 calls made (2 Imagga requests), 0 failed." in texts(at.text)
    plan = table(at, "new calls now").set_index("side")
    assert plan.loc["A", "from the cache"] == 2 and plan.loc["A", "new calls now"] == 1
    at.button(key="compare_run").click().run()
    assert tag_requests(standin) == opened + 6
    assert "No new call is needed" in texts(at.caption)
    for value in (30, 70):  # moving a threshold calls nothing
        at.slider(key="compare_b_threshold").set_value(value).run()
    assert tag_requests(standin) == opened + 6

    assert metrics(at)["Images compared"] == "3"
    at.slider(key="compare_b_threshold").set_value(60).run()
    per_image = table(at, "only B").set_index("image")
    for name, data, _ in pngs:
        a = selected(standin_tags(data), 60, 0)
        b = selected(standin_tags(data, tagger_id=CUSTOM), 60, 0)
        assert per_image.loc[name, "agreement"] == pytest.approx(len(a & b) / len(a | b))
    assert "None of these images has reviewed verdicts yet" in texts(at.info)


def test_over_a_reviewed_set_each_side_is_scored_at_its_own_best_threshold(app, standin, isolated_env):
    pngs = [(f"p{i}.png", _png(i), "image/png") for i in range(4)]
    # The analyst's verdicts (saved under Imagga, English): of A's fifteen tags, the two best are right.
    store = Store(isolated_env)
    accepted, judged = {}, {}
    for name, data, _ in pngs:
        answer = standin_tags(data)
        key = hashlib.sha256(data).hexdigest()
        accepted[key] = {t["tag"]["en"] for t in answer[:2]}
        judged[key] = {t["tag"]["en"] for t in answer}
        store.save_feedback(
            image_key=key, filename=name, source="test", backend="imagga", language="en", threshold=60, min_tags=0,
            items=[FeedbackItem(t["tag"]["en"], t["confidence"], i < 2) for i, t in enumerate(answer)],
        )
    at = imagga_vs_custom(set_page(app, pngs))
    at.button(key="compare_run").click().run()
    assert not at.exception and not at.error
    scores = table(at, "best threshold").set_index("side")
    # A, floor 0: the two accepted tags come first at 88.7 and 76.4, the next (rejected) at 69.8. Every
    # threshold in 70..76 selects exactly them on every image: F1 1 over 70..76, so its middle, 73.
    assert scores.loc["A", "best threshold"] == 73
    assert (scores.loc["A", "precision"], scores.loc["A", "recall"], scores.loc["A", "F1"]) == (1.0, 1.0, 1.0)
    assert scores.loc["A", "images"] == 4 and scores.loc["A", "verdicts"] == 60  # 15 judged tags on 4 images
    assert scores.loc["A", "accepted"] == 8 and scores.loc["A", "rejected"] == 52
    # B (the custom tagger) rests on the judged tags it suggests plus the accepted ones it does not.
    rests_on = never_offered = 0
    for _name, data, _ in pngs:
        key = hashlib.sha256(data).hexdigest()
        offered = {t["tag"]["en"] for t in standin_tags(data, tagger_id=CUSTOM)}
        rests_on += len(offered & judged[key]) + len(accepted[key] - offered)
        never_offered += len(accepted[key] - offered)
    assert scores.loc["B", "verdicts"] == rests_on
    # Accepted tags B never offers are misses at every threshold: its recall, so its F1, stays below 1.
    assert never_offered > 0 and scores.loc["B", "recall"] <= 1 - never_offered / 8
    summary = texts(at.success)
    assert summary.startswith("A agrees with your verdicts more") and "at threshold 73 for A" in summary
    assert "too few verdicts to trust" in texts(at.warning)  # 4 images: below the trust rule's 5

    at.radio(key="compare_scope").set_value("own").run()  # both sides are Imagga: the same verdicts
    assert table(at, "best threshold").set_index("side").loc["A", "best threshold"] == 73


def test_the_batch_pages_answers_are_reused_with_its_parameters(app, standin):
    pngs = [(f"b{i}.png", _png(10 + i), "image/png") for i in range(3)]
    at = app()
    at.switch_page("pages/batch.py").run()
    at.file_uploader(key="batch_upload").set_value(pngs).run()
    at.button(key="batch_start").click().run()
    assert at.session_state["batch_job"].wait(60)
    at.run()
    paid = standin.count("POST", "/v2/tags")
    assert paid == 3
    at.switch_page("pages/compare.py").run()
    paid = standin.count("POST", "/v2/tags")  # and the one-image view's default sample
    at.radio(key="compare_mode").set_value("A set of images").run()
    at.radio(key="compare_set_source").set_value("The Batch page's last batch").run()
    assert not at.exception
    assert "Imagga API · en · original size" in texts(at.text)
    # Side A sends images downscaled to 1600 px by default (the Tag page's): another cache key.
    assert table(at, "new calls now").set_index("side").loc["A", "new calls now"] == 3
    at.button(key="compare_adopt_a").click().run()
    plan = table(at, "new calls now").set_index("side")
    assert plan.loc["A", "from the cache"] == 3 and plan.loc["A", "new calls now"] == 0
    assert standin.count("POST", "/v2/tags") == paid


def test_a_library_selection_lists_what_cannot_be_tagged_again(app, standin, isolated_env, embedded_calls):
    pngs = [(f"p{i}.png", _png(20 + i), "image/png") for i in range(2)]
    at = set_page(app, pngs)  # A Imagga, B embedded
    opened = (tag_requests(standin), sum(embedded_calls))  # the one-image view's default sample
    at.button(key="compare_run").click().run()
    assert not at.exception
    calls = (tag_requests(standin), sum(embedded_calls))
    assert calls == (opened[0] + 2, opened[1] + 2)
    store = Store(isolated_env)
    odd_name = "**not bold** [x](http://e.invalid).png"
    for name, data, _ in [*pngs, (odd_name, b"never tagged", "")]:
        store.save_feedback(
            image_key=hashlib.sha256(data).hexdigest(), filename=name, source="test", backend="imagga",
            language="en", threshold=60, min_tags=3, items=[FeedbackItem("sky", 50.0, True)],
        )
    at.radio(key="compare_set_source").set_value("Library images").run()
    assert not at.exception
    plan = table(at, "new calls now").set_index("side")
    assert plan.loc["A", "images"] == 3 and plan.loc["A", "from the cache"] == 2
    assert plan.loc["A", "new calls now"] == 0 and plan.loc["A", "cannot be tagged (no original kept)"] == 1
    assert plan.loc["B", "cannot be tagged (no original kept)"] == 1
    assert not [b for b in at.button if b.key == "compare_run"]  # nothing can be called
    assert list(table(at, "image").query("image == @odd_name")["image"]) == [odd_name]  # shown literally
    assert metrics(at)["Images compared"] == "2"
    assert (tag_requests(standin), sum(embedded_calls)) == calls  # zero calls for cached answers


# --- issue 18 item 13: a genuinely different second offline tagger, each side's controls in its own column ----
def _sidebar_keys(at) -> set[str]:
    return {w.key for kind in ("selectbox", "slider", "number_input") for w in getattr(at.sidebar, kind)}


def test_only_one_offline_model_is_said_plainly_and_the_controls_are_not_in_the_sidebar(app, embedded_calls):
    at = compare_page(app)
    assert "Only one offline model is installed, so both sides run the same model" in texts(at.info)
    assert not {"compare_a_tagger", "compare_b_tagger", "compare_a_threshold", "compare_b_threshold"} & _sidebar_keys(
        at)
    assert at.slider(key="compare_b_threshold").value == 40


def test_side_b_starts_on_another_offline_model_when_one_is_installed(app, request, monkeypatch):
    monkeypatch.setenv("TAGGING_MODELS_DIR", str(request.getfixturevalue("colour_manifest").parent))
    at = compare_page(app)
    assert not at.exception and not at.error
    assert at.selectbox(key="compare_a_tagger").value == "embedded"
    assert at.selectbox(key="compare_b_tagger").value == "embedded:colours"  # a different model by default
    assert "side B starts on Four colours (test model)" in texts(at.info)
    assert at.slider(key="compare_b_threshold").value == 60  # two models: the same rule, so only the model differs
    tags_a, tags_b = [d.value for d in at.dataframe if "selected" in d.value.columns][:2]
    assert not set(tags_a["tag"]) & set(tags_b["tag"])  # not the degenerate identical columns


def test_tags_reviewers_noted_missing_are_counted_per_tagger():
    """Issue 18 item 10: Compare counts what each tagger missed of the reviewers' missing-tags notes."""
    from tagging import compare
    from tagging.compare import Side, TaggerSpec
    from tagging.models import Tag

    answers = {"A": {"k": [Tag("cat", 90.0), Tag("dog", 30.0)]}, "B": {"k": [Tag("cat", 80.0)]}}
    sides = {name: Side(TaggerSpec("embedded", compare.embedded_request()), 60.0, 0, name) for name in "AB"}
    frame = compare.noted_misses({"k": ("Dog", "sofa"), "x": ("cup",)}, answers, sides).set_index("tagger")
    assert frame.loc["A"].tolist() == [1, 2, 1, 1, 0]  # dog suggested at 30 (below 60), sofa never
    assert frame.loc["B"].tolist() == [1, 2, 2, 0, 0]  # neither suggested
