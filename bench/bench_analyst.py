"""Issue 18's Tag page targets in Debian's Chromium, the old code beside the new in one run.

Starts two ``streamlit run dashboard.py`` servers on free loopback ports, one on a checkout of the
old commit (``git archive``, default: the commit before issue 18) and one on this checkout, each with
a throwaway database, the embedded tagger, no Imagga key. For each, in turns:

- first visit to the Tag page on a warm server (model loaded, answer cached): page load -> tags shown;
- sample to tags shown: choosing another sample (tagged before) -> its tags and chart shown;
- slider release to chart updated: one arrow key on the threshold -> the chart and caption of the new value;
- a reload keeps the image, threshold, floor and edits (yes/no).

    .venv/bin/python bench/bench_analyst.py [--old 00986ac] [--rounds 5]

Times are medians over the rounds; the ratio is old / new (above 1: the new code is faster).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.screenshot import choose_sample  # noqa: E402
from tests.browser.server import CHROMIUM, CHROMIUM_ARGS, TAGS_READY, start_app  # noqa: E402

OLD_REF = "00986ac"  # main before issue 18 (the Tag and Batch pages as the issue found them)
TIMEOUT = 60_000
SLIDER = '[data-testid="stSlider"] input[type="range"]'
SETTLED = "() => document.querySelectorAll('[data-stale=\"true\"]').length === 0"


def old_checkout(ref: str, into: Path) -> Path:
    """The files of ``ref`` under ``into`` (this checkout's .venv linked in, so it runs the same libraries)."""
    archive = into / "old.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), ref], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "old", filter="data")
    (into / "old" / ".venv").symlink_to(ROOT / ".venv")
    return into / "old"


def first_visit(browser, url: str) -> float:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    start = time.perf_counter()
    page.goto(url + "/")
    page.wait_for_function(TAGS_READY, arg="cat.jpg", timeout=TIMEOUT)
    seconds = time.perf_counter() - start
    page.close()
    return seconds


def slider_step(page, value: int) -> float:
    """One ArrowRight on the threshold at ``value``: seconds until the caption shows the new value, none stale."""
    page.locator(SLIDER).focus()
    start = time.perf_counter()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        """(v) => [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
              .some(c => c.innerText.includes('≥ ' + v + ' '))""", arg=value + 1, timeout=TIMEOUT)
    page.wait_for_function(SETTLED, timeout=TIMEOUT)
    return time.perf_counter() - start


def reload_keeps(browser, url: str) -> bool:
    """Rocket, threshold 57, one chip removed; after a reload: the same sample, threshold and chips?"""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url + "/")
    page.wait_for_function(TAGS_READY, arg="cat.jpg", timeout=TIMEOUT)
    choose_sample(page, "rocket.jpg")
    page.locator(SLIDER).focus()
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
        page.wait_for_timeout(400)
    page.wait_for_function(SETTLED, timeout=TIMEOUT)
    chips = '[data-testid="stMultiSelect"] span[data-tag]'
    page.locator(chips).last.locator("button").click()
    page.wait_for_timeout(800)
    page.wait_for_function(TAGS_READY, arg="rocket.jpg", timeout=TIMEOUT)
    before = page.locator(chips).evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
    page.reload()
    try:
        page.wait_for_function(TAGS_READY, arg="rocket.jpg", timeout=15_000)
    except Exception:  # noqa: BLE001 - the old page comes back on the cat: not kept
        page.close()
        return False
    after = page.locator(chips).evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
    value = page.locator('[data-testid="stSliderThumbValue"]').inner_text()
    page.close()
    return after == before and value == "57"


def measure(browser, url: str, rounds: int) -> dict[str, float | bool]:
    first_visit(browser, url)  # warm: the model loaded and the cat's answer cached
    visits = [first_visit(browser, url) for _ in range(rounds)]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url + "/")
    page.wait_for_function(TAGS_READY, arg="cat.jpg", timeout=TIMEOUT)
    choose_sample(page, "coffee.jpg")  # tagged once, so every timed choice below is a cached answer
    samples = []
    for _ in range(rounds):
        samples.append(choose_sample(page, "cat.jpg"))
        samples.append(choose_sample(page, "coffee.jpg"))
    choose_sample(page, "cat.jpg")
    page.locator(SLIDER).focus()
    page.keyboard.press("Home")
    page.wait_for_function(SETTLED, timeout=TIMEOUT)
    page.wait_for_timeout(500)
    steps = [slider_step(page, value) for value in range(rounds * 2)]
    page.close()
    return {"first visit (s)": statistics.median(visits), "sample -> tags (s)": statistics.median(samples),
            "slider key -> chart (s)": statistics.median(steps), "reload keeps state": reload_keeps(browser, url)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default=OLD_REF, help="the commit to compare with (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-analyst-") as tmp:
        work = Path(tmp)
        old_root = old_checkout(args.old, work)
        servers = {"old": start_app(work / "old-app", root=old_root), "new": start_app(work / "new-app")}
        results: dict[str, dict] = {}
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                for name, app in servers.items():
                    results[name] = measure(browser, app.url, args.rounds)
                browser.close()
        finally:
            for app in servers.values():
                app.stop()
    print(f"old = {args.old}, new = this checkout; medians of {args.rounds} rounds (Chromium, 1400x1000)")
    print(f"{'':28}{'old':>10}{'new':>10}{'old/new':>10}")
    for key in results["new"]:
        old, new = results["old"][key], results["new"][key]
        if isinstance(new, bool):
            print(f"{key:28}{'yes' if old else 'no':>10}{'yes' if new else 'no':>10}")
        else:
            print(f"{key:28}{old:>10.3f}{new:>10.3f}{old / new:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
