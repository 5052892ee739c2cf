"""Choose the embedded tagger's trusted terms on the calibration half (and only there).

Run from the repository root (after ``bash bench/install_eval_photos.sh``)::

    .venv/bin/python bench/choose_trusted.py [--from 20] [--photos 3] [--write]

Tags the six views of every calibration photo (``eval_set.views``) with the shipped model and no trusted terms,
then trusts a vocabulary term when it reached ``--from`` on views of at least ``--photos`` photos and was an
accepted word on every one of those views (a word not in the photo's labels counts against it). Words other
parts of the tagger give (whole-picture words, person words, "text") are never candidates. Prints the list,
the calibration views' figures before and after, and a two-fold estimate on the calibration half itself
(choose on half its photos, score the other half; 20 random splits), then with ``--write`` stores the list in
the shipped manifest. The report half is never read.

Measured on the report half (``bench_tagger.py --half report``) with the list this chose (from 20, 3 photos:
architecture, bug, building, cute, insect, landscape, mammal, nature, plant, rock): photos with an accepted word
at 60 or more 37% -> 52%, precision at 60 or more 90% -> 85%, wrong selections 0.56 -> 1.30 per 10. It breaks two
targets to approach a third, so the shipped manifest is not written with it (see ``_vocabulary.py``).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import eval_set  # noqa: E402
from bench.bench_tagger import FLOOR, PERSON_WORDS, THRESHOLD, judge  # noqa: E402
from tagging.embedded import EmbeddedTagger, load_manifest  # noqa: E402
from tagging.embedded._picture import CAPS, HUES  # noqa: E402
from tagging.embedded._vocabulary import lift  # noqa: E402
from tagging.models import Tag  # noqa: E402
from tagging.parse import parse_tags  # noqa: E402
from tagging.rules import auto_select  # noqa: E402

MANIFEST = ROOT / "tagging" / "embedded" / "data" / "efficientnet-lite0.manifest.json"
OTHER_SOURCES = frozenset({*CAPS, *(name for name, _, _ in HUES), *PERSON_WORDS, "text"})


@dataclass(frozen=True)
class View:
    photo: str
    tags: tuple[tuple[str, float, str], ...]  # (name, confidence, ok/wrong/other), most confident first


def tag_views(tagger: EmbeddedTagger) -> list[View]:
    views = []
    for photo, image in eval_set.available(eval_set.CALIBRATION):
        for view in eval_set.views(image):
            tags = parse_tags(tagger.tag(view))
            views.append(View(photo.name, tuple((t.name, t.confidence, judge(tagger, photo, t.name)) for t in tags)))
    return views


def choose(views: list[View], start: float, min_photos: int, vocabulary: set[str]) -> list[str]:
    """Terms accepted on every view where they reached ``start``, on at least ``min_photos`` photos."""
    good: dict[str, set[str]] = defaultdict(set)
    bad: set[str] = set()
    for view in views:
        for name, confidence, mark in view.tags:
            if confidence < start or name in OTHER_SOURCES or name not in vocabulary:
                continue
            if mark == "ok":
                good[name].add(view.photo)
            else:
                bad.add(name)
    return sorted(name for name, photos in good.items() if len(photos) >= min_photos and name not in bad)


def score(views: list[View], trusted: set[str], start: float) -> tuple[float, float, float]:
    """(share of views with an accepted word at 60+, precision at 60+, wrong selections per 10 views), with the
    trusted terms lifted as the tagger would (parents are not re-lifted here: an estimate)."""
    hits = high = high_ok = wrong = 0
    for view in views:
        marks = {name: mark for name, _, mark in view.tags}
        tags = [Tag(name, float(lift(np.array([c]), start)[0]) if name in trusted else c) for name, c, _ in view.tags]
        sure = [marks[t.name] for t in tags if t.confidence >= THRESHOLD]
        hits += "ok" in sure
        high += len(sure)
        high_ok += sure.count("ok")
        wrong += sum(marks[name] == "wrong" for name in auto_select(tags, THRESHOLD, FLOOR, {}))
    n = max(1, len(views))
    return hits / n, high_ok / max(1, high), 10 * wrong / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--from", dest="start", type=float, default=20.0, help="confidence that counts (%(default)s)")
    parser.add_argument("--photos", type=int, default=3, help="photos a term needs (%(default)s)")
    parser.add_argument("--write", action="store_true", help="store the list in the shipped manifest")
    args = parser.parse_args(argv)
    missing = eval_set.missing_sources(eval_set.CALIBRATION)
    if missing:
        print(f"not installed: {', '.join(missing)} (bash bench/install_eval_photos.sh)", file=sys.stderr)
        return 2

    manifest = load_manifest(MANIFEST)
    untrusted = replace(manifest, calibration=replace(manifest.calibration, trusted=(), trusted_from=0.0))
    tagger = EmbeddedTagger(untrusted)
    views = tag_views(tagger)
    vocabulary = set(tagger.vocabulary.names)
    trusted = choose(views, args.start, args.photos, vocabulary)
    print(f"{len(views)} calibration views; trusted from {args.start:g} on {args.photos}+ photos: {', '.join(trusted)}")
    for label, chosen in (("none", set()), ("trusted", set(trusted))):
        hits, precision, wrong = score(views, chosen, args.start)
        print(f"  {label:<8} word at 60+ on {hits:.0%} of views, precision at 60+ {precision:.1%}, "
              f"wrong {wrong:.2f} per 10")
    photos = sorted({v.photo for v in views})
    deltas = []
    for seed in range(20):
        random.Random(seed).shuffle(photos)
        fold = set(photos[::2])
        for fit_in in (True, False):
            fit = [v for v in views if (v.photo in fold) == fit_in]
            held = [v for v in views if (v.photo in fold) != fit_in]
            chosen = set(choose(fit, args.start, args.photos, vocabulary))
            after, before = score(held, chosen, args.start), score(held, set(), args.start)
            deltas.append([a - b for a, b in zip(after, before, strict=True)])
    mean = [statistics.mean(d[i] for d in deltas) for i in range(3)]
    print(f"  two-fold on the calibration half (chosen on one half of its photos, scored on the other): "
          f"word at 60+ {mean[0]:+.1%}, precision {mean[1]:+.1%}, wrong {mean[2]:+.2f} per 10")
    if args.write:
        data = json.loads(MANIFEST.read_text("utf-8"))
        data["calibration"]["trusted"] = trusted
        data["calibration"]["trusted_from"] = args.start
        MANIFEST.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")
        print(f"written to {MANIFEST.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
