"""Benchmark batch tagging: batched forward passes, Imagga concurrency, and the cache.

Run from the repository root::

    .venv/bin/python bench/bench_batch.py [--images 32] [--latency 0.3]

Prints, each measured in this one run:

1. Embedded tagger, images per second end to end (``load_image`` + tagging) one at a
   time (what the Tag page does per image) against ``run_batch`` with chunks of 4, 8
   and 16 images per forward pass; the ratio batched / one at a time. Runs alternate
   and the median of three is kept.
2. The loopback Imagga stand-in with ``--latency`` seconds added to every request:
   ``run_batch`` on 12 images at concurrency 1 and 3, the ratio, and the most
   requests the stand-in saw in flight at once.
3. Fifty photos end to end on each backend with an empty result cache, then the same
   fifty again: the second run's calls (must be 0) and calls saved.

The images are variants of the four sample photos (mirrored, cropped, rotated,
re-encoded), so every one has different bytes. About a minute on 2 idle cores; the load
average is printed because other processes on the machine skew every number.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from PIL import Image, ImageOps  # noqa: E402

from tagging.backends import EMBEDDED, EmbeddedBackend, ImaggaBackend, TagRequest  # noqa: E402
from tagging.batch import DEFAULT_CHUNK_SIZE, PerThreadImagga, run_batch  # noqa: E402
from tagging.images import load_image  # noqa: E402
from tagging.imagga import ImaggaClient, ImaggaCredentials  # noqa: E402
from tagging.store import ResultCache  # noqa: E402
from tests.imagga_standin import TEST_API_KEY, TEST_API_SECRET, ImaggaStandin, serve  # noqa: E402

SAMPLES = ("cat.jpg", "coffee.jpg", "astronaut.jpg", "rocket.jpg")
REQUEST = TagRequest(language="en", mode="upload")
CHUNKS = (4, 8, 16)
REPEATS = 3


def variants(n: int) -> list[tuple[str, bytes]]:
    """``n`` JPEGs with distinct bytes made from the sample photos."""
    originals = [Image.open(ROOT / "samples" / name).convert("RGB") for name in SAMPLES]
    out = []
    for i in range(n):
        image = originals[i % len(originals)]
        k = i // len(originals)
        if k % 2:
            image = ImageOps.mirror(image)
        margin = (k * 7) % 40
        image = image.crop((margin, margin // 2, image.width - margin // 2, image.height - margin))
        if k % 3 == 2:
            image = image.rotate(3 + k, expand=False, fillcolor=(128, 128, 128))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=80 + k % 15)
        out.append((f"{SAMPLES[i % len(SAMPLES)].removesuffix('.jpg')}-{k:02d}.jpg", buffer.getvalue()))
    return out


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def bench_embedded(images: list[tuple[str, bytes]], backend: EmbeddedBackend) -> list[tuple[str, float]]:
    """images/s one at a time and per chunk size; medians of REPEATS alternating runs."""
    timings: dict[str, list[float]] = {"one at a time": []} | {f"batched, {c} per pass": [] for c in CHUNKS}
    for _ in range(REPEATS):
        started = time.perf_counter()
        for name, data in images:
            backend.tagger.tag(load_image(data, name).image)
        timings["one at a time"].append(time.perf_counter() - started)
        for chunk in CHUNKS:
            report = run_batch(images, backend, REQUEST, backend_key=EMBEDDED, cache=None, chunk_size=chunk)
            assert report.calls_made == len(images), report
            timings[f"batched, {chunk} per pass"].append(report.seconds)
    return [(label, rate(len(images), statistics.median(values))) for label, values in timings.items()]


def bench_imagga(images: list[tuple[str, bytes]], standin: ImaggaStandin, base_url: str,
                 concurrency: int) -> tuple[float, int]:
    """images/s through the stand-in at this concurrency, and the most requests it saw at once."""
    standin.reset()
    credentials = ImaggaCredentials(TEST_API_KEY, TEST_API_SECRET)
    backend = ImaggaBackend(ImaggaClient(credentials, base_url=base_url))
    report = run_batch(images, backend, REQUEST, backend_key=f"imagga:{base_url}", cache=None,
                       concurrency=concurrency, backend_factory=PerThreadImagga(credentials, base_url))
    assert report.count("ok") == len(images), [r.reason for r in report.results if r.reason]
    return rate(len(images), report.seconds), standin.max_in_flight


def twice(images, backend, cache_dir: Path, backend_key: str, **options) -> list[str]:
    """Run the same batch twice on an empty cache; one table row per run."""
    cache = ResultCache(cache_dir / f"{backend_key.split(':')[0]}-cache.db")
    rows = []
    for run in ("first run", "second run"):
        report = run_batch(images, backend, REQUEST, backend_key=backend_key, cache=cache, **options)
        rows.append(
            f"  {backend_key.split(':')[0]:<9} {run:<11} {report.seconds:7.2f} s {report.images_per_second:7.1f} img/s"
            f"  calls made {report.calls_made:3d}  saved by the cache {report.calls_saved:3d}"
            f"  ok {report.count('ok'):2d} cached {report.count('cached'):2d} failed {report.count('failed')}"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    parser = argparse.ArgumentParser(description="Benchmark batch tagging.")
    parser.add_argument("--images", type=int, default=32, help="images for the embedded comparison")
    parser.add_argument("--imagga-images", type=int, default=12)
    parser.add_argument("--latency", type=float, default=0.3, help="seconds the stand-in adds to every request")
    args = parser.parse_args(argv)
    bench_started = time.perf_counter()

    import onnxruntime

    backend = EmbeddedBackend()
    backend.tagger.tag(Image.open(ROOT / "samples" / "cat.jpg").convert("RGB"))  # warm-up
    fifty = variants(50)
    print(f"python {platform.python_version()}, onnxruntime {onnxruntime.__version__}; "
          f"images {min(len(d) for _, d in fifty) // 1024}-{max(len(d) for _, d in fifty) // 1024} KB JPEGs, "
          "400-640 px")
    print("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg())
          + f" on {os.cpu_count()} CPUs (other processes skew every number below)")
    print()

    images = fifty[: args.images]
    print(f"1. Embedded tagger, {len(images)} images, end to end (decode + tag), median of {REPEATS}")
    results = bench_embedded(images, backend)
    single = results[0][1]
    for label, value in results:
        print(f"  {label:<22} {value:7.1f} img/s   x{value / single:4.2f}")
    print(f"  (the Batch page uses {DEFAULT_CHUNK_SIZE} per pass)")
    print()

    with serve(ImaggaStandin(latency=args.latency)) as (standin, base_url):
        sample = fifty[: args.imagga_images]
        print(f"2. Imagga stand-in, {len(sample)} images, {args.latency * 1000:.0f} ms added to every request")
        rate_1, seen_1 = bench_imagga(sample, standin, base_url, 1)
        rate_3, seen_3 = bench_imagga(sample, standin, base_url, 3)
        print(f"  concurrency 1          {rate_1:7.2f} img/s   at most {seen_1} in flight")
        print(f"  concurrency 3          {rate_3:7.2f} img/s   at most {seen_3} in flight   x{rate_3 / rate_1:4.2f}")
        print()

        print("3. Fifty photos end to end, empty result cache, then the same fifty again")
        standin.reset()
        credentials = ImaggaCredentials(TEST_API_KEY, TEST_API_SECRET)
        with tempfile.TemporaryDirectory() as tmp:
            rows = twice(fifty, backend, Path(tmp), EMBEDDED)
            rows += twice(fifty, ImaggaBackend(ImaggaClient(credentials, base_url=base_url)), Path(tmp),
                          f"imagga:{base_url}", concurrency=3, backend_factory=PerThreadImagga(credentials, base_url))
        for row in rows:
            print(row)
        print(f"  stand-in: {standin.count('POST', '/v2/tags')} tag requests for 2 x 50 photos, "
              f"at most {standin.max_in_flight} in flight")

    print(f"\ntotal benchmark time {time.perf_counter() - bench_started:.1f} s; load average at the end: "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
