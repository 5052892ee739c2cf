"""Another offline model is a file, not code: a second manifest built here runs through the same tagger.

The second model is a tiny ONNX classifier made with ``onnx.helper``: it averages the image's colour and scores
four colour prototypes. Everything about it differs from the shipped model (input size, NHWC layout, BGR
order, 0-1 scaling, squash resize, its own vocabulary with a hierarchy, no faces), so the manifest fields are
really read, not defaulted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tagging.backends import EMBEDDED, EmbeddedBackend, embedded_backend_id
from tagging.embedded import DEFAULT_MANIFEST_ID, EmbeddedTagger, ManifestError, list_manifests, load_manifest
from tagging.errors import BackendError
from tests.conftest import tag_names

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

# Prototype colours in BGR order (the model sees BGR), scaled to 0-1.
COLOURS = {"red": (0.1, 0.1, 0.9), "orange": (0.1, 0.5, 0.95), "blue": (0.9, 0.2, 0.1), "green": (0.1, 0.8, 0.1)}
SIZE = 16


def build_colour_model(path: Path) -> None:
    """(N, 16, 16, 3) BGR in 0-1 -> mean colour -> minus squared distance to each prototype, times 20."""
    prototypes = np.array(list(COLOURS.values()), dtype=np.float32)  # (4, 3)
    nodes = [
        helper.make_node("ReduceMean", ["image", "axes"], ["mean"], keepdims=0),  # (N, 3)
        helper.make_node("Unsqueeze", ["mean", "one"], ["mean3"]),  # (N, 1, 3)
        helper.make_node("Sub", ["mean3", "prototypes"], ["diff"]),  # (N, 4, 3)
        helper.make_node("Mul", ["diff", "diff"], ["squared"]),
        helper.make_node("ReduceSum", ["squared", "two"], ["distance"], keepdims=0),  # (N, 4)
        helper.make_node("Mul", ["distance", "minus_twenty"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes, "colours",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", SIZE, SIZE, 3])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", len(COLOURS)])],
        initializer=[
            numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "axes"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "one"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "two"),
            numpy_helper.from_array(prototypes[None], "prototypes"),
            numpy_helper.from_array(np.array(-20.0, dtype=np.float32), "minus_twenty"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


@pytest.fixture
def colour_manifest(tmp_path: Path) -> Path:
    build_colour_model(tmp_path / "colours.onnx")
    vocabulary = {
        "terms": {
            "warm": {"name": "warm colour", "parent": None},
            "cool": {"name": "cool colour", "parent": None},
            "red": {"name": "red", "parent": "warm"}, "orange": {"name": "orange", "parent": "warm"},
            "blue": {"name": "blue", "parent": "cool"}, "green": {"name": "green", "parent": "cool"},
        },
        "classes": [["red"], ["orange"], ["blue"], ["green"]],
    }
    (tmp_path / "colours-vocabulary.json").write_text(json.dumps(vocabulary))
    manifest = {
        "id": "colours", "title": "Four colours (test model)", "model": "colours.onnx",
        "input": {"name": "image", "width": SIZE, "height": SIZE, "resize": "squash", "channel_order": "BGR",
                  "layout": "NHWC", "scale": 1 / 255, "mean": [0, 0, 0], "std": [1, 1, 1]},
        "output": {"name": "scores", "activation": "softmax"},
        "vocabulary": "colours-vocabulary.json", "faces": False, "min_confidence": 1.0,
    }
    path = tmp_path / "colours.manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def names(response: dict) -> list[str]:
    return [item["tag"]["en"] for item in response["result"]["tags"]]


def test_a_second_manifest_tags_with_its_own_model_and_words(colour_manifest):
    tagger = EmbeddedTagger(colour_manifest)
    assert tagger.manifest.id == "colours" and tagger.num_classes == 4 and tagger.faces is None
    red = tagger.tag(Image.new("RGB", (300, 200), (230, 25, 25)))
    tags = {item["tag"]["en"]: item for item in red["result"]["tags"]}
    assert names(red)[:2] == ["warm colour", "red"]
    assert tags["red"]["parent"] == {"en": "warm colour"} and tags["red"]["confidence"] > 60
    blue = tagger.tag(Image.new("RGB", (20, 40), (25, 50, 230)))
    assert names(blue)[:2] == ["cool colour", "blue"]
    # Several images in one pass, each with its own answer.
    batch = tagger.tag_batch([Image.new("RGB", (8, 8), (240, 120, 20)), Image.new("RGB", (8, 8), (20, 200, 20))])
    assert [names(r)[1] for r in batch] == ["orange", "green"]
    tagger.close()


def test_a_manifest_with_plain_labels(colour_manifest):
    data = json.loads(colour_manifest.read_text())
    del data["vocabulary"]
    data["labels"] = "colours.txt"
    data["id"] = "colours-flat"
    (colour_manifest.parent / "colours.txt").write_text("red\norange\nblue\ngreen\n")
    flat = colour_manifest.parent / "colours-flat.manifest.json"
    flat.write_text(json.dumps(data))
    tagger = EmbeddedTagger(flat)
    assert names(tagger.tag(Image.new("RGB", (10, 10), (230, 25, 25))))[0] == "red"
    (colour_manifest.parent / "colours.txt").write_text("red\norange\n")
    with pytest.raises(BackendError, match="2 names, the model has 4 classes"):
        EmbeddedTagger(flat)
    tagger.close()


def test_manifests_are_listed_from_the_models_folder(colour_manifest, monkeypatch):
    monkeypatch.setenv("TAGGING_MODELS_DIR", str(colour_manifest.parent))
    (colour_manifest.parent / "broken.manifest.json").write_text("{not json")
    found = list_manifests()
    assert [m.id for m in found][:1] == [DEFAULT_MANIFEST_ID]  # the shipped model first
    assert "colours" in [m.id for m in found]  # the broken file is skipped, not fatal
    assert next(m for m in found if m.id == "colours").title == "Four colours (test model)"
    # By id, as the app asks for it.
    assert EmbeddedTagger("colours").manifest.model == colour_manifest.parent / "colours.onnx"


def test_backend_ids_tell_models_apart(colour_manifest, monkeypatch):
    monkeypatch.setenv("TAGGING_MODELS_DIR", str(colour_manifest.parent))
    assert EmbeddedBackend().backend_id == EMBEDDED == "embedded"
    assert EmbeddedBackend(manifest=DEFAULT_MANIFEST_ID).backend_id == "embedded"
    assert EmbeddedBackend(manifest="colours").backend_id == "embedded:colours"
    assert EmbeddedBackend(manifest=colour_manifest).backend_id == "embedded:colours"
    assert embedded_backend_id(None) == "embedded" and embedded_backend_id("x") == "embedded:x"
    backend = EmbeddedBackend(manifest=colour_manifest)
    assert backend.tagger.manifest.id == "colours"


def test_a_changed_model_file_is_refused(colour_manifest):
    data = json.loads(colour_manifest.read_text())
    data["sha256"] = "0" * 64
    colour_manifest.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="sha256 differs"):
        EmbeddedTagger(colour_manifest)


@pytest.mark.parametrize(("change", "message"), [
    ({"id": "no spaces allowed"}, "id"),
    ({"input": {"width": 16}}, "height"),
    ({"output": {"name": "scores", "activation": "relu"}}, "activation"),
    ({"labels": "colours.txt"}, "exactly one of labels and vocabulary"),
    ({"input": {"name": "image", "width": 16, "height": 16, "resize": "stretch"}}, "resize"),
    ({"calibration": {"trusted": "nature"}}, "calibration.trusted must be a list of words"),
])
def test_invalid_manifests_say_what_is_wrong(colour_manifest, change, message):
    data = json.loads(colour_manifest.read_text())
    data.update(change)
    colour_manifest.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=message):
        load_manifest(colour_manifest)


def test_a_missing_model_or_unknown_id_is_a_clear_error(colour_manifest):
    (colour_manifest.parent / "colours.onnx").unlink()
    with pytest.raises(ManifestError, match="colours.onnx of manifest 'colours' is missing"):
        EmbeddedTagger(colour_manifest)
    with pytest.raises(ManifestError, match="No model manifest with id 'nope'"):
        EmbeddedTagger("nope")


def test_a_model_whose_input_name_differs_is_refused(colour_manifest):
    data = json.loads(colour_manifest.read_text())
    data["input"]["name"] = "pixels"
    colour_manifest.write_text(json.dumps(data))
    with pytest.raises(BackendError, match="its manifest names 'pixels'"):
        EmbeddedTagger(colour_manifest)


def test_tag_page_offers_the_models_and_keeps_their_results_apart(app, colour_manifest, monkeypatch):
    monkeypatch.setenv("TAGGING_MODELS_DIR", str(colour_manifest.parent))
    at = app().run()
    assert not at.exception
    picker = at.selectbox(key="tag_manifest")
    assert picker.value == DEFAULT_MANIFEST_ID and "Four colours (test model)" in picker.options
    assert "cat" in tag_names(at.multiselect(key="tag_selection"))
    picker.set_value("colours").run()
    assert not at.exception and not at.error
    options = tag_names(at.multiselect(key="tag_selection"))
    assert set(options) <= {"warm colour", "cool colour", "red", "orange", "blue", "green"}
    at.selectbox(key="tag_manifest").set_value(DEFAULT_MANIFEST_ID).run()
    assert "cat" in tag_names(at.multiselect(key="tag_selection"))


def test_tag_page_without_extra_models_shows_no_picker(app):
    at = app().run()
    assert not at.exception
    assert not [s for s in at.selectbox if s.key == "tag_manifest"]


def test_compare_page_puts_a_second_model_beside_the_shipped_one(app, colour_manifest, monkeypatch):
    monkeypatch.setenv("TAGGING_MODELS_DIR", str(colour_manifest.parent))
    at = app()
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    tagger_b = at.selectbox(key="compare_b_tagger")
    assert "Four colours (test model)" in tagger_b.options  # offered by its title
    tagger_b.set_value("embedded:colours").run()
    assert not at.exception and not at.error
    # A's and B's tag tables, in page order (AppTest does not expose keys of read-only tables).
    tags_a, tags_b = [d.value for d in at.dataframe if "selected" in d.value.columns][:2]
    assert "cat" in set(tags_a["tag"])  # the shipped model on the cat sample
    assert set(tags_b["tag"]) <= {"warm colour", "cool colour", "red", "orange", "blue", "green"}
    # No tag in common: the selected sets are disjoint, so the Jaccard index is 0.
    assert not set(tags_a["tag"]) & set(tags_b["tag"])
