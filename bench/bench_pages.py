"""Every page open in Chromium, old beside new in one run: the issue 18 target "every page open <= 2 s".

Runs two servers side by side on the same data: the baseline (a git ref of this repository, exported
with ``git archive`` to a temporary folder) and this working tree. Each gets its own copy of the
database ``tests/browser/pages_seed.py`` makes (the baseline's written by its own code, so its schema is
its own). For every page, in a fresh browser context (a new Streamlit session) per visit, the time from
``page.goto`` until the page's own content is drawn and no element is stale. The first visit of each page
after the server starts is reported apart (it loads the model, fills caches); then ``--visits`` more,
alternating old and new, and their median.

    .venv/bin/python bench/bench_pages.py [--baseline main] [--visits 3]

With ``--db URL`` only this tree runs, on that database (a synthetic library of a million images built by
``python -m tagging bench URL --images 1000000``): the issue 16 page targets, in the browser.

    .venv/bin/python bench/bench_pages.py --db postgresql://... [--visits 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.server import CHROMIUM, CHROMIUM_ARGS, start_app  # noqa: E402

TIMEOUT = 90_000
SETTLED = "() => document.querySelectorAll('[data-stale=\"true\"]').length === 0"
# page -> what shows it is drawn (the first of these selectors to be visible)
PAGES = {
    "tag": '[data-testid="stImageCaption"]',
    "batch": '[data-testid="stFileUploader"]',
    "review": '[data-testid="stImageCaption"]',
    "compare": '[data-testid="stMetric"]',
    "tune": '[data-testid="stVegaLiteChart"]',
    "library": '[data-testid="stDataFrame"]',
    "settings": '[data-testid="stMarkdown"]',
}
# A synthetic library (--db) stores no pictures: its Review card shows a notice instead of an image.
SYNTHETIC = {**PAGES, "review": '[data-testid="stButton"]'}
TITLES = {"tag": "Tag an image", "batch": "Tag a batch of images", "review": "Review", "compare": "Compare taggers",
          "tune": "Tune the threshold", "library": "Library", "settings": "Settings"}
SEED = ROOT / "tests" / "browser" / "pages_seed.py"


def export_baseline(ref: str, folder: Path) -> Path:
    """``git archive ref`` unpacked into ``folder``: the baseline's own code, models and samples."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def seed_with(code_root: Path, db: Path) -> None:
    """Seed ``db`` with ``code_root``'s own ``tagging`` (a subprocess: one ``tagging`` per interpreter)."""
    script = (
        "import importlib.util, inspect, sys; from pathlib import Path\n"
        f"sys.path.insert(0, {str(code_root)!r})\n"
        f"spec = importlib.util.spec_from_file_location('pages_seed', {str(SEED)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        f"module.seed(Path({str(db)!r}))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=str(code_root))


def server_memory(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MB of the server process (``python -m streamlit run``)."""
    def status(p: int) -> dict[str, float]:
        try:
            lines = Path(f"/proc/{p}/status").read_text().splitlines()
        except OSError:
            return {}
        return {k: float(v.split()[0]) / 1024 for k, _, v in (line.partition(":") for line in lines)
                if k in ("VmRSS", "VmHWM")}

    found = status(pid)
    return found.get("VmRSS", float("nan")), found.get("VmHWM", float("nan"))


def open_page(browser, url: str, name: str, pages: dict[str, str] = PAGES) -> float:
    """Seconds from navigation until the page's content is drawn and nothing is stale, in a new session."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        start = time.perf_counter()
        page.goto(f"{url}/{'' if name == 'tag' else name}")
        page.locator(pages[name]).first.wait_for(state="visible", timeout=TIMEOUT)
        page.wait_for_function(SETTLED, timeout=TIMEOUT)
        return time.perf_counter() - start
    finally:
        context.close()


def switch_pages(browser, url: str, pages: dict[str, str], rounds: int) -> dict[str, list[float]]:
    """Seconds from a click on a page's link in the sidebar until its content is drawn and nothing is stale, in
    one session (what an analyst does all day; the browser keeps Streamlit's scripts, the server the session)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    found: dict[str, list[float]] = {name: [] for name in pages}
    try:
        page.goto(f"{url}/settings")
        page.locator(pages["settings"]).first.wait_for(state="visible", timeout=TIMEOUT)
        page.wait_for_function(SETTLED, timeout=TIMEOUT)
        for _ in range(rounds):
            for name in pages:
                link = page.locator(f'[data-testid="stSidebarNavLink"][href$="/{"" if name == "tag" else name}"]')
                start = time.perf_counter()
                link.first.click()
                path = "/" + ("" if name == "tag" else name)
                page.wait_for_url(lambda u, path=path: urlparse(u).path == path, wait_until="commit",
                                  timeout=TIMEOUT)
                # The page's own title first: until the new script draws, the old page's content is still shown.
                main = page.locator('[data-testid="stMain"]')
                main.get_by_role("heading", name=TITLES[name], exact=True).first.wait_for(state="visible",
                                                                                           timeout=TIMEOUT)
                main.locator(pages[name]).first.wait_for(state="visible", timeout=TIMEOUT)
                page.wait_for_function(SETTLED, timeout=TIMEOUT)
                found[name].append(time.perf_counter() - start)
    finally:
        context.close()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="main", help="git ref of the old code (default: main)")
    parser.add_argument("--visits", type=int, default=3)
    parser.add_argument("--db", help="run only this tree, on this database (TAGGING_DB), e.g. a million images")
    args = parser.parse_args(argv)
    spec = importlib.util.find_spec("playwright")
    if spec is None:
        print("playwright is missing: pip install -r requirements-dev.txt", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        tmp_path = Path(tmp)
        roots = {"new": ROOT} if args.db else {"old": export_baseline(args.baseline, tmp_path / "old-code"),
                                               "new": ROOT}
        apps = {}
        try:
            for label, root in roots.items():
                work = tmp_path / label
                work.mkdir()
                if args.db:
                    apps[label] = start_app(work, {"TAGGING_DB": args.db}, root=root)
                    continue
                seed_with(root, work / "tagging.db")
                apps[label] = start_app(work, root=root)
            first: dict[str, dict[str, float]] = {label: {} for label in apps}
            later: dict[str, dict[str, list[float]]] = {label: {p: [] for p in PAGES} for label in apps}
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                for name in PAGES:
                    for label, app in apps.items():
                        first[label][name] = open_page(browser, app.url, name, SYNTHETIC if args.db else PAGES)
                switched = (switch_pages(browser, apps["new"].url, SYNTHETIC, args.visits) if args.db else {})
                for _ in range(args.visits):
                    for name in PAGES:
                        for label, app in apps.items():
                            later[label][name].append(open_page(browser, app.url, name,
                                                                SYNTHETIC if args.db else PAGES))
                browser.close()
            memory = {label: server_memory(app.process.proc.pid) for label, app in apps.items()}
        finally:
            for app in apps.values():
                app.stop()
    if args.db:
        print(f"Page open in Chromium (1400x1000, a new session per visit) on {args.db.split('@')[-1]}; "
              f"median of {args.visits} visits after the first")
        print(f"{'page':<10}{'first':>9}{'median':>9}{'max':>9}   then from the sidebar in one session: median")
        for name in PAGES:
            print(f"{name:<10}{first['new'][name]:>8.2f}s{statistics.median(later['new'][name]):>8.2f}s"
                  f"{max(later['new'][name]):>8.2f}s   {statistics.median(switched[name]):>8.2f}s")
        print(f"server RSS after every page: {memory['new'][0]:.0f} MB (peak {memory['new'][1]:.0f} MB)")
        return 0
    print(f"Page open in Chromium (1400x1000, a new session per visit), {args.baseline} (old) beside this tree "
          f"(new); median of {args.visits} visits after the first")
    print(f"{'page':<10}{'old first':>11}{'new first':>11}{'old':>9}{'new':>9}{'new/old':>9}")
    for name in PAGES:
        old = statistics.median(later["old"][name])
        new = statistics.median(later["new"][name])
        print(f"{name:<10}{first['old'][name]:>10.2f}s{first['new'][name]:>10.2f}s{old:>8.2f}s{new:>8.2f}s"
              f"{new / old:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
