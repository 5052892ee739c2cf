"""Tune, Library, Compare, Settings and the Tag page at 1k .. 1M images: the old reads beside the new ones.

Run from the repository root::

    .venv/bin/python bench/bench_scale.py [--pg 1000,100000,1000000] [--sqlite 1000,100000] [--old-timeout 120]

For each size it builds a synthetic library with ``python -m tagging bench`` (10 verdicts per
image, 30 % reviewed) on a throwaway PostgreSQL cluster (tests/pgcluster.py) or a SQLite file,
then times, server-side, the calls each page makes on open and on a widget move: the old ones
(what the pages called before: every verdict read and counted in Python) and the new ones (kept
totals, SQL aggregates, keyset pages, streamed exports). Each page's sequence runs in a fresh
process, so every "first open" is cold (no cache of an earlier run), and old runs are stopped
after ``--old-timeout`` seconds and printed as "> N s". Also printed: the peak RSS of a process
that visits every page (new) and of a full CSV export. Nothing is asserted: the machine is
shared and the load average is printed with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PAGE = 10  # the Library's default page size
SEARCH = ["tag0001"]


# --- what the pages call --------------------------------------------------------------------------
def old_library(store, timer) -> None:
    """The Library before: every entry, the tree, counts, search, both exports, on every rerun."""
    import sqlalchemy as sa

    from tagging.store import _schema as s
    from tagging.store import library

    def rerun(query):
        entries = store.library_entries()
        f = s.feedback
        with store._read() as conn:
            links = [(r[0], r[1], int(r[2])) for r in conn.execute(
                sa.select(f.c.tag, f.c.parent, sa.func.count()).where(f.c.parent.is_not(None))
                .group_by(f.c.tag, f.c.parent).order_by(f.c.tag, f.c.parent))]
        tree = library.TagTree(links, entries)
        library.tag_counts(entries)
        results = library.search(entries, query, library.ALL_OF, tree)
        page = library.paginate(results, 1, PAGE)
        store.thumbnails([e.image_key for e in page.items])
        library.export_csv(results)
        library.export_json(results)

    timer("Library, first open", lambda: rerun([]))
    timer("Library, search", lambda: rerun(SEARCH))


def new_library(store, timer) -> None:
    from tagging.store import TagSearch, cursor_of, library

    state = {}

    def first_open():
        version = store.data_version()
        tags = store.library_tags()
        links = store.tag_parents()
        store.library_size(TagSearch())
        tree = library.TagTree.from_counts(links, dict(tags))
        library.counts_frame(tags)
        items = store.library_page(TagSearch(), PAGE)
        store.thumbnails([e.image_key for e in items])
        state.update(tags=tags, tree=tree, items=items, version=version)

    def search():
        store.data_version()
        query = library.search_of(SEARCH, library.ALL_OF, [t for t, _ in state["tags"]], state["tree"])
        store.library_size(query)
        items = store.library_page(query, PAGE)
        store.thumbnails([e.image_key for e in items])

    def next_page():
        store.data_version()
        items = store.library_page(TagSearch(), PAGE, after=cursor_of(state["items"][-1]))
        store.thumbnails([e.image_key for e in items])

    timer("Library, first open", first_open)
    timer("Library, search", search)
    timer("Library, next page", next_page)


def old_tune(store, timer) -> None:
    from tagging import metrics

    def first_open():
        store.feedback_groups()
        store.awaiting_review()
        feedback = store.feedback_by_image("embedded", "en")
        curve = metrics.threshold_curve(feedback, 3)
        metrics.tag_stats(feedback, 60, 3)
        metrics.evidence(feedback)
        if metrics.recommend(curve).threshold is not None:
            metrics.threshold_stability(feedback, 3)

    timer("Tune, first open", first_open)


def new_tune(store, timer, from_rows: bool = False) -> None:
    """Tune as the page computes it (``metrics.tune_data``: the sums kept at save time), or with ``from_rows``
    as it did before the sums (the window query over every reviewed verdict)."""
    from tagging import metrics

    state = {}

    def first_open():
        store.data_version()
        store.feedback_groups()
        store.awaiting_review()
        overrides = store.tag_overrides()
        if from_rows:
            data = metrics.Aggregated(store.tune_rows("embedded", "en", 3, overrides))
        else:
            data = metrics.tune_data(store, "embedded", "en", 3, overrides)
        curve = data.curve()
        data.tag_stats(60)
        data.evidence()
        if metrics.recommend(curve).threshold is not None:
            data.stability()
        state["data"] = data

    def threshold_move():
        store.data_version()
        data = state["data"]
        data.tag_stats(55)
        metrics.at_threshold(data.curve(), 55)

    def target_move():
        store.data_version()
        data = state["data"]
        curve = data.curve()
        if metrics.recommend(curve, metrics.TARGET_PRECISION, 0.8).threshold is not None:
            data.stability(metrics.TARGET_PRECISION, 0.8)

    timer("Tune, first open", first_open)
    timer("Tune, threshold move", threshold_move)
    timer("Tune, target move", target_move)


def old_compare(store, timer) -> None:
    from tagging import compare
    from tagging.store import library

    def run():
        entries = store.library_entries()
        library.tag_counts(entries)
        found = library.search(entries, [], library.ANY_OF)
        images = compare.unique_images(compare.SetImage(e.image_key, e.filename) for e in found)[:500]
        backends = sorted({g.backend for g in store.feedback_groups() if g.language == "en"})
        compare.truth_from({b: store.feedback_by_image(b, "en") for b in backends})
        return images

    timer("Compare over library images", run)


def new_compare(store, timer) -> None:
    from tagging import compare
    from tagging.store import TagSearch

    def run():
        store.library_tags()
        images, seen = [], set()
        for chunk in store.iter_library(TagSearch(), chunk=501):
            for e in chunk:
                if e.image_key not in seen:
                    seen.add(e.image_key)
                    images.append(compare.SetImage(e.image_key, e.filename))
            break
        store.library_size(TagSearch())
        keys = [i.key for i in images[:500]]
        backends = store.reviewed_backends("en", keys)
        compare.truth_from({b: store.feedback_by_image(b, "en", image_keys=keys) for b in backends})

    timer("Compare over library images", run)


def old_counts(store, timer) -> None:
    import sqlalchemy as sa

    from tagging.store import _schema as s

    def counts():
        f = s.feedback
        with store._read() as conn:
            conn.execute(sa.select(sa.func.count(sa.distinct(f.c.image_key)), sa.func.count())).one()

    timer("Settings counts", lambda: (counts(), store.schema_version()))
    timer("Tag-page slider move (its count)", counts)


def new_counts(store, timer) -> None:
    timer("Settings counts", lambda: (store.counts(), store.schema_version()))
    timer("Tag-page slider move (its count)", store.counts)


def rows_tune(store, timer) -> None:
    new_tune(store, timer, from_rows=True)


def new_save(store, timer, sums: bool = True) -> None:
    """A reviewed save of a new image with 10 tags, then of the same image again (a re-review), then its deletion:
    with Tune's sums kept (``sums``) or with their upkeep switched off in this process, for the cost it adds."""
    from tagging.store import FeedbackItem, _tune_sums

    if not sums:
        _tune_sums.apply = lambda conn, before, after: None
        _tune_sums.contribution = lambda conn, images, overrides=None: _tune_sums.Contribution()
    items = [FeedbackItem(f"tag{j:04d}", 95 - 9 * j, j % 3 != 0) for j in range(10)]

    def save(key: str = "bench-save"):
        store.save_feedback(image_key=key, filename="b.jpg", source="Upload", backend="embedded",
                            language="en", threshold=60, min_tags=3, items=items, review_mode="prefilled")

    save("bench-warm")  # a warm server: connections, compiled statements
    store.delete_image("bench-warm")
    timer("save a reviewed image (new)", save)
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        save()
        runs.append(time.perf_counter() - start)
    timer("save it again (re-review, median of 5)", lambda: time.sleep(sorted(runs)[2]))
    timer("delete it", lambda: store.delete_image("bench-save"))


def nosums_save(store, timer) -> None:
    new_save(store, timer, sums=False)


def new_export(store, timer) -> None:
    from tagging.store import TagSearch, library

    def run():
        with tempfile.TemporaryFile() as out:
            library.write_export(library.stream_csv(store.iter_library(TagSearch())), out)

    timer("full CSV export", run)


SUITES = {
    "old": {"library": old_library, "tune": old_tune, "compare": old_compare, "counts": old_counts},
    "new": {"library": new_library, "tune": new_tune, "compare": new_compare, "counts": new_counts,
            "export": new_export, "save": new_save},
    # Tune before its sums were kept at save time, and a save without their upkeep: the "previous" column.
    "previous": {"tune": rows_tune, "save": nosums_save},
}


def worker(target: str, version: str, suites: list[str]) -> None:
    """Run suites in this process; print one JSON line: timings and peak RSS."""
    from tagging.store import Store

    store = Store(target)
    results: dict[str, float] = {}

    def timer(name, call):
        start = time.perf_counter()
        call()
        results[name] = time.perf_counter() - start

    for suite in suites:
        SUITES[version][suite](store, timer)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"times": results, "rss_mb": rss}), flush=True)


def measure(target: str, version: str, suites: list[str], timeout: float) -> dict:
    command = [sys.executable, __file__, "--worker", target, version, ",".join(suites)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"timeout": timeout}
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def build(target: str, images: int) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tagging", "bench", target, "--images", str(images)], check=True,
                   cwd=ROOT, capture_output=True)
    return time.perf_counter() - start


def run_size(label: str, target: str, images: int, old_timeout: float, new_timeout: float, rows: list,
             reuse: bool = False) -> None:
    if reuse:
        print(f"# {label} {images:,} images: built beforehand (load {os.getloadavg()[0]:.1f})", flush=True)
    else:
        built = build(target, images)
        print(f"# {label} {images:,} images: built in {built:.0f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    for suite in ("library", "tune", "compare", "counts", "save"):
        old = measure(target, "old", [suite], old_timeout) if suite in SUITES["old"] else {}
        previous = measure(target, "previous", [suite], old_timeout) if suite in SUITES["previous"] else {}
        new = measure(target, "new", [suite], new_timeout)
        names = list((new.get("times") or {}).keys()) or [suite]
        for name in names:
            rows.append((label, images, name, _cell(old, name), _cell(previous, name), _cell(new, name)))
            print(f"{label:10} {images:>9,} {name:34} old {rows[-1][3]:>12}   previous {rows[-1][4]:>10}   "
                  f"new {rows[-1][5]:>10}", flush=True)
    every = measure(target, "new", ["library", "tune", "compare", "counts"], new_timeout)
    export = measure(target, "new", ["export"], new_timeout * 4)
    rows.append((label, images, "RSS after every page (new)", "", "",
                 f"{every.get('rss_mb', float('nan')):.0f} MB"))
    rows.append((label, images, "full CSV export (new)", "", "", f"{_cell(export, 'full CSV export')}, "
                 f"{export.get('rss_mb', float('nan')):.0f} MB RSS"))
    for row in rows[-2:]:
        print(f"{label:10} {images:>9,} {row[2]:34} {'':>16}   new {row[5]}", flush=True)


def _cell(result: dict, name: str) -> str:
    if "timeout" in result:
        return f"> {result['timeout']:.0f} s"
    if not result:
        return ""
    if "error" in result:
        return "error: " + result["error"][:60]
    value = result.get("times", {}).get(name)
    return "—" if value is None else (f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs=3, metavar=("TARGET", "VERSION", "SUITES"))
    parser.add_argument("--pg", default="1000,100000", help="PostgreSQL sizes (comma-separated)")
    parser.add_argument("--sqlite", default="1000,100000", help="SQLite sizes (comma-separated)")
    parser.add_argument("--reuse", action="append", default=[], metavar="URL=N",
                        help="also measure an existing synthetic library of N images at URL (built by "
                             "python -m tagging bench URL --images N), e.g. a million images built beforehand")
    parser.add_argument("--old-timeout", type=float, default=120.0)
    parser.add_argument("--new-timeout", type=float, default=300.0)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.worker[2].split(","))
        return
    from tests import pgcluster

    rows: list = []
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for images in [int(n) for n in args.sqlite.split(",") if n]:
            run_size("SQLite", str(Path(folder) / f"lib{images}.db"), images, args.old_timeout, args.new_timeout, rows)
        sizes = [int(n) for n in args.pg.split(",") if n]
        if sizes:
            cluster = pgcluster.start()
            try:
                for images in sizes:
                    run_size("PostgreSQL", cluster.url(cluster.create_database()), images, args.old_timeout,
                             args.new_timeout, rows)
            finally:
                cluster.stop()
    for item in args.reuse:
        url, _, images = item.rpartition("=")
        run_size("PostgreSQL", url, int(images), args.old_timeout, args.new_timeout, rows, reuse=True)
    print(f"\nload average at end: {os.getloadavg()}\n")
    print("| database | images | what | old (before issue 16) | previous (no Tune sums) | new |\n"
          "|---|---|---|---|---|---|")
    for label, images, name, old, previous, new in rows:
        print(f"| {label} | {images:,} | {name} | {old} | {previous} | {new} |")


if __name__ == "__main__":
    main()
