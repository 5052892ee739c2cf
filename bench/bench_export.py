"""The Library's full CSV export: an earlier commit's code and today's, side by side on the same libraries.

``python bench/bench_export.py [--previous 289da82] [--sqlite 100000] [--pg 100000,1000000] [--reuse URL=N]
[--rounds 2]``

Builds synthetic libraries (``python -m tagging bench``: ten verdicts an image, 30% reviewed) on SQLite files
and a throwaway PostgreSQL cluster (tests/pgcluster.py). Each export runs in its own process, alternating the
``tagging`` package of ``--previous`` (extracted with ``git archive``; the default is the commit before the
export's verdicts were read in the database) and today's, and streams the whole library into a temporary file.
Prints seconds per export (the best of ``--rounds``), rows per second and the ratio measured in the same run.
Nothing is asserted. Needs the git checkout (for ``--previous``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ONE_EXPORT = """
import json, sys, tempfile, time
from tagging.store import Store, TagSearch, library
store = Store(sys.argv[1])
with tempfile.TemporaryFile() as out:
    start = time.perf_counter()
    written = library.write_export(library.stream_csv(
        store.iter_library(TagSearch()), lambda c: store.analysis_summaries([e.image_key for e in c])), out)
    print(json.dumps({"seconds": time.perf_counter() - start, "bytes": written}))
"""


def previous_package(revision: str, folder: Path) -> Path:
    """``tagging`` as it was at ``revision``, extracted under ``folder``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "tagging"], check=True,
                             capture_output=True).stdout
    target = folder / f"previous-{revision}"
    with tempfile.TemporaryFile() as f:
        f.write(archive)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(target, filter="data")
    return target


def export(code_root: Path, url: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    out = subprocess.run([sys.executable, "-c", ONE_EXPORT, url], check=True, capture_output=True, text=True,
                         env=env, cwd=code_root).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(label: str, url: str, images: int, rounds: int, previous: Path, rows: list) -> None:
    best: dict[str, float] = {}
    sizes: dict[str, int] = {}
    for _ in range(rounds):
        for name, root in (("previous", previous), ("new", ROOT)):
            result = export(root, url)
            best[name] = min(best.get(name, float("inf")), result["seconds"])
            sizes[name] = result["bytes"]
            print(f"{label} {images:,}: {name} {result['seconds']:.1f} s", flush=True)
    if sizes["previous"] != sizes["new"]:
        raise SystemExit(f"the two exports differ in size: {sizes}")
    rows.append((label, images, best["previous"], best["new"], sizes["new"]))


def build(url: str, images: int) -> None:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tagging", "bench", url, "--images", str(images)], check=True, cwd=ROOT)
    print(f"built {images:,} images in {time.perf_counter() - start:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--previous", default="289da82", help="the commit to compare with (default: 289da82)")
    parser.add_argument("--sqlite", default="100000", help="SQLite sizes (comma-separated)")
    parser.add_argument("--pg", default="100000", help="PostgreSQL sizes (comma-separated)")
    parser.add_argument("--reuse", action="append", default=[], metavar="URL=N",
                        help="also measure an existing synthetic library of N images")
    parser.add_argument("--rounds", type=int, default=2, help="exports per variant, alternating (the best is kept)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests import pgcluster

    rows: list = []
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        previous = previous_package(args.previous, Path(folder))
        for images in [int(n) for n in args.sqlite.split(",") if n]:
            url = str(Path(folder) / f"lib{images}.db")
            build(url, images)
            measure("SQLite", url, images, args.rounds, previous, rows)
        sizes = [int(n) for n in args.pg.split(",") if n]
        if sizes:
            cluster = pgcluster.start()
            try:
                for images in sizes:
                    url = cluster.url(cluster.create_database())
                    build(url, images)
                    measure("PostgreSQL", url, images, args.rounds, previous, rows)
            finally:
                cluster.stop()
        for item in args.reuse:
            url, _, images = item.rpartition("=")
            measure("PostgreSQL", url, int(images), args.rounds, previous, rows)
    print(f"\nload average at end: {os.getloadavg()}\n")
    print(f"| database | images | full CSV export: {args.previous} | new | ratio | rows/s new | file |\n"
          "|---|---|---|---|---|---|---|")
    for label, images, old, new, size in rows:
        print(f"| {label} | {images:,} | {old:.1f} s | {new:.1f} s | {old / new:.2f}x | {images / new:,.0f} | "
              f"{size / 1e6:.0f} MB |")


if __name__ == "__main__":
    main()
