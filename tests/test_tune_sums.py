"""Tune's sums kept at save time equal the sums of a full computation after any sequence of writes (both databases)."""

from __future__ import annotations

import random
import threading

import numpy as np
import pandas as pd
import pytest

from tagging import metrics
from tagging.store import AUTOMATIC, BLIND, MIGRATIONS, PREFILLED, REVIEWED, FeedbackItem, Store
from tagging.store import _schema as s
from tagging.store._tune import UNRECORDED, sums_of
from tests.test_aggregates import VOCABULARY, assert_same_stats
from tests.test_store import sql

MIGRATION = next(m for m in MIGRATIONS if m.apply is s._v12_tune_sums)
MODES = (None, PREFILLED, BLIND, UNRECORDED)


def assert_sums_match(store: Store, backend: str = "embedded", language: str = "en") -> None:
    """The kept sums equal those of ``tune_rows`` (the full window query) for every review-mode filter."""
    overrides = store.tag_overrides()
    for mode in MODES:
        kept = store.tune_sums(backend, language, 3, overrides, mode)
        full = sums_of(store.tune_rows(backend, language, 3, overrides, mode))
        assert kept is not None
        assert kept.images == full.images, mode
        assert np.array_equal(kept.vector, full.vector), mode
        assert np.array_equal(kept.moments, full.moments), mode
        assert kept.tags == full.tags, mode
        assert np.array_equal(kept.tag_rows, full.tag_rows), mode
        assert np.array_equal(kept.tag_count, full.tag_count), mode
        assert np.allclose(kept.tag_confidence_sum, full.tag_confidence_sum, rtol=1e-12, atol=1e-9), mode


def random_save(store: Store, rng: random.Random, key: str, backend: str = "embedded") -> None:
    tags = rng.sample(VOCABULARY, rng.randint(0, 9))
    items = [FeedbackItem(t, rng.choice([rng.uniform(0, 100), float(rng.randint(0, 100)), 50.0, 100.0, 0.0]),
                          rng.random() < 0.5) for t in tags]
    reviewed = rng.random() < 0.8
    store.save_feedback(image_key=key, filename=f"{key}.jpg", source="Upload", backend=backend, language="en",
                        threshold=60, min_tags=3, items=items, provenance=REVIEWED if reviewed else AUTOMATIC,
                        replace_reviewed=rng.random() < 0.3,
                        review_mode=rng.choice([None, PREFILLED, BLIND]) if reviewed else None)


@pytest.mark.parametrize("seed", [1, 2])
def test_kept_sums_equal_a_full_computation_after_random_writes(db_target, seed):
    rng = random.Random(seed)
    store = Store(db_target)
    keys = [f"img{j:03d}" for j in range(25)]
    for step in range(90):
        roll = rng.random()
        key = rng.choice(keys)
        if roll < 0.65:
            random_save(store, rng, key, backend=rng.choice(["embedded", "embedded", "imagga"]))
        elif roll < 0.75:
            store.delete_image(key)
        elif roll < 0.85:
            store.delete_verdict_set(key, "embedded", "en")
        else:  # an override set, moved or removed re-sums the images carrying the tag
            store.set_tag_override(rng.choice(VOCABULARY[:4]), rng.choice([None, 0.0, 35.5, 70.0, 100.0]))
        if step % 15 == 14:
            assert_sums_match(store)
    assert_sums_match(store)
    assert_sums_match(store, backend="imagga")
    assert store.tune_sums("embedded", "en", 3, store.tag_overrides()).images > 0  # the test saw reviewed images


def test_metrics_from_kept_sums_equal_the_python_metrics(db_target, monkeypatch):
    rng = random.Random(5)
    store = Store(db_target)
    for j in range(40):
        random_save(store, rng, f"k{j}")
    store.set_tag_override("t1", 70.0)
    store.set_tag_override("t2", 20.5)
    overrides = store.tag_overrides()
    feedback = store.feedback_by_image("embedded", "en")
    data = metrics.Aggregated.from_sums(store.tune_sums("embedded", "en", 3, overrides))
    pd.testing.assert_frame_equal(data.curve(), metrics.threshold_curve(feedback, 3, overrides))
    assert data.evidence() == metrics.evidence(feedback)
    for threshold in (0, 45, 60, 100):
        assert_same_stats(metrics.tag_stats(feedback, threshold, 3, overrides), data.tag_stats(threshold))
    # The bootstrap from sums is the normal approximation of the per-image one, drawn from the same numbers.
    monkeypatch.setattr(metrics, "EXACT_BOOTSTRAP_IMAGES", 1)
    rows = metrics.Aggregated(store.tune_rows("embedded", "en", 3, overrides))
    assert np.array_equal(data.resampled_counts(50), rows.resampled_counts(50))
    assert data.stability() == rows.stability()
    with pytest.raises(ValueError, match="per-image"):
        data.image_counts()


def test_sums_are_kept_only_for_the_default_floor_and_the_stored_overrides(db_target):
    store = Store(db_target)
    random_save(store, random.Random(1), "a")
    assert store.tune_sums("embedded", "en", 3, {}) is not None
    assert store.tune_sums("embedded", "en", 4, {}) is None
    assert store.tune_sums("embedded", "en", 3, {"t1": 50.0}) is None  # not what the sums were kept for
    store.set_tag_override("t1", 50.0)
    assert store.tune_sums("embedded", "en", 3, {"t1": 50.0}) is not None


def test_a_bulk_load_rebuilds_the_sums(db_target):
    from tagging.store._transfer import generate

    store = Store(db_target)
    store.set_tag_override("tag0001", 30.0)
    generate(store, 300, 8, 40)
    assert store.tune_sums("embedded", "en", 3, store.tag_overrides()).images > 0
    assert_sums_match(store)


def test_migration_from_the_version_before_sums_what_was_saved(open_db):
    store = open_db(migrate=False)
    assert store.migrate(MIGRATION.version - 1) == MIGRATION.version - 1
    sql(store, "INSERT INTO images (image_key, filename, source, created_at, updated_at) VALUES "
               "('r1', 'r.jpg', 'Upload', 't0', 't0'), ('r2', 'r.jpg', 'Upload', 't0', 't0'), "
               "('a1', 'a.jpg', 'batch', 't0', 't0')")
    sql(store, "INSERT INTO verdict_sets (image_key, backend, language, provenance, threshold, min_tags, saved_at, "
               "review_mode) VALUES ('r1', 'embedded', 'en', 'reviewed', 60, 3, 't1', NULL), "
               "('r2', 'embedded', 'en', 'reviewed', 60, 3, 't1', 'blind'), "
               "('a1', 'embedded', 'en', 'automatic', 60, 3, 't1', NULL)")
    rows = [("r1", "cat", 90), ("r1", "dog", 40), ("r1", "pet", 12.5), ("r1", "fur", 3), ("r2", "cat", 61),
            ("r2", "sky", 59), ("a1", "dog", 40)]
    for n, (key, tag, conf) in enumerate(rows):
        sql(store, "INSERT INTO feedback (image_key, backend, language, tag, confidence, accepted, threshold, "
                   "min_tags, saved_at) VALUES (:k, 'embedded', 'en', :t, :c, :a, 60, 3, 't1')",
            k=key, t=tag, c=conf, a=n % 2 == 0)
    sql(store, "INSERT INTO settings (key, value) VALUES ('tag_overrides', '{\"dog\": 30.0}')")
    before = {t: sql(store, f"SELECT * FROM {t} ORDER BY 1, 2") for t in ("images", "feedback", "verdict_sets")}
    assert store.migrate(MIGRATION.version) == MIGRATION.version
    assert before == {t: sql(store, f"SELECT * FROM {t} ORDER BY 1, 2") for t in ("images", "feedback",
                                                                                   "verdict_sets")}
    store.migrate()
    assert store.tune_sums("embedded", "en", 3, {"dog": 30.0}).images == 2
    assert store.tune_sums("embedded", "en", 3, {"dog": 30.0}, BLIND).images == 1
    assert_sums_match(store)


def test_concurrent_saves_and_override_changes_keep_the_sums_exact(pg_database):
    """On PostgreSQL, writers in parallel (saves of shared images, override changes) still sum exactly."""
    stores = [Store(pg_database) for _ in range(4)]
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        rng = random.Random(n)
        try:
            for _ in range(12):
                if n == 3:
                    stores[n].set_tag_override(rng.choice(VOCABULARY[:3]), rng.choice([None, 10.0, 80.0]))
                else:
                    random_save(stores[n], rng, f"shared{rng.randint(0, 5)}")
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert_sums_match(stores[0])
    for store in stores:
        store.close()


def test_tune_data_reads_sums_only_above_the_exact_bootstrap_size(db_target, monkeypatch):
    store = Store(db_target)
    rng = random.Random(3)
    for j in range(12):
        random_save(store, rng, f"m{j}")
    images = store.tune_sums("embedded", "en", 3, {}).images
    assert store.tune_sums("embedded", "en", 3, {}, more_than=images) is None
    assert store.tune_sums("embedded", "en", 3, {}, more_than=images - 1).images == images
    small = metrics.tune_data(store, "embedded", "en", 3, {})
    assert small.rows is not None  # per-image rows: the exact bootstrap
    monkeypatch.setattr(metrics, "EXACT_BOOTSTRAP_IMAGES", images - 1)
    large = metrics.tune_data(store, "embedded", "en", 3, {})
    assert large.rows is None and large.images == images
    pd.testing.assert_frame_equal(large.curve(), small.curve())
    assert metrics.tune_data(store, "embedded", "en", 4, {}).rows is not None  # another floor: from the verdicts
