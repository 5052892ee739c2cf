"""Tune's per-bin sums at a million-image library's sizes: ``np.add.at`` (before) beside ``summed`` (now).

Synthetic arrays shaped as ``Store.tune_rows`` returns them for 1M images with 30% reviewed (300k images,
3M reviewed verdicts): the per-image events behind the curve and the per-tag bins behind the tag table
(read on every threshold move). Same arrays, same run, median of 5; the results are checked equal.

    .venv/bin/python bench/bench_tune_sums.py [--images 300000] [--events 3000000] [--tag-rows 400000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tagging.store._tune import summed  # noqa: E402


def add_at(shape: tuple[int, ...], index: tuple[np.ndarray, ...], values: np.ndarray) -> np.ndarray:
    out = np.zeros(shape, dtype=np.int64)
    np.add.at(out, index, values)
    return out


def timed(function, *args) -> tuple[float, np.ndarray]:
    times, result = [], None
    for _ in range(5):
        started = time.perf_counter()
        result = function(*args)
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300_000)
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--tag-rows", type=int, default=400_000)
    parser.add_argument("--tags", type=int, default=1_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    cases = {
        "per-image events (image counts)": (
            (args.images, 2, 101),
            (rng.integers(0, args.images, args.events), rng.integers(0, 2, args.events),
             rng.integers(0, 101, args.events)),
            rng.integers(-1, 2, args.events),
        ),
        "events over all images (the curve)": (
            (2, 101), (rng.integers(0, 2, args.events), rng.integers(0, 101, args.events)),
            rng.integers(-1, 2, args.events),
        ),
        "per-tag bins (tag table, every threshold move)": (
            (args.tags, 2, 102),
            (rng.integers(0, args.tags, args.tag_rows), rng.integers(0, 2, args.tag_rows),
             rng.integers(0, 102, args.tag_rows)),
            rng.integers(1, 50, args.tag_rows),
        ),
    }
    print(f"{'sum':<48} {'np.add.at':>10} {'summed':>10} {'ratio':>7}")
    for name, (shape, index, values) in cases.items():
        before, old = timed(add_at, shape, index, values)
        after, new = timed(summed, shape, index, values)
        assert np.array_equal(old, new), name
        print(f"{name:<48} {before * 1000:>8.1f}ms {after * 1000:>8.1f}ms {before / after:>6.1f}x")


if __name__ == "__main__":
    main()
