"""Whole-picture words, the object detector's decoding, and the never-empty answer (issue 17)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tagging.embedded._objects import BINS, COCO_CLASSES, DetectedObject, decode, suppress
from tagging.embedded._picture import COLOUR_CAP, picture_words
from tagging.embedded._tagger import NEVER_FEWER, EmbeddedTagger, object_json

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def solid(rgb: tuple[int, int, int], size: int = 32) -> np.ndarray:
    return np.tile(np.array(rgb, dtype=np.float32), (size, size, 1))


def test_grey_picture_is_black_and_white_and_nothing_else():
    ramp = np.repeat(np.linspace(0, 255, 32, dtype=np.float32)[:, None], 32, axis=1)
    words = picture_words(np.stack([ramp] * 3, axis=-1))
    assert set(words) == {"black and white", "monochrome"}
    assert 0 < words["monochrome"] <= words["black and white"] < 60  # a suggestion, below the default threshold


def test_colour_names_are_capped_suggestions():
    half = np.concatenate([solid((20, 160, 40), 16), solid((30, 60, 200), 16)], axis=0)
    words = picture_words(half)
    assert set(words) >= {"green", "blue"} and "black and white" not in words
    assert all(value <= COLOUR_CAP for value in words.values())


def test_orange_hues_are_not_named():
    # Browns and oranges (wood, fur, autumn leaves) were mostly called wrongly "orange"; the fruit shares the name.
    assert "orange" not in picture_words(solid((230, 120, 20)))


def test_decode_reads_the_distance_distributions():
    grid = 13
    scores = np.zeros((grid * grid, len(COCO_CLASSES)), dtype=np.float32)
    cell = 6 * grid + 4  # row 6, column 4
    scores[cell, COCO_CLASSES.index("dog")] = 0.8
    distances = np.full((grid * grid, 4 * BINS), -50.0, dtype=np.float32)
    for side, steps in enumerate((1, 2, 3, 4)):  # a sharp distribution: exactly ``steps`` cells each way
        distances[cell, side * BINS + steps] = 50.0
    (found,) = decode(scores, distances, grid, min_score=0.5)
    assert found.label == "dog" and found.score == pytest.approx(0.8)
    expected = ((4 - 1) / grid, (6 - 2) / grid, (4 + 3) / grid, (6 + 4) / grid)
    assert found.box == pytest.approx(expected, abs=1e-5)
    assert decode(scores, distances, grid, min_score=0.9) == []


def test_suppress_keeps_the_best_of_overlapping_boxes_per_class():
    a = DetectedObject("person", 0.9, (0.1, 0.1, 0.5, 0.9))
    b = DetectedObject("person", 0.6, (0.12, 0.1, 0.5, 0.88))
    c = DetectedObject("bus", 0.5, (0.1, 0.1, 0.5, 0.9))  # same place, another class: kept
    d = DetectedObject("person", 0.4, (0.6, 0.1, 0.9, 0.9))  # another person: kept
    assert suppress([b, d, a, c]) == [a, c, d]


def test_object_json_is_imaggas_shape_in_pixels():
    found = object_json(DetectedObject("sports ball", 0.5, (0.25, 0.5, 0.75, 1.0)), (400, 200))
    assert found == {
        "tag": {"en": "ball"},
        "confidence": 50.0,
        "coordinates": {"xmin": 100, "ymin": 100, "xmax": 300, "ymax": 200, "width": 200, "height": 100},
    }


def test_answer_is_never_empty():
    tagger = EmbeddedTagger(detect_faces=False)
    uniform = np.full(tagger.num_classes, 1.0 / tagger.num_classes)
    # A model that knows nothing: every calibrated confidence is ~0, yet the best terms still come back, low.
    tags = tagger.response(uniform, [])["result"]["tags"]
    assert len(tags) == NEVER_FEWER
    assert all(0 < item["confidence"] < tagger.min_confidence for item in tags)
    tagger.close()


def test_objects_manifest_puts_boxes_beside_the_tags():
    from PIL import Image

    from tagging.embedded import list_manifests

    optional = SAMPLES.parent / "models" / "optional"
    assert "efficientnet-lite0-objects" not in {m.id for m in list_manifests()}  # off unless asked for
    assert "efficientnet-lite0-objects" in {m.id for m in list_manifests([optional])}
    tagger = EmbeddedTagger(optional / "efficientnet-lite0-objects.manifest.json")
    with Image.open(SAMPLES / "astronaut.jpg") as raw:
        image = raw.convert("RGB")
    result = tagger.tag(image)["result"]
    tagger.close()
    people = [found for found in result["objects"] if found["tag"]["en"] == "person"]
    assert people  # the astronaut: a person, with a box inside the picture
    for found in people:
        box = found["coordinates"]
        assert 0 <= box["xmin"] < box["xmax"] <= image.width and 0 <= box["ymin"] < box["ymax"] <= image.height
    assert "objects" not in EmbeddedTagger(detect_faces=False).tag(image)["result"]  # the shipped model: off


def test_views_are_the_whole_its_centre_and_the_ends():
    from PIL import Image

    from tagging.embedded._tagger import crops

    image = Image.new("RGB", (400, 200))
    views = crops(image, 4)
    assert [v.size for v in views] == [(400, 200), (140, 140), (200, 200), (200, 200)]
    assert crops(image, 1) == [image]
    tagger = EmbeddedTagger(detect_faces=False, views=3)
    assert tagger._prepare([image, image]).shape[0] == 6  # three views of each
    tagger.close()
