"""Benchmark the embedded tagger on the evaluation set, the baseline (a git ref) beside the working tree.

Run from the repository root (after ``bash bench/install_eval_photos.sh``)::

    .venv/bin/python bench/bench_tagger.py [--half report] [--baseline 00986ac] [--runs 5] [--venv] [--augmented]

The baseline is the ``tagging/embedded`` package at a git ref (default: the commit issue 17 started from),
extracted with ``git archive`` and imported under another name, so old and new run in one process on the same
photos. Prints, for the chosen half of ``bench/eval_set.py`` (``report`` unless told; choices are made on
``calibration``; ``--augmented`` scores six views of each photo, ``eval_set.views``, as those choices were),
old beside new:

* quality: median tags per photo (>= 15), accepted words found among the tags at any confidence (>= 45% of the
  labelled words), photos without tags (none), photos with an accepted word at 60 or more (>= 70%), precision of
  the tags at 60 or more (>= 90%: share that are accepted words), plainly wrong selected tags (threshold 60,
  floor 3; <= 1 per 10 photos), portraits with person >= 60 (all), photos without people with person, face or
  people >= 50 (none);
* cost: ``tag()`` median per photo, image decoded (<= 150 ms), in-process ``tag_batch`` throughput in chunks
  of 4 (>= 15 img/s), old and new taking turns, and with ``--venv`` the runtime venv's size
  (``bench/bench_venv.py``, <= 900 MB).
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import eval_set  # noqa: E402

THRESHOLD, FLOOR = 60, 3
PERSON_WORDS = ("person", "face", "people")
BASELINE_REF = "00986ac"
"""main when issue 17 started: the tagger the issue measured."""
BATCH_CHUNK = 4


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn`` once; return (milliseconds, its result)."""
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000.0, result


def load_baseline(ref: str, into: Path) -> Any:
    """The ``EmbeddedTagger`` class of ``tagging/embedded`` at git ``ref``, imported as ``baseline_embedded``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref, "tagging/embedded"],
        check=True, capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    package = into / "baseline_embedded"
    (into / "tagging" / "embedded").rename(package)
    for source in package.glob("*.py"):
        source.write_text(source.read_text("utf-8").replace("tagging.embedded", "baseline_embedded"), "utf-8")
    sys.path.insert(0, str(into))
    return importlib.import_module("baseline_embedded").EmbeddedTagger


@dataclass
class Totals:
    """What one tagger scored on the photos."""

    photos: int = 0
    tag_counts: list[int] = field(default_factory=list)
    words: int = 0
    words_found: int = 0
    empty: int = 0
    hit_high: int = 0
    high: int = 0
    high_ok: int = 0
    wrong_selected: int = 0
    portraits: int = 0
    portraits_found: int = 0
    no_people: int = 0
    false_people: int = 0
    lines: list[str] = field(default_factory=list)


def matcher(tagger: Any, tag: str) -> Callable[[str], bool]:
    """Whether a label spec (a word, or ``word/*`` for the word and every tag drawn only from its classes) fits."""
    vocabulary = tagger.vocabulary

    def matches(spec: str) -> bool:
        if not spec.endswith("/*"):
            return tag == spec
        root = spec[:-2]
        if tag == root:
            return True
        mine, family = vocabulary.classes_of(tag), vocabulary.classes_of(root)
        return bool(mine) and bool(family) and mine <= family

    return matches


def judge(tagger: Any, photo: eval_set.Photo, tag: str) -> str:
    """ok (an accepted word), wrong (a plainly wrong one) or other, for one tag of one photo."""
    matches = matcher(tagger, tag)
    if any(matches(spec) for spec in photo.accepted):
        return "ok"
    if any(matches(spec) for spec in photo.wrong):
        return "wrong"
    return "other"


def evaluate(tagger: Any, photos: list[tuple[eval_set.Photo, Any]]) -> Totals:
    """Score one tagger on the photos."""
    from tagging.parse import parse_tags
    from tagging.rules import auto_select

    t = Totals()
    for photo, image in photos:
        tags = parse_tags(tagger.tag(image))
        confidence = {tag.name: tag.confidence for tag in tags}
        marks = {tag.name: judge(tagger, photo, tag.name) for tag in tags}
        chosen = auto_select(tags, THRESHOLD, FLOOR, {})
        t.photos += 1
        t.tag_counts.append(len(tags))
        t.empty += not tags
        for spec in photo.accepted:
            t.words += 1
            t.words_found += any(matcher(tagger, name)(spec) for name in confidence)
        high = [name for name, c in confidence.items() if c >= THRESHOLD]
        t.high += len(high)
        t.high_ok += sum(marks[name] == "ok" for name in high)
        t.hit_high += any(marks[name] == "ok" for name in high)
        t.wrong_selected += sum(marks[name] == "wrong" for name in chosen)
        person = max(confidence.get(word, 0.0) for word in PERSON_WORDS)
        if photo.portrait:
            t.portraits += 1
            t.portraits_found += confidence.get("person", 0.0) >= 60
        if not photo.people:
            t.no_people += 1
            t.false_people += person >= 50
        shown = ", ".join(
            f"{name} {confidence[name]:.0f}{'' if marks[name] == 'ok' else ('!' if marks[name] == 'wrong' else '?')}"
            for name in chosen
        )
        t.lines.append(f"    {photo.name:<18} {len(tags):>3} tags | {shown}")
    return t


def quality_rows(t: Totals) -> list[tuple[str, str]]:
    """(target, measured) for each quality target."""
    n = max(1, t.photos)
    precision = 100 * t.high_ok / t.high if t.high else float("nan")
    return [
        ("median tags per photo (>= 15)", f"{statistics.median(t.tag_counts) if t.tag_counts else 0:g}"),
        ("accepted words among the tags (>= 45%)",
         f"{t.words_found}/{t.words} = {100 * t.words_found / max(1, t.words):.0f}%"),
        ("photos without tags (none)", f"{t.empty}"),
        ("accepted word at >= 60 (>= 70% of photos)", f"{t.hit_high}/{n} = {100 * t.hit_high / n:.0f}%"),
        ("precision of tags at >= 60 (>= 90%)", f"{t.high_ok}/{t.high} = {precision:.0f}%"),
        ("plainly wrong selected (<= 1 per 10 photos)", f"{t.wrong_selected} = {10 * t.wrong_selected / n:.2f} per 10"),
        ("portraits with person >= 60 (all)", f"{t.portraits_found}/{t.portraits}"),
        ("no people: person/face/people >= 50 (none)", f"{t.false_people}/{t.no_people}"),
    ]


def time_taggers(taggers: dict[str, Any], images: list[Any], runs: int) -> dict[str, tuple[float, float]]:
    """Per tagger: (median ms of tag() over the photos, each the median of ``runs``; tag_batch img/s in chunks
    of 4). The taggers take turns photo by photo and chunk by chunk, so load from other work on a shared machine
    falls on both alike and the ratio holds even when the absolute times do not."""
    per_photo: dict[str, list[float]] = {label: [] for label in taggers}
    for image in images:
        for label, tagger in taggers.items():
            tagger.tag(image)
            per_photo[label].append(
                statistics.median(timed(lambda image=image, tagger=tagger: tagger.tag(image))[0] for _ in range(runs))
            )
    chunks = [images[i : i + BATCH_CHUNK] for i in range(0, len(images), BATCH_CHUNK)]
    total_ms = dict.fromkeys(taggers, 0.0)
    for chunk in chunks:
        for label, tagger in taggers.items():
            total_ms[label] += timed(lambda chunk=chunk, tagger=tagger: tagger.tag_batch(chunk))[0]
    return {
        label: (statistics.median(per_photo[label]), len(images) * 1000.0 / total_ms[label]) for label in taggers
    }


def print_table(title: str, rows_old: list[tuple[str, str]], rows_new: list[tuple[str, str]]) -> None:
    print(title)
    print(f"  {'target':<46} {'old':>22} {'new':>22}")
    for (name, old), (_, new) in zip(rows_old, rows_new, strict=True):
        print(f"  {name:<46} {old:>22} {new:>22}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--half", choices=("calibration", "report", "all"), default="report")
    parser.add_argument("--baseline", default=BASELINE_REF, help="git ref of the old tagger (default %(default)s)")
    parser.add_argument("--runs", type=int, default=5, help="timed tag() runs per photo (median reported)")
    parser.add_argument("--quiet", action="store_true", help="no per-photo lines")
    parser.add_argument("--no-timing", action="store_true", help="quality only")
    parser.add_argument("--venv", action="store_true", help="also measure a fresh runtime venv (needs the registry)")
    parser.add_argument("--augmented", action="store_true",
                        help="score six views of each photo (eval_set.views), as the calibration choices were")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    from tagging.embedded import EmbeddedTagger

    photos = list(eval_set.available(args.half))
    if args.augmented:
        photos = [(photo, view) for photo, image in photos for view in eval_set.views(image)]
    missing = eval_set.missing_sources(args.half)
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"{args.half} half: {len(photos)} {'views of ' if args.augmented else ''}"
          f"{len(eval_set.photos(args.half))} photos"
          + (f" (missing: {', '.join(missing)}; run bench/install_eval_photos.sh)" if missing else ""))
    with tempfile.TemporaryDirectory(prefix="baseline-tagger-") as tmp:
        old = load_baseline(args.baseline, Path(tmp))()
        new = EmbeddedTagger()
        print(f"loading: old {old.load_seconds * 1000:.0f} ms, new {new.load_seconds * 1000:.0f} ms")
        results = {}
        for label, tagger in (("old", old), ("new", new)):
            results[label] = evaluate(tagger, photos)
            if not args.quiet:
                print(f"  {label} ({args.baseline if label == 'old' else 'working tree'}): tags returned | "
                      "auto-selected (>= 60, at least 3; ! plainly wrong, ? neither)")
                print("\n".join(results[label].lines))
        print_table(f"\nQuality on the {args.half} half", quality_rows(results["old"]), quality_rows(results["new"]))
        if not args.no_timing:
            images = [image for _, image in photos]
            cost = time_taggers({"old": old, "new": new}, images, args.runs)
            print_table(
                f"\nCost (median of {args.runs} runs per photo, decoded images)",
                [("tag() median per photo, ms (<= 150)", f"{cost['old'][0]:.1f}"),
                 ("tag_batch, chunks of 4, img/s (>= 15)", f"{cost['old'][1]:.1f}")],
                [("tag() median per photo, ms (<= 150)", f"{cost['new'][0]:.1f}"),
                 ("tag_batch, chunks of 4, img/s (>= 15)", f"{cost['new'][1]:.1f}")],
            )
        old.close()
        new.close()
    if args.venv:
        print("\nRuntime venv (bench/bench_venv.py, target <= 900 MB):", flush=True)
        subprocess.run([sys.executable, str(ROOT / "bench" / "bench_venv.py")], check=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load average at the end "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
