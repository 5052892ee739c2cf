"""Tune's numbers from SQL aggregates equal the Python metrics over the verdicts, on random data (both databases)."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest

from tagging import metrics
from tagging.store import AUTOMATIC, FeedbackItem, Store

VOCABULARY = [f"t{j}" for j in range(12)]


def random_library(store: Store, rng: random.Random, images: int, backend: str = "embedded") -> None:
    """Images with 0..9 verdicts each; confidences with ties and whole numbers; a few automatic sets."""
    for k in range(images):
        tags = rng.sample(VOCABULARY, rng.randint(0, 9))
        items = []
        for tag in tags:
            confidence = rng.choice([rng.uniform(0, 100), float(rng.randint(0, 100)), 50.0, 100.0, 0.0])
            items.append(FeedbackItem(tag, confidence, rng.random() < 0.5))
        store.save_feedback(image_key=f"img{rng.randint(0, 10**6):07d}-{k}", filename=f"{k}.jpg", source="Upload",
                            backend=backend, language="en", threshold=60, min_tags=3, items=items,
                            provenance=AUTOMATIC if rng.random() < 0.15 else "reviewed")


def assert_same_stats(expected: pd.DataFrame, got: pd.DataFrame) -> None:
    assert list(got["tag"]) == list(expected["tag"])
    for column in ("suggested", "accepted", "rejected", "best_threshold"):
        assert got[column].tolist() == expected[column].tolist(), column
    assert np.allclose(got["mean_confidence"], expected["mean_confidence"], rtol=1e-12, atol=0)
    assert np.array_equal(got["best_f1"].to_numpy(), expected["best_f1"].to_numpy(), equal_nan=True)


CASES = [  # (min_tags, overrides, threshold of the per-tag table)
    (0, {}, 60), (3, {}, 60), (5, {}, 0), (3, {"t1": 70.0, "t2": 20.5}, 45), (2, {"t0": 0.0, "t3": 100.0}, 100),
    (9, {"t4": 55.0}, 80),
]


@pytest.mark.parametrize("seed", [1, 2])
def test_aggregates_equal_the_python_metrics_on_random_data(db_target, seed):
    rng = random.Random(seed)
    store = Store(db_target)
    random_library(store, rng, 60)
    random_library(store, rng, 5, backend="imagga")  # another backend never leaks in
    feedback = store.feedback_by_image("embedded", "en")
    for min_tags, overrides, threshold in CASES:
        data = metrics.Aggregated(store.tune_rows("embedded", "en", min_tags, overrides))
        keys, counts = metrics.image_counts(feedback, min_tags, overrides)
        assert data.rows.images == len(keys)
        assert np.array_equal(data.image_counts(), counts), (min_tags, overrides)
        pd.testing.assert_frame_equal(data.curve(), metrics.threshold_curve(feedback, min_tags, overrides))
        assert data.evidence() == metrics.evidence(feedback)
        assert_same_stats(metrics.tag_stats(feedback, threshold, min_tags, overrides), data.tag_stats(threshold))
        for method, target in ((metrics.BEST_F1, None), (metrics.TARGET_PRECISION, 0.6)):
            assert data.stability(method, target) == metrics.threshold_stability(
                feedback, min_tags, overrides, method, target)


def test_aggregates_of_no_feedback(db_target):
    store = Store(db_target)
    data = metrics.Aggregated(store.tune_rows("embedded", "en", 3))
    assert data.rows.images == 0 and data.evidence() == metrics.evidence({})
    pd.testing.assert_frame_equal(data.curve(), metrics.threshold_curve({}, 3))
    assert data.tag_stats(60).empty
    stability = data.stability()
    assert stability.threshold is None and stability.resamples == 0 and math.isnan(stability.within)


def test_large_libraries_resample_through_the_normal_approximation_of_the_same_bootstrap(monkeypatch):
    rng = np.random.default_rng(4)
    images, events = 3000, 21000
    rows = metrics.TuneRows(
        images, rng.integers(0, 3, (images, 2)), rng.integers(3, 9, (images, 2)) + 3,
        np.sort(rng.integers(0, images, events)), rng.integers(0, 2, events), rng.integers(0, 100, events),
        rng.choice([-1, 1, 1, 2], events), (), np.zeros((0, 5), dtype=np.int64), np.zeros(0, dtype=np.int64),
        np.zeros(0), np.zeros(0))
    data = metrics.Aggregated(rows)
    exact = data.resampled_counts(400)
    monkeypatch.setattr(metrics, "EXACT_BOOTSTRAP_IMAGES", 100)
    normal = metrics.Aggregated(rows).resampled_counts(400)
    assert not np.array_equal(normal, exact)  # the other method ran
    assert np.allclose(normal.mean(axis=0), data.totals(), atol=4 * exact.std(axis=0).max() / np.sqrt(400))
    assert np.allclose(normal.std(axis=0), exact.std(axis=0), rtol=0.2, atol=1)
