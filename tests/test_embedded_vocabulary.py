"""The vocabulary table (generated, committed, rebuilt byte for byte) and the confidence calibration.

The rebuild test reads Debian's WordNet (``/usr/share/wordnet``, package wordnet-base, which scripts/test.sh
installs); it is skipped only where that is absent.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tagging.embedded._vocabulary import (
    SURE,
    Calibration,
    lift,
    load_vocabulary,
    normalised_entropy,
    vocabulary_from_table,
)
from tagging.errors import BackendError
from tests.conftest import ROOT

DATA = ROOT / "tagging" / "embedded" / "data"
TABLE = DATA / "imagenet-vocabulary.json"
LABELS = DATA / "imagenet-labels.json"
BUILD_SCRIPT = ROOT / "scripts" / "build_vocabulary.py"
WORDNET = Path("/usr/share/wordnet")
SHIPPED = Calibration(chance_weight=3.0, certainty_power=1.0)


@pytest.fixture(scope="module")
def vocabulary():
    return load_vocabulary(TABLE, 1000)


@pytest.fixture(scope="module")
def labels() -> list[str]:
    return [item["name"] for item in json.loads(LABELS.read_text("utf-8"))]


def load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_vocabulary", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_hot(labels: list[str], name: str) -> np.ndarray:
    p = np.zeros(1000)
    p[labels.index(name)] = 1.0
    return p


def tags(vocabulary, p: np.ndarray, calibration: Calibration = SHIPPED) -> dict[str, float]:
    conf = vocabulary.confidences(p, calibration)
    return {vocabulary.names[i]: float(conf[i]) for i in np.flatnonzero(conf >= 1.0)}


# --- the table ------------------------------------------------------------------------
@pytest.mark.skipif(not (WORDNET / "cntlist.rev").is_file(), reason="apt-get install wordnet-base")
def test_build_script_reproduces_committed_table(tmp_path):
    out = tmp_path / "vocabulary.json"
    subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--wordnet", str(WORDNET), "--labels", str(LABELS), "--out", str(out)],
        check=True, capture_output=True, text=True,
    )
    assert out.read_bytes() == TABLE.read_bytes()


def test_table_is_a_consistent_tree():
    table = json.loads(TABLE.read_text("utf-8"))
    terms, classes = table["terms"], table["classes"]
    assert len(classes) == 1000
    for term_id, term in terms.items():
        assert term["name"] and term["name"] == term["name"].lower(), term_id
        assert term["parent"] is None or term["parent"] in terms, term_id
        seen, node = set(), term_id
        while node is not None:
            assert node not in seen, f"cycle through {node}"
            seen.add(node)
            node = terms[node]["parent"]
    for index, entries in enumerate(classes):
        assert isinstance(entries[0], str) and not entries[0].startswith("x:"), index  # its WordNet leaf first
        for entry in entries:
            term_id, weight = (entry, 1.0) if isinstance(entry, str) else entry
            assert term_id in terms and 0 < weight <= 1, (index, entry)
    assert terms[classes[281][0]]["name"] == "tabby"
    build = load_build_script()
    assert not set(build.STOPLIST) & set(terms)


def test_no_taxonomy_internals_are_words(vocabulary):
    for word in ("vertebrate", "invertebrate", "placental", "arthropod", "spermatophyte", "angiosperm",
                 "vascular plant", "conveyance", "instrumentality", "chordate", "carnivore", "device", "entity"):
        assert word not in vocabulary.index, word
    for word in ("animal", "mammal", "dog", "cat", "bird", "insect", "vehicle", "food", "drink", "building",
                 "flower", "plant"):
        assert word in vocabulary.index, word


@pytest.mark.parametrize(("place", "words"), [
    ("alp", {"mountain", "landscape"}),
    ("seashore, coast, seacoast, sea-coast", {"beach", "sea", "coast", "water", "landscape"}),
    ("lakeside, lakeshore", {"lake", "water", "landscape"}),
    ("sandbar, sand bar", {"beach", "sand"}),
    ("volcano", {"mountain", "landscape"}),
    ("coral reef", {"sea", "water"}),
])
def test_scene_classes_bring_scene_words(vocabulary, labels, place, words):
    found = tags(vocabulary, one_hot(labels, place))
    assert words <= set(found)
    assert all(found[w] >= 99 for w in words)


def test_context_words_carry_their_weight(vocabulary, labels):
    bee = tags(vocabulary, one_hot(labels, "bee"))
    assert bee["bee"] >= 99 and bee["insect"] >= 99
    assert 70 <= bee["plant"] <= 90  # insects are photographed on plants, usually
    gown = tags(vocabulary, one_hot(labels, "military uniform"))
    assert 30 <= gown["person"] < 50  # a cue for a person, never alone a sure one
    assert tags(vocabulary, one_hot(labels, "golden retriever"))["pet"] >= 99


def test_same_name_terms_are_one_tag(vocabulary, labels):
    # Two WordNet synsets are called "crane" (the bird and the machine): one tag drawn from both classes.
    crane = vocabulary.index["crane"]
    assert {int(c) for c in vocabulary.pair_classes[vocabulary.pair_terms == crane]} >= {134, 517}


# --- calibration ----------------------------------------------------------------------
def test_raw_mass_without_calibration_is_the_summed_probability(vocabulary, labels):
    p = np.zeros(1000)
    p[labels.index("tabby, tabby cat")] = 0.5
    p[labels.index("Egyptian cat")] = 0.3
    p[labels.index("golden retriever")] = 0.2
    found = tags(vocabulary, p, Calibration())
    assert found["cat"] == pytest.approx(80.0)
    assert found["animal"] == pytest.approx(100.0)
    assert found["dog"] == pytest.approx(20.0)


def test_chance_correction_takes_diffuse_mass_off_broad_terms(vocabulary):
    uniform = np.full(1000, 1 / 1000)
    assert normalised_entropy(uniform) == pytest.approx(1.0)
    raw = tags(vocabulary, uniform, Calibration())
    assert raw["animal"] == pytest.approx(39.8, abs=0.5)  # 398 of the 1000 classes are animals
    corrected = tags(vocabulary, uniform, Calibration(chance_weight=3.0))
    assert corrected.get("animal", 0.0) < 1.0
    assert not [name for name, c in tags(vocabulary, uniform, SHIPPED).items() if c >= 5]


def test_certainty_discounts_objects_but_not_settings(vocabulary, labels):
    p = np.zeros(1000)
    for name in ("bee", "ant, emmet, pismire", "fly", "ladybug, ladybeetle, lady beetle, ladybird, ladybird beetle"):
        p[labels.index(name)] = 0.25
    u = normalised_entropy(p)
    assert 0.15 < u < 0.25
    found = tags(vocabulary, p, Calibration(certainty_power=1.0))
    assert found["insect"] == pytest.approx(100 * (1 - u), abs=0.1)  # an object: discounted
    assert found["nature"] == pytest.approx(100.0, abs=0.1)  # a setting: not
    one_hot_bee = tags(vocabulary, one_hot(labels, "bee"), SHIPPED)
    assert one_hot_bee["bee"] == pytest.approx(100.0)  # a sure answer is left alone


def test_parents_are_never_less_confident_than_children(vocabulary):
    rng = np.random.default_rng(7)
    for _ in range(20):
        p = rng.dirichlet(np.full(1000, 0.05))
        conf = vocabulary.confidences(p, SHIPPED)
        for child, parent in enumerate(vocabulary.parents):
            if parent >= 0:
                assert conf[parent] >= conf[child] - 1e-9, (vocabulary.names[child], vocabulary.names[parent])


def test_lift_stretches_from_the_trusted_start_onto_the_sure_range_and_keeps_the_order():
    c = np.linspace(0.0, 100.0, 1001)
    lifted = lift(c, 20.0)
    assert np.all(np.diff(lifted) > 0)  # monotone: a trusted term's order is kept
    at = dict(zip(c.round(1), lifted, strict=True))
    assert at[20.0] == pytest.approx(SURE) and at[100.0] == pytest.approx(100.0)
    assert at[60.0] == pytest.approx(80.0)  # [20, 100] onto [60, 100]
    assert at[15.0] == pytest.approx(35.0)  # [10, 20) onto [10, 60)
    assert at[10.0] == pytest.approx(10.0) and at[4.0] == pytest.approx(4.0)  # lower: unchanged
    assert np.array_equal(lift(c, 0.0), c) and np.array_equal(lift(c, 60.0), c)  # off, or nothing to stretch


def test_only_trusted_terms_are_lifted_and_parents_still_follow(vocabulary, labels):
    p = np.zeros(1000)
    for name in ("bee", "ant, emmet, pismire", "fly", "daisy", "tabby, tabby cat"):
        p[labels.index(name)] = 0.2
    base = vocabulary.confidences(p, SHIPPED)
    trusting = Calibration(SHIPPED.chance_weight, SHIPPED.certainty_power, trusted=("insect", "no such word"),
                           trusted_from=20.0)
    conf = vocabulary.confidences(p, trusting)
    i = vocabulary.index
    assert 20.0 <= base[i["insect"]] < SURE <= conf[i["insect"]]
    assert conf[i["insect"]] == pytest.approx(float(lift(np.array([base[i["insect"]]]), 20.0)[0]))
    assert conf[i["animal"]] >= conf[i["insect"]]  # a parent is still at least its child
    unrelated = [n for n in ("cat", "flower", "bee") if n in i]
    assert unrelated and all(conf[i[n]] == pytest.approx(base[i[n]]) for n in unrelated)


def test_a_table_that_does_not_fit_the_model_is_refused(tmp_path):
    with pytest.raises(BackendError, match="describes 1000 classes, the model has 10"):
        load_vocabulary(TABLE, 10)
    broken = tmp_path / "broken.json"
    broken.write_text('{"terms": {"a": {"name": "a", "parent": "missing"}}, "classes": [["a"]]}')
    with pytest.raises(BackendError, match="unknown parent"):
        load_vocabulary(broken, 1)
    with pytest.raises(ValueError, match="cycle"):
        vocabulary_from_table({"terms": {"a": {"name": "a", "parent": "b"}, "b": {"name": "b", "parent": "a"}},
                               "classes": [["a"]]}, 1)
