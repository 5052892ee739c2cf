"""Benchmark the embedded tagger on the sample photos.

Run from the repository root::

    .venv/bin/python bench/bench_tagger.py [--runs 15]

Prints: the time to import torch and to load the tagger (model + hypernym table + face
cascade); per sample photo the median time of each step of ``tag()`` (intake = open +
RGB + resize/crop/normalise, forward pass, hypernym aggregation, face detection), the
end-to-end time and the bare EfficientNet forward pass measured alternately in the same
loop, and their ratio; the number of tags returned; and one forward pass over 4 images
(``tag_batch``) against 4 ``tag()`` calls. Finishes in well under a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE_NAMES = ("cat", "coffee", "astronaut", "rocket")
sys.path.insert(0, str(ROOT))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn`` once; return (milliseconds, its result)."""
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000.0, result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    parser = argparse.ArgumentParser(description="Benchmark the embedded tagger.")
    parser.add_argument("--runs", type=int, default=15, help="timed runs per photo (median reported)")
    args = parser.parse_args(argv)
    runs = max(1, args.runs)
    bench_started = time.perf_counter()

    torch_ms, _ = timed(lambda: __import__("torch"))
    import torch

    def import_embedded() -> Any:
        from tagging import embedded

        return embedded

    module_ms, embedded = timed(import_embedded)
    from PIL import Image, ImageOps

    tagger = embedded.EmbeddedTagger()
    print(f"python {platform.python_version()}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"import torch:              {torch_ms:8.1f} ms")
    print(f"import tagging.embedded:   {module_ms:8.1f} ms")
    print(f"EmbeddedTagger() load:     {tagger.load_seconds * 1000:8.1f} ms  (model + table + face cascade)")

    def intake(name: str) -> Image.Image:
        with Image.open(SAMPLES / f"{name}.jpg") as raw:
            return ImageOps.exif_transpose(raw).convert("RGB")

    first_ms, _ = timed(lambda: tagger.tag(intake("cat")))
    print(f"first tag() call:          {first_ms:8.1f} ms  (warm-up, not counted below)")
    print()

    header = (
        f"{'photo':<10} {'intake':>7} {'forward':>8} {'aggreg':>7} {'faces':>7} "
        f"{'tag() e2e':>10} {'bare fwd':>9} {'e2e/bare':>9} {'tags':>5}"
    )
    print(f"median of {runs} runs, milliseconds; e2e = open + RGB + tag()")
    print(header)
    print("-" * len(header))
    images = {}
    for name in SAMPLE_NAMES:
        steps: dict[str, list[float]] = {
            k: [] for k in ("intake", "forward", "aggreg", "faces", "e2e", "bare")
        }
        tag_count = 0
        for _ in range(runs):
            # The steps of tag(), one by one.
            ms_open, image = timed(lambda name=name: intake(name))
            ms_prep, pixels = timed(lambda image=image: tagger.preprocess(image)[None])
            steps["intake"].append(ms_open + ms_prep)
            ms, probabilities = timed(lambda pixels=pixels: tagger.predict(pixels))
            steps["forward"].append(ms)
            ms, faces = timed(lambda image=image: tagger.detect_faces(image))
            steps["faces"].append(ms)
            ms, _ = timed(lambda p=probabilities, f=faces: tagger.response(p[0], f))
            steps["aggreg"].append(ms)
            # End to end, then the bare model on the same input, side by side.
            ms, response = timed(lambda name=name: tagger.tag(intake(name)))
            steps["e2e"].append(ms)
            tensor = torch.from_numpy(pixels)
            with torch.inference_mode():
                ms, _ = timed(lambda tensor=tensor: tagger.model(tensor))
            steps["bare"].append(ms)
            tag_count = len(response["result"]["tags"])
        images[name] = image
        med = {k: statistics.median(v) for k, v in steps.items()}
        print(
            f"{name:<10} {med['intake']:7.1f} {med['forward']:8.1f} {med['aggreg']:7.1f} {med['faces']:7.1f} "
            f"{med['e2e']:10.1f} {med['bare']:9.1f} {med['e2e'] / med['bare']:8.1f}x {tag_count:5d}"
        )

    batch = [images[name] for name in SAMPLE_NAMES]
    batch_runs = max(1, runs // 2)
    one_by_one = [timed(lambda: [tagger.tag(image) for image in batch])[0] for _ in range(batch_runs)]
    together = [timed(lambda: tagger.tag_batch(batch))[0] for _ in range(batch_runs)]
    pixels_1 = [torch.from_numpy(tagger.preprocess(image)[None]) for image in batch]
    pixels_4 = torch.cat(pixels_1)
    with torch.inference_mode():
        bare_1 = [timed(lambda: [tagger.model(p) for p in pixels_1])[0] for _ in range(batch_runs)]
        bare_4 = [timed(lambda: tagger.model(pixels_4))[0] for _ in range(batch_runs)]
    n = len(batch)
    rate_single = n * 1000 / statistics.median(one_by_one)
    rate_batch = n * 1000 / statistics.median(together)
    bare_rate_single = n * 1000 / statistics.median(bare_1)
    bare_rate_batch = n * 1000 / statistics.median(bare_4)
    print()
    print(f"batch of {n} images, median of {batch_runs} runs (images already decoded)")
    print(
        f"  tag() one at a time: {rate_single:6.1f} img/s   tag_batch(): {rate_batch:6.1f} img/s"
        f"   batch/single {rate_batch / rate_single:4.2f}x"
    )
    print(
        f"  bare model 1x{n}:  {bare_rate_single:6.1f} img/s   bare {n}-batch: {bare_rate_batch:6.1f} img/s"
        f"   batch/single {bare_rate_batch / bare_rate_single:4.2f}x"
    )
    print(f"\ntotal benchmark time {time.perf_counter() - bench_started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
