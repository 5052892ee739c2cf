"""AppTest tests of the Review page: steps, undo, order, filters, the whitelist, the union, no backend call."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tagging.backends import EmbeddedBackend, ImaggaBackend
from tagging.review import CACHE_BATCH
from tagging.store import AUTOMATIC, REVIEWED, FeedbackItem, ResultCache, Store
from tests.conftest import SAMPLES

REVIEW = "pages/review.py"
CAT = (SAMPLES / "cat.jpg").read_bytes()
IMAGGA_KEY = "imagga:http://127.0.0.1:9/v2"

# Threshold 60, floor 3 (the app's defaults): gaps to 60 are 1 (a), 3 (b), 10 (c), 20 (d).
QUEUE = {
    "a": [FeedbackItem("cat", 61.0, True), FeedbackItem("pet", 45.0, False), FeedbackItem("sofa", 20.0, False),
          FeedbackItem("rug", 10.0, False)],
    "b": [FeedbackItem("car", 63.0, True), FeedbackItem("road", 30.0, False), FeedbackItem("sky", 25.0, False)],
    "c": [FeedbackItem("tree", 70.0, True), FeedbackItem("leaf", 40.0, False), FeedbackItem("sun", 30.0, False)],
    "d": [FeedbackItem("cup", 80.0, True), FeedbackItem("desk", 35.0, False), FeedbackItem("pen", 12.0, False)],
}


def jpeg(color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG")
    return buffer.getvalue()


def seed(db, queue=QUEUE, *, backend="embedded", batch="b1", **kw) -> Store:
    store = Store(db)
    for n, (key, items) in enumerate(queue.items()):
        store.save_feedback(image_key=key, filename=f"{key}.jpg", source="batch", backend=backend, language="en",
                            threshold=60, min_tags=3, items=items, provenance=AUTOMATIC, saved_by="bob",
                            batch=batch, thumbnail=jpeg((n * 50, 0, 0), (32, 24)), preview=jpeg((n * 50, 90, 0)),
                            **kw)
    return store


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


@pytest.fixture(autouse=True)
def quick_looks(monkeypatch):
    """AppTest clicks follow each other within milliseconds; a person's glance is not needed here."""
    monkeypatch.setattr("tagging.review.MIN_LOOK_SECONDS", 0.0)


@pytest.fixture
def no_backend(monkeypatch):
    """Counts every tagging call and every backend the page builds: the review must make none."""
    calls: list[str] = []

    def counting(name):
        def call(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called during review")
        return call

    monkeypatch.setattr(EmbeddedBackend, "tag_image", counting("embedded.tag_image"))
    monkeypatch.setattr(ImaggaBackend, "tag_image", counting("imagga.tag_image"))
    monkeypatch.setattr(ImaggaBackend, "tag_url", counting("imagga.tag_url"))
    monkeypatch.setattr("ui.resources.embedded_backend", counting("resources.embedded_backend"))
    monkeypatch.setattr("ui.resources.imagga_backend", counting("resources.imagga_backend"))
    return calls


def open_review(app):
    at = app()
    at.switch_page(REVIEW).run()
    assert not at.exception, at.exception
    return at


def shown(at) -> str:
    """The file name under the image."""
    return at.get("image")[0].proto.imgs[0].caption.split(" ")[0].replace("\\", "")


def selection(at):
    """The card's accepted-tags box (its key changes with every card)."""
    [box] = [m for m in at.multiselect if m.label.startswith("Accepted tags")]
    return box


def progress(at) -> str:
    return at.get("progress")[0].proto.text


def test_steps_accept_reject_skip_back_undo(app, isolated_env, no_backend):
    store = seed(isolated_env)
    at = open_review(app)
    assert shown(at) == "a.jpg"  # nearest the threshold first
    assert selection(at).value == ["cat", "pet", "sofa"]  # the rule: >= 60 or the top 3
    assert [b.label for b in at.button if b.key.startswith("review_toggle_")][:2] == ["cat · 61", "pet · 45"]
    assert "Reviewed 0 of 4" in progress(at)

    at.button(key="review_toggle_2").click().run()  # key 2: pet off
    at.button(key="review_toggle_4").click().run()  # key 4: rug on
    assert selection(at).value == ["cat", "sofa", "rug"]
    at.button(key="review_accept").click().run()
    assert not at.exception and not at.error
    assert {it.tag: it.accepted for it in store.feedback_for("a", "embedded", "en")} == {
        "cat": True, "pet": False, "sofa": True, "rug": True}
    stored = store.verdict_set("a", "embedded", "en")
    assert (stored.provenance, stored.saved_by, stored.batch) == (REVIEWED, at.session_state["analyst_session"], "b1")
    assert shown(at) == "b.jpg" and "Reviewed 1 of 4" in progress(at) and "images per minute" in progress(at)

    at.button(key="review_reject").click().run()
    assert [it.accepted for it in store.feedback_for("b", "embedded", "en")] == [False, False, False]
    assert shown(at) == "c.jpg"
    at.button(key="review_skip").click().run()
    assert shown(at) == "d.jpg" and store.verdict_set("c", "embedded", "en").provenance == AUTOMATIC
    at.button(key="review_back").click().run()
    assert shown(at) == "c.jpg"
    at.button(key="review_back").click().run()
    assert shown(at) == "b.jpg" and selection(at).value == []  # as decided

    at.button(key="review_undo").click().run()  # the last verdict (b, rejected) goes back to automatic
    assert not at.exception and not at.error
    assert shown(at) == "b.jpg" and selection(at).value == ["car", "road", "sky"]
    assert store.verdict_set("b", "embedded", "en").provenance == AUTOMATIC
    assert store.feedback_for("b", "embedded", "en") == QUEUE["b"]
    assert "Reviewed 1 of 4" in progress(at)
    assert store.review_count() == 3 and no_backend == []


def test_every_image_once_then_done_and_tune_counts_them(app, isolated_env, no_backend):
    store = seed(isolated_env)
    at = open_review(app)
    for expected in ("a.jpg", "b.jpg", "c.jpg", "d.jpg"):
        assert shown(at) == expected
        at.button(key="review_accept").click().run()
    assert not at.exception
    assert "Nothing left to review" in texts(at.success) and "Reviewed 4 of 4" in progress(at)
    assert store.review_count() == 0 and store.provenance_counts() == {REVIEWED: 4, AUTOMATIC: 0}
    at.switch_page("pages/tune.py").run()
    assert "Based on **4 images** and **13 tag verdicts**" in texts(at.warning) + texts(at.success)
    assert no_backend == []


def test_order_and_filters(app, isolated_env):
    seed(isolated_env)
    seed(isolated_env, {"x": [FeedbackItem("boat", 90.0, True)]}, backend="imagga", batch="b2")
    at = open_review(app)
    assert shown(at) == "a.jpg"
    at.radio(key="review_order").set_value("newest").run()
    assert shown(at) == "x.jpg"
    at.radio(key="review_order").set_value("oldest").run()
    assert shown(at) == "a.jpg"
    at.selectbox(key="review_backend").set_value("imagga").run()
    assert shown(at) == "x.jpg" and "of 1" in progress(at)
    at.selectbox(key="review_backend").set_value("(any)").run()
    assert sorted(at.selectbox(key="review_batch").options) == ["(any)", "b1", "b2"]
    at.selectbox(key="review_batch").set_value("b1").run()
    assert "of 4" in progress(at)
    at.text_input(key="review_tag").input("tree").run()
    assert shown(at) == "c.jpg" and "of 1" in progress(at)
    at.text_input(key="review_tag").input("nothing-has-this").run()
    assert "Nothing left to review" in texts(at.success)
    at.radio(key="review_order").set_value("nearest").run()
    at.text_input(key="review_tag").input("").run()
    at.slider(key="review_threshold").set_value(75).run()  # nearest 75: d (80) first
    assert shown(at) == "d.jpg" and selection(at).value == ["cup", "desk", "pen"]
    assert at.session_state["threshold"] == 75  # shared with the Tag page


def test_only_suggested_tags_can_be_accepted(app, isolated_env):
    store = seed(isolated_env)
    at = open_review(app)
    at.session_state[f"review_selection_{at.session_state['review_shown']}"] = ["cat", "free text"]
    at.button(key="review_accept").click().run()
    assert not at.exception
    assert "Only suggested tags can be accepted" in texts(at.error) and "free text" in texts(at.error)
    assert store.verdict_set("a", "embedded", "en").provenance == AUTOMATIC and shown(at) == "a.jpg"
    assert selection(at).value == ["cat"]  # the unsuggested tag is dropped
    assert selection(at).options == ["cat", "pet", "sofa", "rug"]


def test_union_of_two_taggers_judged_once_saved_per_backend(app, isolated_env, no_backend):
    store = seed(isolated_env, {"a": QUEUE["a"]})
    cache = ResultCache(store)
    cache.put(IMAGGA_KEY, "a", "req", {"result": {"tags": [
        {"confidence": 70.0, "tag": {"en": "cat"}}, {"confidence": 66.0, "tag": {"en": "kitten"}}]}})
    at = open_review(app)
    assert selection(at).options == ["cat", "pet", "sofa", "rug"]
    at.toggle(key="review_union").set_value(True).run()
    assert not at.exception
    assert selection(at).options == ["cat", "kitten", "pet", "sofa", "rug"]
    assert selection(at).value == ["cat", "kitten", "pet", "sofa"]  # either rule's pick
    legend = texts(at.caption).replace("\\", "")  # shown literally: Markdown-escaped
    assert "A: Embedded tagger (offline) · B: Imagga API (answer in the result cache)" in legend
    assert [b.label for b in at.button if b.key == "review_toggle_1"] == ["cat · 61 | 70"]
    at.button(key="review_toggle_2").click().run()  # kitten off
    at.button(key="review_accept").click().run()
    assert not at.exception and not at.error
    assert {it.tag: it.accepted for it in store.feedback_for("a", "embedded", "en")} == {
        "cat": True, "pet": True, "sofa": True, "rug": False}
    assert {it.tag: it.accepted for it in store.feedback_for("a", "imagga", "en")} == {"cat": True, "kitten": False}
    assert store.verdict_set("a", "imagga", "en").provenance == REVIEWED
    assert [m.image_key for m in store.pending("imagga")] == ["a"]  # queued for Imagga, not sent
    at.button(key="review_undo").click().run()
    assert store.verdict_set("a", "imagga", "en") is None and store.pending("imagga") == []
    assert no_backend == []


def test_cached_answers_of_library_images_join_the_queue(app, isolated_env):
    store = Store(isolated_env)
    store.save_feedback(image_key="k", filename="k.jpg", source="Upload", backend="imagga", language="en",
                        threshold=60, min_tags=3, items=[FeedbackItem("cat", 90.0, True)], preview=jpeg((1, 2, 3)))
    ResultCache(store).put("embedded", "k", "req", {"result": {"tags": [{"confidence": 80.0, "tag": {"en": "cat"}}]}})
    at = open_review(app)
    assert "No image waits for review" in texts(at.info)
    at.button(key="review_add_cached").click().run()
    assert not at.exception
    assert "Added 1 saved answer to the queue" in texts(at.success)
    assert shown(at) == "k.jpg" and store.verdict_set("k", "embedded", "en").batch == CACHE_BATCH


def test_batch_page_offers_review_of_the_saved_batch(app, isolated_env):
    at = app()
    at.switch_page("pages/batch.py").run()
    at.file_uploader(key="batch_upload").set_value([("cat.jpg", CAT, "image/jpeg")]).run()
    at.button(key="batch_start").click().run()
    assert at.session_state["batch_job"].wait(60)
    at.run()
    assert "batch_review" not in [b.key for b in at.button]
    at.button(key="batch_save").click().run()
    batch = at.session_state["batch_meta"]["batch"]
    assert batch.endswith(f"· 1 images · {at.session_state['analyst_session']}")
    store = Store(isolated_env)
    [entry] = store.library_entries()
    assert store.verdict_set(entry.image_key, "embedded", "en").batch == batch
    assert store.preview(entry.image_key) != store.thumbnail(entry.image_key)  # a bigger view was stored
    at.button(key="batch_review").click().run()
    assert not at.exception
    assert at.selectbox(key="review_batch").value == batch and shown(at) == "cat.jpg"


def test_tune_page_links_the_queue_and_says_how_stable_the_recommendation_is(app, isolated_env):
    store = Store(isolated_env)
    for i in range(30):  # a clear cut at 50: accepted above, rejected below
        items = [FeedbackItem(f"t{j}", 10.0 + 10 * j, j >= 4) for j in range(9)]
        store.save_feedback(image_key=f"r{i}", filename=f"r{i}.jpg", source="Upload", backend="embedded",
                            language="en", threshold=60, min_tags=0, items=items)
    seed(isolated_env, {"a": QUEUE["a"]})
    at = app()
    at.switch_page("pages/tune.py").run()
    at.number_input(key="tune_min_tags").set_value(0).run()
    assert not at.exception
    assert any(link.proto.page.endswith("review.py") or "review" in link.proto.page for link in at.get("page_link"))
    assert "Stable: the recommendation stays at 45 in 90% of 200 resamples" in texts(at.success)
    assert "more verdicts are unlikely to change it" in texts(at.success)


def test_tune_page_says_still_moving_on_few_noisy_verdicts(app, isolated_env):
    store = Store(isolated_env)
    for i, cut in enumerate((20, 80, 35, 65, 50)):
        items = [FeedbackItem(f"t{j}", 10.0 * j, 10.0 * j >= cut) for j in range(1, 10)]
        store.save_feedback(image_key=f"r{i}", filename=f"r{i}.jpg", source="Upload", backend="embedded",
                            language="en", threshold=60, min_tags=0, items=items)
    at = app()
    at.switch_page("pages/tune.py").run()
    at.number_input(key="tune_min_tags").set_value(0).run()
    assert "Still moving: the recommendation moves between" in texts(at.warning)
    assert "Review more images" in texts(at.warning)


def test_a_key_before_the_image_is_on_screen_saves_nothing(app, isolated_env, monkeypatch):
    store = seed(isolated_env)
    at = open_review(app)
    monkeypatch.setattr("tagging.review.MIN_LOOK_SECONDS", 3600.0)  # every card is "just shown"
    at.button(key="review_accept").click().run()
    at.button(key="review_toggle_1").click().run()
    assert "before the image was on screen" in texts(at.info) and shown(at) == "a.jpg"
    assert selection(at).value == ["cat", "pet", "sofa"]  # the toggle was ignored too
    assert store.review_count() == 4
    monkeypatch.setattr("tagging.review.MIN_LOOK_SECONDS", 0.0)
    at.button(key="review_accept").click().run()
    assert shown(at) == "b.jpg" and store.review_count() == 3


def test_skipped_images_wait_at_the_end_and_can_be_gone_through_again(app, isolated_env):
    seed(isolated_env, {"a": QUEUE["a"], "b": QUEUE["b"]})
    at = open_review(app)
    at.button(key="review_skip").click().run()
    at.button(key="review_skip").click().run()
    assert "End of the queue: 2 images you skipped" in texts(at.info) and not at.get("image")
    at.button(key="review_again").click().run()
    assert not at.exception and shown(at) == "a.jpg"


# --- issue 18: the queue's end, blind review, missing tags, words, a reload ---------------------------
def test_an_image_without_tags_is_reached_in_the_default_order(app, isolated_env):
    """Issue 18 item 3: "1 left" but the end of the queue, counting a skip that never happened."""
    store = seed(isolated_env, {"a": QUEUE["a"]})
    store.save_feedback(image_key="empty", filename="empty.jpg", source="batch", backend="embedded", language="en",
                        threshold=60, min_tags=3, items=[], provenance=AUTOMATIC, batch="b1", preview=jpeg((0, 0, 9)))
    at = open_review(app)
    assert shown(at) == "a.jpg"
    at.button(key="review_accept").click().run()
    assert not at.exception and "End of the queue" not in texts(at.info)
    assert shown(at) == "empty.jpg" and selection(at).options == []
    at.text_input(key=f"review_missing_{at.session_state['review_shown']}").set_value("dog, red ball").run()
    at.button(key="review_accept").click().run()
    assert "Nothing left to review" in texts(at.success)
    saved = store.verdict_set("empty", "embedded", "en")
    assert (saved.provenance, saved.missing_tags, saved.review_mode) == (REVIEWED, ("dog", "red ball"), "prefilled")


def test_end_of_queue_counts_only_real_skips(app, isolated_env):
    seed(isolated_env, {"a": QUEUE["a"], "b": QUEUE["b"]})
    at = open_review(app)
    at.button(key="review_skip").click().run()
    at.button(key="review_accept").click().run()
    assert "End of the queue: 1 image you skipped still wait" in texts(at.info)
    at.button(key="review_again").click().run()
    assert shown(at) == "a.jpg"


def test_blind_review_prefills_nothing_and_the_caption_follows_the_toggles(app, isolated_env):
    store = seed(isolated_env)
    at = open_review(app)
    assert "pre-filled by the rule" in texts(at.caption)
    at.button(key="review_toggle_2").click().run()
    assert "pre-filled by the rule" not in texts(at.caption) and "changed by you" in texts(at.caption)
    at.toggle(key="review_blind").set_value(True).run()
    assert selection(at).value == [] and "blind review" in texts(at.caption)
    at.button(key="review_toggle_1").click().run()
    at.button(key="review_accept").click().run()
    assert store.verdict_set("a", "embedded", "en").review_mode == "blind"
    at.button(key="review_back").click().run()
    assert shown(at) == "a.jpg" and "You already decided this image" in texts(at.info)
    assert selection(at).value == ["cat"] and "as you decided it earlier" in texts(at.caption)


def test_a_reload_comes_back_to_the_same_review_with_its_undo(app, isolated_env):
    """Issue 18 item 4 (Review): progress and undo survive a reload; the filters are in the URL."""
    store = seed(isolated_env)
    at = open_review(app)
    at.selectbox(key="review_batch").set_value("b1").run()
    at.button(key="review_accept").click().run()
    assert shown(at) == "b.jpg" and "Reviewed 1 of 4" in progress(at)
    params = {k: at.query_params[k] for k in at.query_params}
    assert params["batch"] == ["b1"] or params["batch"] == "b1"
    again = app()
    for key, value in params.items():
        again.query_params[key] = value[0] if isinstance(value, list) else value
    again.switch_page(REVIEW).run()
    assert not again.exception
    assert again.selectbox(key="review_batch").value == "b1"
    assert shown(again) == "b.jpg" and "Reviewed 1 of 4" in progress(again)
    again.button(key="review_undo").click().run()
    assert shown(again) == "a.jpg" and store.verdict_set("a", "embedded", "en").provenance == AUTOMATIC
