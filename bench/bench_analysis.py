"""Benchmark the offline analysis (faces, colours, text, crops) and check the face boxes against hand marks.

Run from the repository root (``pip install -r bench/requirements-bench.txt`` adds the Grace Hopper portrait)::

    .venv/bin/python bench/bench_analysis.py [--runs 7]

Prints, measured in this one run:

1. face boxes: the detector's box beside the box marked by hand (bench/face_marks.py, marked before any detector
   ran) on each portrait, and the largest edge error as a share of the image's width (x) or height (y)
   (target: within 4%);
2. colours: ``colors_response`` per photo, median of ``--runs`` on the decoded full-size photo (target: 50 ms);
3. the Analysis view offline after tags, per photo: the four answers (faces, colours, text, crops) plus the
   overlay and swatches the page draws, median of ``--runs``, beside the tags themselves measured in the same
   loop (target: within 1 s). Model loading is timed apart (once per process in the app).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.face_marks import PORTRAITS  # noqa: E402
from tagging.analysis import COMMON_RESOLUTIONS, OfflineAnalyzer, draw_overlay, swatches  # noqa: E402
from tagging.images import load_image  # noqa: E402

SAMPLES = ("cat", "coffee", "astronaut", "rocket")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000.0, result


def find(where: str) -> Path | None:
    """A photo in the repository or inside an installed wheel (``package:relative/path``)."""
    if ":" not in where:
        return ROOT / where
    package, relative = where.split(":", 1)
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / relative
    return path if path.is_file() else None


def faces(analyzer: OfflineAnalyzer) -> None:
    print("1. Face boxes against hand marks (error: largest edge offset / image width or height)")
    worst = 0.0
    for name, (where, marks) in PORTRAITS.items():
        path = find(where)
        if path is None:
            print(f"   {name}: photo not installed, skipped")
            continue
        image = load_image(path.read_bytes(), path.name).image
        found = [f["coordinates"] for f in analyzer.faces(image)["result"]["faces"]]
        width, height = image.size
        for mark in marks:
            if not found:
                print(f"   {name}: hand {mark} -> no face found")
                worst = 1.0
                continue
            best = min(found, key=lambda c: abs(c["xmin"] - mark[0]) + abs(c["ymin"] - mark[1]))
            box = (best["xmin"], best["ymin"], best["xmax"], best["ymax"])
            errors = [abs(box[i] - mark[i]) / (width if i % 2 == 0 else height) for i in range(4)]
            worst = max(worst, max(errors))
            print(f"   {name} {width}x{height}: hand {mark} detector {box} -> largest error {max(errors):.1%} "
                  f"(edges {', '.join(f'{e:.1%}' for e in errors)})")
        if len(found) != len(marks):
            print(f"   {name}: {len(found)} faces found, {len(marks)} marked")
    print(f"   worst edge error: {worst:.1%} (target <= 4%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    from tagging.backends import EmbeddedBackend

    backend = EmbeddedBackend()
    tagger_ms, _ = timed(lambda: backend.tagger)
    analyzer = backend.analyzer
    ocr_ms, _ = timed(lambda: analyzer.text_reader)
    print(f"Loading (once per process): tagger {tagger_ms:.0f} ms, text reader {ocr_ms:.0f} ms")
    faces(analyzer)

    photos = {name: load_image((ROOT / "samples" / f"{name}.jpg").read_bytes(), f"{name}.jpg") for name in SAMPLES}
    for name, (where, _) in PORTRAITS.items():
        path = find(where)
        if path is not None and name not in photos:
            photos[name] = load_image(path.read_bytes(), path.name)

    print(f"2. Colours per photo (median of {args.runs}; target <= 50 ms)")
    colour_medians = []
    for name, image in photos.items():
        analyzer.colors(image.image)  # warm
        ms = statistics.median(timed(lambda i=image: analyzer.colors(i.image))[0] for _ in range(args.runs))
        colour_medians.append(ms)
        print(f"   {name} {image.width}x{image.height}: {ms:.1f} ms")
    print(f"   median over photos {statistics.median(colour_medians):.1f} ms, worst {max(colour_medians):.1f} ms")

    print(f"3. Analysis view offline, per photo (median of {args.runs}; target <= 1000 ms after tags)")
    sizes = list(COMMON_RESOLUTIONS.values())

    def view(image: Any) -> None:
        answers = {e: analyzer.answer(e, image.image, resolutions=sizes) for e in ("faces", "colors", "text")}
        crops = analyzer.croppings(image.image, sizes, faces=answers["faces"]["result"]["faces"])
        draw_overlay(image.image, faces=answers["faces"]["result"]["faces"], text=answers["text"]["result"]["text"],
                     crops=crops["result"]["croppings"])
        for key in ("image_colors", "foreground_colors", "background_colors"):
            swatches(answers["colors"]["result"]["colors"][key])

    totals = []
    for name, image in photos.items():
        view(image)
        tag_runs, view_runs, text_runs = [], [], []
        for _ in range(args.runs):  # alternately, so both see the same machine load
            tag_runs.append(timed(lambda i=image: backend.tag_image(i, None))[0])
            view_runs.append(timed(lambda i=image: view(i))[0])
            text_runs.append(timed(lambda i=image: analyzer.text(i.image))[0])
        tags, total, text = (statistics.median(r) for r in (tag_runs, view_runs, text_runs))
        totals.append(total)
        print(f"   {name}: view {total:.0f} ms (of which text {text:.0f} ms) · tags {tags:.0f} ms · "
              f"view/tags {total / tags:.1f}x")
    print(f"   median over photos {statistics.median(totals):.0f} ms, worst {max(totals):.0f} ms")


if __name__ == "__main__":
    main()
