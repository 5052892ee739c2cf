"""Benchmark the embedded tagger: the new one (ONNX Runtime) beside the old one (torch + Haar) in one run.

Run from the repository root, in the export venv so the old tagger can run too (without torch the old
columns say "n/a" and the rest still runs)::

    .venv-export/bin/python bench/bench_tagger.py [--runs 15]

Prints:

1. loading: importing the package and building the tagger (target: load at most 0.3 s after imports);
2. per sample photo, median of ``--runs``: the steps of ``tag()`` and ``tag()`` end to end against the bare
   classifier forward pass measured alternately in the same loop (target: at most 1.3x, median over the
   samples), old beside new;
3. batches: ``tag_batch`` throughput against the bare forward throughput at each batch size (target: at
   least 0.85x at the best batch size);
4. the evaluation set (``bench/eval_set.py``): per photo the auto-selected tags (threshold 60, floor 3)
   marked right / wrong, then the targets: share of photos with an accepted word among them (>= 75%),
   plainly wrong selected tags (at most one per five photos), share right among the tags at 60 or more
   (>= 85%), person >= 60 on every portrait, no person or face >= 50 on a photo without people.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE_NAMES = ("cat", "coffee", "astronaut", "rocket")
sys.path.insert(0, str(ROOT))

from bench import eval_set  # noqa: E402

THRESHOLD, FLOOR = 60, 3
BATCH_SIZES = (1, 2, 4, 8, 16)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn`` once; return (milliseconds, its result)."""
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000.0, result


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    return statistics.median(timed(fn)[0] for _ in range(runs))


# --- the two taggers behind one small interface ---------------------------------------------
class New:
    """The ONNX Runtime tagger."""

    label = "new (ONNX Runtime)"

    def __init__(self) -> None:
        from tagging.embedded import EmbeddedTagger

        self.tagger = EmbeddedTagger()
        self.load_seconds = self.tagger.load_seconds

    def bare(self, batch: np.ndarray) -> Any:
        return self.tagger.classifier.logits(batch)

    def classes_of(self, name: str) -> set[int]:
        return self.tagger.vocabulary.classes_of(name)


class Old:
    """The tagger before issue 9 (bench/old_tagger): torch, WordNet hypernym sums, Haar cascade."""

    label = "old (torch + Haar)"

    def __init__(self) -> None:
        import torch

        from bench.old_tagger.tagger import EmbeddedTagger

        self.torch = torch
        self.tagger = EmbeddedTagger()
        self.load_seconds = self.tagger.load_seconds
        table = json.loads((ROOT / "bench" / "old_tagger" / "hypernyms.json").read_text("utf-8"))
        self._classes: dict[str, set[int]] = {}
        for index, leaf in enumerate(table["leaves"]):
            node = leaf
            while node is not None:
                self._classes.setdefault(table["nodes"][node]["name"], set()).add(index)
                node = table["nodes"][node]["parent"]

    def bare(self, batch: np.ndarray) -> Any:
        with self.torch.inference_mode():
            return self.tagger.model(self.torch.from_numpy(batch))

    def classes_of(self, name: str) -> set[int]:
        return self._classes.get(name, set())


def load_old() -> tuple[Old | None, str]:
    if importlib.util.find_spec("torch") is None:
        return None, "torch is not installed here (run from .venv-export)"
    torch_ms, _ = timed(lambda: __import__("torch"))
    return Old(), f"import torch {torch_ms:.0f} ms"


# --- timing ------------------------------------------------------------------------------
def samples() -> dict[str, Any]:
    from PIL import Image, ImageOps

    loaded = {}
    for name in SAMPLE_NAMES:
        with Image.open(SAMPLES / f"{name}.jpg") as raw:
            loaded[name] = ImageOps.exif_transpose(raw).convert("RGB")
    return loaded


def time_samples(impl: Any, images: dict[str, Any], runs: int) -> dict[str, dict[str, float]]:
    """Median ms per step and end to end, with the bare forward pass timed alternately."""
    tagger = impl.tagger
    rows = {}
    for name, image in images.items():
        pixels = tagger.preprocess(image)[None]
        tagger.tag(image)  # warm this size up
        steps: dict[str, list[float]] = {k: [] for k in ("prep", "forward", "faces", "aggreg", "e2e", "bare")}
        for _ in range(runs):
            steps["prep"].append(timed(lambda image=image: tagger.preprocess(image))[0])
            ms, probabilities = timed(lambda pixels=pixels: tagger.predict(pixels))
            steps["forward"].append(ms)
            ms, faces = timed(lambda image=image: tagger.detect_faces(image))
            steps["faces"].append(ms)
            steps["aggreg"].append(timed(lambda p=probabilities, f=faces: tagger.response(p[0], f))[0])
            steps["e2e"].append(timed(lambda image=image: tagger.tag(image))[0])
            steps["bare"].append(timed(lambda pixels=pixels: impl.bare(pixels))[0])
        rows[name] = {k: statistics.median(v) for k, v in steps.items()}
    return rows


def print_samples(impl: Any, rows: dict[str, dict[str, float]]) -> float:
    header = (f"{'photo':<10} {'prep':>6} {'forward':>8} {'faces':>6} {'aggreg':>7} {'tag() e2e':>10} "
              f"{'bare fwd':>9} {'e2e/bare':>9}")
    print(f"  {impl.label}")
    print("  " + header)
    ratios = []
    for name, med in rows.items():
        ratio = med["e2e"] / med["bare"]
        ratios.append(ratio)
        print(f"  {name:<10} {med['prep']:6.1f} {med['forward']:8.1f} {med['faces']:6.1f} {med['aggreg']:7.2f} "
              f"{med['e2e']:10.1f} {med['bare']:9.1f} {ratio:8.2f}x")
    median_ratio = statistics.median(ratios)
    print(f"  median e2e/bare over the samples: {median_ratio:.2f}x   "
          f"median tag(): {statistics.median(r['e2e'] for r in rows.values()):.1f} ms")
    # Derived from the step medians, not measured end to end: what tag() costs when the face detector has a
    # core of its own (it overlaps the classifier), and when it has none (every step in turn).
    overlapped = statistics.median((r["prep"] + r["forward"] + r["aggreg"]) / r["bare"] for r in rows.values())
    serial = statistics.median(
        (r["prep"] + r["forward"] + r["faces"] + r["aggreg"]) / r["bare"] for r in rows.values()
    )
    print(f"  derived from the steps: faces overlapped {overlapped:.2f}x, every step in turn {serial:.2f}x")
    return median_ratio


def time_batches(impl: Any, images: dict[str, Any], runs: int) -> list[tuple[int, float, float]]:
    """(batch size, bare img/s, tag_batch img/s) for each size."""
    tagger = impl.tagger
    pool = list(images.values())
    rows = []
    for size in BATCH_SIZES:
        batch_images = [pool[i % len(pool)] for i in range(size)]
        pixels = np.stack([tagger.preprocess(image) for image in batch_images])
        tagger.tag_batch(batch_images)
        bare, full = [], []
        for _ in range(max(3, runs // 2)):
            bare.append(timed(lambda pixels=pixels: impl.bare(pixels))[0])
            full.append(timed(lambda b=batch_images: tagger.tag_batch(b))[0])
        rows.append((size, size * 1000 / statistics.median(bare), size * 1000 / statistics.median(full)))
    return rows


def print_batches(impl: Any, rows: list[tuple[int, float, float]]) -> float:
    print(f"  {impl.label}: images per second (decoded images in, responses out)")
    for size, bare, full in rows:
        print(f"    batch {size:>2}: bare forward {bare:6.1f} img/s   tag_batch {full:6.1f} img/s"
              f"   {full / bare:5.2f}x")
    size, bare, full = max(rows, key=lambda r: r[1])
    print(f"  at the best bare batch size ({size}): tag_batch / bare = {full / bare:.2f}x")
    return full / bare


# --- the evaluation set ------------------------------------------------------------------
def judge(impl: Any, photo: eval_set.Photo, tag: str) -> str:
    """ok (an accepted word), wrong (a plainly wrong one) or other, for one tag of one photo."""

    def matches(spec: str) -> bool:
        if not spec.endswith("/*"):
            return tag == spec
        root = spec[:-2]
        if tag == root:
            return True
        mine, family = impl.classes_of(tag), impl.classes_of(root)
        return bool(mine) and bool(family) and mine <= family

    if any(matches(spec) for spec in photo.accepted):
        return "ok"
    if any(matches(spec) for spec in photo.wrong):
        return "wrong"
    return "other"


def evaluate(impl: Any, photos: list[tuple[eval_set.Photo, Any]], verbose: bool) -> dict[str, Any]:
    from tagging.parse import parse_tags
    from tagging.rules import auto_select

    totals = {"photos": 0, "hit": 0, "wrong": 0, "high": 0, "high_ok": 0, "portraits": 0, "portraits_found": 0,
              "no_people": 0, "false_people": 0}
    for photo, image in photos:
        response = impl.tagger.tag(image)
        tags = parse_tags(response)
        confidence = {t.name: t.confidence for t in tags}
        chosen = auto_select(tags, THRESHOLD, FLOOR, {})
        marks = [(name, judge(impl, photo, name)) for name in chosen]
        totals["photos"] += 1
        totals["hit"] += any(mark == "ok" for _, mark in marks)
        totals["wrong"] += sum(mark == "wrong" for _, mark in marks)
        for t in tags:
            if t.confidence >= THRESHOLD:
                totals["high"] += 1
                totals["high_ok"] += judge(impl, photo, t.name) == "ok"
        person = max(confidence.get("person", 0.0), confidence.get("face", 0.0))
        if photo.portrait:
            totals["portraits"] += 1
            totals["portraits_found"] += confidence.get("person", 0.0) >= 60
        if not photo.people:
            totals["no_people"] += 1
            totals["false_people"] += person >= 50
        if verbose:
            shown = ", ".join(f"{n} {confidence[n]:.0f}{'' if m == 'ok' else ('!' if m == 'wrong' else '?')}"
                              for n, m in marks)
            print(f"    {photo.name:<14} {shown}")
    return totals


def print_targets(label: str, t: dict[str, Any]) -> None:
    n = t["photos"]
    print(f"  {label}")
    print(f"    accepted word among the selected tags: {t['hit']}/{n} photos = {100 * t['hit'] / n:.0f}%"
          "   (target >= 75%)")
    print(f"    plainly wrong selected tags: {t['wrong']} on {n} photos = {5 * t['wrong'] / n:.2f} per five photos"
          "   (target <= 1)")
    share = 100 * t["high_ok"] / t["high"] if t["high"] else float("nan")
    print(f"    right among tags at 60 or more: {t['high_ok']}/{t['high']} = {share:.0f}%   (target >= 85%)")
    print(f"    portraits with person >= 60: {t['portraits_found']}/{t['portraits']}   (target: all)")
    print(f"    photos without people with person or face >= 50: {t['false_people']}/{t['no_people']}"
          "   (target: none)")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    parser = argparse.ArgumentParser(description="Benchmark the embedded tagger, old beside new.")
    parser.add_argument("--runs", type=int, default=15, help="timed runs per photo (median reported)")
    parser.add_argument("--quiet", action="store_true", help="no per-photo lines for the evaluation set")
    parser.add_argument("--only", choices=("timing", "eval", "all"), default="all", help="which sections to run")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for the 1-minute load average to drop below 1 "
                             "(other processes on a shared machine skew the timings)")
    args = parser.parse_args(argv)
    runs = max(3, args.runs)
    started = time.perf_counter()
    if args.wait_idle > 0:
        waited = wait_for_idle(args.wait_idle)
        print(f"waited {waited:.0f} s for the machine to go quiet")

    import_ms, _ = timed(lambda: __import__("tagging.embedded"))
    import onnxruntime

    new = New()
    old, old_note = load_old()
    print(f"python {platform.python_version()}, onnxruntime {onnxruntime.__version__}, {os.cpu_count()} CPUs, "
          "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (other processes skew every number)")
    if old is not None:
        print(f"torch {old.torch.__version__}, {old.torch.get_num_threads()} threads")
    print()
    print("1. Loading (after imports)")
    print(f"  new: import tagging.embedded {import_ms:6.0f} ms   EmbeddedTagger() {new.load_seconds * 1000:6.0f} ms"
          "   (target <= 300 ms)")
    if old is not None:
        print(f"  old: {old_note}   EmbeddedTagger() {old.load_seconds * 1000:6.0f} ms")
    else:
        print(f"  old: n/a ({old_note})")
    print()

    if args.only != "eval":
        run_timing(new, old, runs)
    if args.only != "timing":
        run_eval(new, old, args.quiet)
    print(f"\ntotal benchmark time {time.perf_counter() - started:.1f} s; load average at the end "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


def wait_for_idle(limit: float) -> float:
    """Sleep until the 1-minute load average is below 1 or ``limit`` seconds have passed; the seconds waited."""
    started = time.monotonic()
    while os.getloadavg()[0] >= 1.0 and time.monotonic() - started < limit:
        time.sleep(10)
    return time.monotonic() - started


def run_timing(new: New, old: Old | None, runs: int) -> None:
    """Sections 2 and 3: tag() against the bare forward pass, and batches."""
    images = samples()
    print(f"2. tag() on the samples, median of {runs} runs, milliseconds (image already decoded)")
    new_rows = time_samples(new, images, runs)
    new_ratio = print_samples(new, new_rows)
    if old is not None:
        old_rows = time_samples(old, images, runs)
        print_samples(old, old_rows)
        speed = statistics.median(old_rows[n]["e2e"] / new_rows[n]["e2e"] for n in SAMPLE_NAMES)
        bare_speed = statistics.median(old_rows[n]["bare"] / new_rows[n]["bare"] for n in SAMPLE_NAMES)
        print(f"  new tag() is {speed:.1f}x faster than old tag(); bare forward {bare_speed:.1f}x faster (medians)")
    print(f"  target: new tag() <= 1.3x the bare forward pass: measured {new_ratio:.2f}x")
    print()

    print("3. Batches")
    new_batch = print_batches(new, time_batches(new, images, runs))
    if old is not None:
        print_batches(old, time_batches(old, images, runs))
    print(f"  target: tag_batch >= 0.85x bare throughput at the best batch size: measured {new_batch:.2f}x")
    print("  load average now " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print()


def run_eval(new: New, old: Old | None, quiet: bool) -> None:
    """Section 4: the evaluation set, old beside new."""
    photos = list(eval_set.available())
    missing = eval_set.missing_sources()
    print(f"4. Evaluation set: {len(photos)} of {len(eval_set.PHOTOS)} photos"
          + (f" (missing sources: {', '.join(missing)}; see bench/eval_set.py)" if missing else ""))
    print("   auto-selected tags (>= 60, at least 3); ! plainly wrong, ? neither accepted nor wrong")
    results = []
    for impl in (new, old):
        if impl is None:
            continue
        if not quiet:
            print(f"  {impl.label}")
        results.append((impl.label, evaluate(impl, photos, not quiet)))
    for label, totals in results:
        print_targets(label, totals)


if __name__ == "__main__":
    raise SystemExit(main())
