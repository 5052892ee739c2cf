"""AppTest tests of the Tag page's Analysis view, offline and with Imagga (the loopback stand-in)."""

from __future__ import annotations

import json

import pytest

from tagging.analysis import ENDPOINTS
from tests.imagga_standin import TEST_API_KEY, TEST_API_SECRET, ImaggaStandin, serve


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def analysis_json(at) -> list[dict]:
    """The analysis answers shown as raw JSON (the tags' JSON comes first on the page)."""
    return [json.loads(j.proto.body) for j in at.json[1:]]


def test_offline_analysis_is_shown_on_request_and_stays_on(app):
    at = app().run()
    assert "tag_analysis_faces" not in [c.key for c in at.checkbox]  # nothing computed until asked for
    at.toggle(key="tag_analysis_on").set_value(True).run(timeout=60)
    assert "tag_analysis_faces" in [c.key for c in at.checkbox]
    at.selectbox(key="tag_sample").set_value("coffee.jpg").run(timeout=60)
    assert at.toggle(key="tag_analysis_on").value and "tag_analysis_faces" in [c.key for c in at.checkbox]
    at.switch_page("pages/library.py").run()
    at.switch_page("pages/tag.py").run(timeout=60)  # away and back: still on
    assert at.toggle(key="tag_analysis_on").value and "tag_analysis_faces" in [c.key for c in at.checkbox]


def test_offline_analysis_of_the_astronaut(app):
    at = app().run()
    at.toggle(key="tag_analysis_on").set_value(True).run(timeout=60)
    at.selectbox(key="tag_sample").set_value("astronaut.jpg").run(timeout=60)
    assert not at.exception and not at.error
    assert at.checkbox(key="tag_analysis_faces").label == "Faces (1)"
    assert at.checkbox(key="tag_analysis_objects").disabled  # the shipped tagger finds no objects
    answers = analysis_json(at)
    assert len(answers) == len(ENDPOINTS)
    faces, colors, text, crops = answers
    assert len(faces["result"]["faces"]) == 1
    assert colors["result"]["colors"]["image_colors"]
    assert [(c["target_width"], c["target_height"]) for c in crops["result"]["croppings"]] == [
        (1080, 1080), (1920, 1080), (1080, 1350)]
    labels = [b.label for b in at.get("download_button")]
    assert {"Download the square crop", "Download the 16:9 crop", "Download the 4:5 crop"} <= set(labels)
    colour_tables = [d.value for d in at.dataframe if "parent" in d.value.columns]
    assert len(colour_tables) == 3  # image, foreground, background
    assert list(colour_tables[0]["colour"]) == [c["closest_palette_color"] for c in colors["result"]["colors"][
        "image_colors"]]
    # Turning the face boxes off reruns the page without analysing again.
    at.checkbox(key="tag_analysis_faces").uncheck().run()
    assert not at.exception and analysis_json(at) == answers


@pytest.fixture
def standin(monkeypatch):
    with serve(ImaggaStandin()) as (server, base_url):
        monkeypatch.setenv("IMAGGA_API_KEY", TEST_API_KEY)
        monkeypatch.setenv("IMAGGA_API_SECRET", TEST_API_SECRET)
        monkeypatch.setenv("IMAGGA_API_URL", base_url)
        yield server


def analysis_requests(standin) -> int:
    return sum(standin.count(path=p) for p in ("/v2/faces/detections", "/v2/colors", "/v2/text", "/v2/croppings"))


def test_imagga_analysis_is_asked_on_demand_and_once(app, standin):
    at = app().run()
    at.selectbox(key="tag_sample").set_value("cat.jpg").run()
    assert not at.exception and not at.error
    assert analysis_requests(standin) == 0  # billed requests wait for the analyst
    at.button(key="tag_analysis_run").click().run()
    assert not at.exception and not at.error
    assert analysis_requests(standin) == 4
    faces, *_ = analysis_json(at)
    assert at.checkbox(key="tag_analysis_faces").label == f"Faces ({len(faces['result']['faces'])})"
    at.checkbox(key="tag_analysis_text").uncheck().run()
    at.slider(key="tag_threshold").set_value(30).run()
    assert analysis_requests(standin) == 4  # cached, never billed twice


def test_imagga_failure_is_a_message_and_the_rest_still_shows(app, standin):
    standin.fail("rate_limit", path="/v2/colors")
    at = app().run()
    at.selectbox(key="tag_sample").set_value("cat.jpg").run()
    at.button(key="tag_analysis_run").click().run()
    assert not at.exception
    assert any("Colours (Imagga API)" in e.value and "HTTP 429" in e.value for e in at.error)
    assert TEST_API_SECRET not in texts(at.error)
    assert len(analysis_json(at)) == 3
