"""Tests of the offline tagger (tagging/embedded.py) and its hypernym table.

The table test rebuilds ``tagging/embedded/data/hypernyms.json`` from Debian's WordNet
(``/usr/share/wordnet/data.noun``, package wordnet-base, which CI installs); it is
skipped only where that file is absent.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageOps

from tagging.embedded import MAX_TAGS, MIN_CONFIDENCE, EmbeddedTagger, face_confidence
from tagging.errors import BadImageError
from tagging.parse import parse_tags

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE_NAMES = ("cat", "coffee", "astronaut", "rocket")
TABLE = ROOT / "tagging" / "embedded" / "data" / "hypernyms.json"
BUILD_SCRIPT = ROOT / "scripts" / "build_hypernyms.py"
DATA_NOUN = Path("/usr/share/wordnet/data.noun")


@pytest.fixture(scope="module")
def tagger() -> EmbeddedTagger:
    return EmbeddedTagger()


@pytest.fixture(scope="module")
def images() -> dict[str, Image.Image]:
    loaded = {}
    for name in SAMPLE_NAMES:
        with Image.open(SAMPLES / f"{name}.jpg") as image:
            loaded[name] = ImageOps.exif_transpose(image).convert("RGB")
    return loaded


@pytest.fixture(scope="module")
def responses(tagger: EmbeddedTagger, images: dict[str, Image.Image]) -> dict[str, dict[str, Any]]:
    return {name: tagger.tag(image) for name, image in images.items()}


def confidences(response: dict[str, Any]) -> dict[str, float]:
    return {item["tag"]["en"]: item["confidence"] for item in response["result"]["tags"]}


def load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_hypernyms", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- what the samples are tagged with -------------------------------------------------
def test_cat_is_a_cat(responses):
    assert confidences(responses["cat"])["cat"] >= 60


def test_coffee_is_coffee(responses):
    tags = confidences(responses["coffee"])
    assert any(("coffee" in name or "espresso" in name) and c >= 60 for name, c in tags.items()), tags


def test_astronaut_is_a_person_with_a_face(responses):
    tags = {item["tag"]["en"]: item for item in responses["astronaut"]["result"]["tags"]}
    assert "person" in tags
    assert tags["face"]["parent"] == {"en": "person"}
    assert "parent" not in tags["person"]
    assert "people" not in tags


@pytest.mark.parametrize("name", ["cat", "coffee", "rocket"])
def test_no_person_without_a_face(responses, name):
    tags = confidences(responses[name])
    assert not {"person", "face", "people"} & set(tags)


def test_two_faces_are_people(tagger, images):
    astronaut = images["astronaut"]
    pair = Image.new("RGB", (astronaut.width * 2, astronaut.height))
    pair.paste(astronaut, (0, 0))
    pair.paste(astronaut, (astronaut.width, 0))
    assert len(tagger.detect_faces(pair)) == 2
    tags = confidences(tagger.tag(pair))
    assert {"person", "face", "people"} <= set(tags)
    assert tags["people"] <= tags["person"]


# --- response shape -------------------------------------------------------------------
@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_response_is_imagga_shaped(responses, name):
    response = responses[name]
    assert set(response) == {"result", "status"}
    assert response["status"] == {"text": "", "type": "success"}
    assert set(response["result"]) == {"tags"}
    tags = response["result"]["tags"]
    assert isinstance(tags, list) and 0 < len(tags) <= MAX_TAGS
    for item in tags:
        assert set(item) in ({"confidence", "tag"}, {"confidence", "tag", "parent"})
        assert type(item["confidence"]) is float
        assert MIN_CONFIDENCE <= item["confidence"] <= 100.0
        assert item["confidence"] == round(item["confidence"], 4)
        assert set(item["tag"]) == {"en"} and isinstance(item["tag"]["en"], str) and item["tag"]["en"]
        if "parent" in item:
            assert set(item["parent"]) == {"en"} and isinstance(item["parent"]["en"], str)
            assert item["parent"]["en"] and item["parent"]["en"] != item["tag"]["en"]
    values = [item["confidence"] for item in tags]
    assert values == sorted(values, reverse=True)
    names = [item["tag"]["en"] for item in tags]
    assert len(names) == len(set(names))
    # Plain JSON types only (no numpy floats), and the app's parser accepts it unchanged.
    assert json.loads(json.dumps(response)) == response
    assert [t.name for t in parse_tags(response)] == names


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_parent_is_at_least_as_confident_as_child(responses, name):
    tags = responses[name]["result"]["tags"]
    by_name = confidences(responses[name])
    with_parent_listed = [item for item in tags if item.get("parent", {}).get("en") in by_name]
    assert with_parent_listed  # the check below is not vacuous
    for item in with_parent_listed:
        assert by_name[item["parent"]["en"]] >= item["confidence"], item


def test_parent_listed_before_child_of_equal_confidence(responses):
    names = [item["tag"]["en"] for item in responses["coffee"]["result"]["tags"]]
    # espresso is the only ImageNet class under coffee, so both get the same confidence.
    assert names.index("beverage") < names.index("coffee") < names.index("espresso")


def test_batch_matches_one_at_a_time(tagger, images, responses):
    batch = tagger.tag_batch([images[name] for name in SAMPLE_NAMES])
    assert len(batch) == len(SAMPLE_NAMES)
    for name, response in zip(SAMPLE_NAMES, batch, strict=True):
        single, batched = confidences(responses[name]), confidences(response)
        # A tag right at the floor could fall either side of it; none of the samples has one.
        assert set(single) == set(batched), name
        for tag, value in single.items():
            assert batched[tag] == pytest.approx(value, abs=1e-3), (name, tag)


def test_empty_batch(tagger):
    assert tagger.tag_batch([]) == []


def test_other_modes_are_converted(tagger, images):
    gray = confidences(tagger.tag(images["cat"].convert("L")))
    assert gray["cat"] >= 60
    assert confidences(tagger.tag(images["coffee"].convert("RGBA")))["coffee"] >= 60


def test_truncated_image_is_a_bad_image(tagger):
    data = (SAMPLES / "cat.jpg").read_bytes()
    image = Image.open(io.BytesIO(data[: len(data) // 3]))
    with pytest.raises(BadImageError):
        tagger.tag(image)


def test_floor_and_cap_are_configurable(images):
    small = EmbeddedTagger(min_confidence=20.0, max_tags=3, detect_faces=False)
    tags = small.tag(images["astronaut"])["result"]["tags"]
    assert 0 < len(tags) <= 3
    assert all(item["confidence"] >= 20.0 for item in tags)
    assert "person" not in {item["tag"]["en"] for item in tags}


def test_face_confidence_mapping_is_monotonic_and_bounded():
    values = [face_confidence(w / 4) for w in range(-40, 80)]
    assert all(0.0 <= v <= 100.0 for v in values)
    assert all(a < b for a, b in itertools.pairwise(values))
    assert face_confidence(3.0) == pytest.approx(50.0)


# --- the hypernym table ---------------------------------------------------------------
def test_hypernym_table_is_a_consistent_tree():
    table = json.loads(TABLE.read_text("utf-8"))
    nodes, leaves = table["nodes"], table["leaves"]
    assert len(leaves) == 1000 and len(set(leaves)) == 1000
    assert set(leaves) <= set(nodes)
    for offset, node in nodes.items():
        assert node["name"] and node["name"] == node["name"].lower(), offset
        assert node["parent"] is None or node["parent"] in nodes, offset
    for offset in nodes:
        seen = set()
        while offset is not None:
            assert offset not in seen, f"cycle through {offset}"
            seen.add(offset)
            offset = nodes[offset]["parent"]
    # Every node is on the path from some leaf to its root: nothing dangles.
    reachable = set()
    for leaf in leaves:
        offset = leaf
        while offset is not None:
            reachable.add(offset)
            offset = nodes[offset]["parent"]
    assert reachable == set(nodes)
    # No leaf is another leaf's ancestor.
    parents = {node["parent"] for node in nodes.values()}
    assert not parents & set(leaves)
    assert not set(load_build_script().STOPLIST) & set(nodes)
    assert nodes[leaves[281]]["name"] == "tabby"


def test_hypernym_table_is_small():
    assert TABLE.stat().st_size < 300_000


@pytest.mark.skipif(not DATA_NOUN.is_file(), reason=f"{DATA_NOUN} absent (apt-get install wordnet-base)")
def test_build_script_reproduces_committed_table(tmp_path):
    out = tmp_path / "hypernyms.json"
    subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), str(DATA_NOUN), "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert out.read_text("utf-8") == TABLE.read_text("utf-8")


def test_predict_returns_one_distribution_per_image(tagger, images):
    batch = [tagger.preprocess(images[name]) for name in ("cat", "coffee")]
    probabilities = tagger.predict(np.stack(batch))
    assert probabilities.shape == (2, 1000)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities >= 0).all()
