"""Benchmark the Review page in a real browser: time per review step, and opening a queue of 10 and 10,000.

Run from the repository root (Debian's ``chromium`` must be installed; ``scripts/test.sh`` does it)::

    .venv/bin/python bench/bench_review.py [--sizes 10,10000] [--steps 60] [--opens 7]

For each queue size, in one run: a database is seeded in bulk with that many automatic verdict
sets (20 tags each, confidences spread like a tagger's; the first entries of the queue's default
order get their own 768 px preview JPEG, the rest share one), a real ``streamlit run dashboard.py``
serves each, and Debian's Chromium (Playwright):

1. opens ``/review`` in a fresh browser context (a new session) ``--opens`` times after one warm-up,
   the two sizes taking turns, timing in the page from navigation start to the first card drawn:
   its caption, its loaded image, its accepted-tags box;
2. in one session, presses the review shortcuts (A accept, X reject all, S skip, B back, U undo, in
   a fixed cycle) ``--steps`` times, timing in the page from the keydown to the next card's image
   and tags drawn (a new caption, its new image loaded, the accepted-tags box of this run), and to
   the whole panel settled (chart and buttons too), with a pause like a reviewer's between keys;
3. times the Python calls the page makes before its first card, straight on the same database.

Medians and 90th percentiles are printed side by side with the ratio of the two sizes, and the load
average, because other processes on the machine skew every number. No backend is called: the
embedded tagger is never loaded (the page does not touch it).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from bench.bench_store import time_call  # noqa: E402
from tagging.images import PREVIEW_SIDE, make_preview, make_thumbnail  # noqa: E402
from tagging.review import ReviewSession, Rule  # noqa: E402
from tagging.store import ResultCache, ReviewFilters, Store  # noqa: E402
from tests.browser.server import CHROMIUM, CHROMIUM_ARGS, start_app  # noqa: E402

TAGS = 20
CYCLE = "aaxsbu"  # accept, accept, reject all, skip, back, undo
PAUSE = 0.35  # seconds between keys, about a quick reviewer's

READY = """
(() => {
  const caption = () => {
    const c = document.querySelector('[data-testid="stImageCaption"]');
    return c ? c.innerText : null;
  };
  const image = () => document.querySelector('[data-testid="stImageContainer"] img');  // the card's, drawn first
  // The image and its tags are up: a loaded picture under its caption, and the accepted-tags box of this
  // run (Streamlit marks an element of the previous run data-stale until the run draws it again; the
  // toggles come just before the box).
  const drawn = () => {
    const img = image();
    const tags = document.querySelector('[data-testid="stMultiSelect"]');
    const box = tags ? tags.closest('[data-stale]') : null;
    return caption() !== null && img && img.complete && img.naturalWidth > 0
      && box !== null && box.getAttribute('data-stale') === 'false';
  };
  const settled = () => document.querySelectorAll('[data-stale="true"]').length === 0;
  window.__review = {opened: null, t0: 0, t1: 0, t2: 0, done: true, caption: null, src: null};
  const open = () => { if (drawn()) { window.__review.opened = performance.now(); } else requestAnimationFrame(open); };
  requestAnimationFrame(open);
  document.addEventListener('keydown', () => {
    const r = window.__review;
    r.t0 = performance.now(); r.t1 = 0; r.t2 = 0; r.done = false; r.caption = caption();
    const img = image(); r.src = img ? img.currentSrc : null;
    const tick = () => {
      const img = image();
      if (!r.t1 && drawn() && caption() !== r.caption && img.currentSrc !== r.src) r.t1 = performance.now();
      if (r.t1 && settled()) { r.t2 = performance.now(); r.done = true; } else requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }, true);
})();
"""


def _photo(index: int) -> Image.Image:
    """A distinct 1024x768 picture per index (so each preview is its own file in the browser)."""
    image = Image.new("RGB", (1024, 768), ((index * 53) % 256, (index * 97) % 256, (index * 29) % 256))
    draw = ImageDraw.Draw(image)
    for k in range(12):
        x = (index * 31 + k * 83) % 900
        draw.ellipse((x, k * 60, x + 120, k * 60 + 90), fill=((k * 40) % 256, (index * 7) % 256, 200))
    draw.text((40, 40), f"image {index}", fill=(255, 255, 255))
    return image


def _confidences(index: int) -> list[float]:
    """``TAGS`` confidences for one image, best first, spread like a tagger's (a few high, many low)."""
    rng = random.Random(index)
    return sorted((round(100 * rng.random() ** 2, 4) for _ in range(TAGS)), reverse=True)


def seed(store: Store, n: int, distinct: int) -> None:
    """``n`` automatic verdict sets of ``TAGS`` tags, in bulk, sharing one preview; then the first ``distinct``
    of the queue's default order (nearest 60) get their own, so every step loads a new image."""
    shared = _photo(10**6)
    shared_preview, shared_thumb = make_preview(shared), make_thumbnail(shared)
    with store.engine.begin() as conn:
        meta = sa.MetaData()
        t = {name: sa.Table(name, meta, autoload_with=conn) for name in ("images", "verdict_sets", "feedback")}
        for start in range(0, n, 500):
            chunk = range(start, min(n, start + 500))
            conn.execute(t["images"].insert(), [dict(
                image_key=f"q{i:06}", filename=f"q{i:06}.jpg", source="batch", width=1024, height=768,
                thumbnail=shared_thumb, preview=shared_preview, created_at="t", updated_at="t") for i in chunk])
            conn.execute(t["verdict_sets"].insert(), [dict(
                image_key=f"q{i:06}", backend="embedded", language="en", provenance="automatic", threshold=60.0,
                min_tags=3, batch="bench", saved_by="bench",
                saved_at=f"2025-01-01T{i // 3600 % 24:02}:{i // 60 % 60:02}:{i % 60:02}+00:00") for i in chunk])
            conn.execute(t["feedback"].insert(), [dict(
                image_key=f"q{i:06}", backend="embedded", language="en", tag=f"tag{(i + j) % 97}",
                confidence=confidence, accepted=confidence >= 60, threshold=60.0, min_tags=3, saved_at="t")
                for i in chunk for j, confidence in enumerate(_confidences(i))])
    first = store.review_queue(0, min(distinct, 500), "nearest", threshold=60.0).items
    with store.engine.begin() as conn:
        images = sa.Table("images", sa.MetaData(), autoload_with=conn)
        for index, item in enumerate(first):
            photo = _photo(index)
            conn.execute(images.update().where(images.c.image_key == item.image_key)
                         .values(preview=make_preview(photo), thumbnail=make_thumbnail(photo)))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def page_calls(db: Path) -> float:
    """What the Review page asks the database before its first card, ms (median of 7, warm)."""
    store = Store(db)
    cache = ResultCache(store)

    def first_card() -> None:
        store.review_facets()
        store.tag_overrides()
        cache.count_unjudged()
        session = ReviewSession(store, Rule(60.0, 3), ReviewFilters(), analyst="bench", cache=cache)
        card = session.start()
        store.preview(card.item.image_key)

    return time_call(first_card, 7)


def open_once(browser, url: str) -> float:
    """Open ``/review`` in a fresh context (a new session); ms from navigation start to the first card."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.add_init_script(READY)
        page.goto(url + "/review")
        page.wait_for_function("() => window.__review && window.__review.opened !== null", timeout=60_000)
        return float(page.evaluate("() => window.__review.opened"))
    finally:
        context.close()


def step_through(browser, url: str, steps: int) -> dict[str, list[float]]:
    """One session pressing the cycle's keys; ms per key to the next card's image and tags (and all settled)."""
    step_ms: dict[str, list[float]] = {}
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.add_init_script(READY)
        page.goto(url + "/review")
        page.wait_for_function("() => window.__review && window.__review.opened !== null", timeout=60_000)
        page.locator("h1").first.click()  # the keyboard goes to the page, not an input
        time.sleep(PAUSE)
        for step in range(steps):
            key = CYCLE[step % len(CYCLE)]
            page.keyboard.press(key)
            try:
                page.wait_for_function("() => window.__review.done", timeout=30_000)
            except Exception:
                page.screenshot(path=str(Path(tempfile.gettempdir()) / "bench-review-timeout.png"), full_page=True)
                print(f"step {step} ({key}) timed out; screenshot in {tempfile.gettempdir()}", file=sys.stderr)
                raise
            shown, whole = page.evaluate("() => [window.__review.t1 - window.__review.t0, "
                                         "window.__review.t2 - window.__review.t0]")
            if step >= len(CYCLE):  # the first cycle warms up
                step_ms.setdefault(key, []).append(shown)
                step_ms.setdefault("settled", []).append(whole)
            time.sleep(PAUSE)
    finally:
        context.close()
    return step_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,10000")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--opens", type=int, default=7)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does)")
    from playwright.sync_api import sync_playwright

    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; previews {PREVIEW_SIDE} px; "
          f"{TAGS} tags per image; keys cycle {CYCLE.upper()}, {PAUSE * 1000:.0f} ms apart")
    calls: dict[int, float] = {}
    opens: dict[int, list[float]] = {n: [] for n in sizes}
    steps: dict[int, dict[str, list[float]]] = {}
    apps = {}
    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp, sync_playwright() as playwright:
        try:
            for n in sizes:
                work = Path(tmp) / f"q{n}"
                work.mkdir()
                started = time.perf_counter()
                seed(Store(work / "tagging.db"), n, distinct=min(n, args.steps + 20))
                print(f"seeded {n:,} sets in {time.perf_counter() - started:.1f} s", flush=True)
                calls[n] = page_calls(work / "tagging.db")
                apps[n] = start_app(work)
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            for n in sizes:
                open_once(browser, apps[n].url)  # warm-up: first page run of the server
            for _ in range(args.opens):  # the sizes take turns, so the machine's load hits them alike
                for n in sizes:
                    opens[n].append(open_once(browser, apps[n].url))
            for n in sizes:
                # A cycle of 6 keys decides about 2 images; a short queue is stepped through to near its end.
                count = args.steps if n >= args.steps else max(len(CYCLE) * 2, min(args.steps, (n - 2) * 2))
                steps[n] = step_through(browser, apps[n].url, count)
            browser.close()
        finally:
            for app in apps.values():
                app.stop()
    print()
    header = "".join(f"{f'{n:,} images':>24}" for n in sizes)
    print(f"{'ms':34}{header}")
    print(f"{'':34}" + "".join(f"{'median':>12}{'p90':>12}" for _ in sizes))

    def row(label: str, values: list[list[float]]) -> None:
        cells = "".join(f"{statistics.median(v):12.0f}{pct(v, 0.9):12.0f}" if v else f"{'-':>12}{'-':>12}"
                        for v in values)
        print(f"{label:34}{cells}")

    row("open /review (fresh session)", [opens[n] for n in sizes])
    every = [[ms for key, values in steps[n].items() if key != "settled" for ms in values] for n in sizes]
    row("review step: image and tags shown", every)
    for key, name in (("a", "accept (A)"), ("x", "reject all (X)"), ("s", "skip (S)"), ("b", "back (B)"),
                      ("u", "undo (U)")):
        row(f"  {name}", [steps[n].get(key, []) for n in sizes])
    row("review step: whole panel settled", [steps[n].get("settled", []) for n in sizes])
    print(f"{'page queries before the first card':34}" + "".join(f"{calls[n]:12.1f}{'':12}" for n in sizes))
    if len(sizes) == 2:
        small, big = sizes
        opened = statistics.median(opens[big]) / statistics.median(opens[small])
        print(f"\nratio {big:,} / {small:,}: open {opened:.2f}"
              f", step {statistics.median(every[1]) / statistics.median(every[0]):.2f}"
              f", page queries {calls[big] / calls[small]:.2f}")
    print("steps measured: " + ", ".join(f"{n:,}: {len(e)}" for n, e in zip(sizes, every, strict=True))
          + f"; load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
