"""Write docs/review.png, docs/tune.png and docs/library.png: the pages as a new analyst meets them.

Seeds a throwaway database (``seed``: the four sample photos and crops of them, tagged by the
embedded tagger, some reviewed pre-filled or blind with missing-tags notes, the rest waiting for
review, one with no tag at all), starts its own ``streamlit run dashboard.py`` on it, and
screenshots each page in Debian's Chromium at 1400x1000 (and, with ``--phone``, at 390x844 into
the output folder as ``<page>-phone.png``).

    .venv/bin/python scripts/screenshot_pages.py [--output-dir docs] [--phone]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.pages_seed import seed  # noqa: E402
from tests.browser.server import CHROMIUM, CHROMIUM_ARGS, start_app  # noqa: E402

TIMEOUT = 60_000
SETTLED = "() => document.querySelectorAll('[data-stale=\"true\"]').length === 0"
def settle(page) -> None:
    page.wait_for_function(SETTLED, timeout=TIMEOUT)
    page.wait_for_timeout(400)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=ROOT / "docs")
    parser.add_argument("--phone", action="store_true", help="also screenshot at phone width")
    parser.add_argument("--compare", action="store_true", help="also the Compare page (not in the README)")
    args = parser.parse_args(argv)
    pages = range(4 if args.compare else 3)

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="dashboard-pages-") as workdir:
        seed(Path(workdir) / "tagging.db")
        app = start_app(Path(workdir))
        args.output_dir.mkdir(parents=True, exist_ok=True)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                sizes = [("", {"width": 1400, "height": 1000})]
                if args.phone:
                    sizes.append(("-phone", {"width": 390, "height": 844}))
                for suffix, viewport in sizes:
                    page = browser.new_page(viewport=viewport)
                    for name, path, ready in (("review", "/review", '[data-testid="stImageCaption"]'),
                                              ("tune", "/tune", '[data-testid="stVegaLiteChart"] canvas, '
                                                                '[data-testid="stVegaLiteChart"] svg'),
                                              ("library", "/library", '[data-testid="stDataFrame"]'),
                                              ("compare", "/compare", '[data-testid="stMetric"]'))[: len(pages)]:
                        page.goto(app.url + path)
                        page.locator(ready).first.wait_for(timeout=TIMEOUT)
                        settle(page)
                        page.wait_for_timeout(1500)  # charts and images draw after the run ends
                        if name == "tune":  # the curve, with the recommendation above it
                            page.locator('[data-testid="stVegaLiteChart"]').first.evaluate(
                                "e => e.scrollIntoView({block: 'end'})")
                            page.wait_for_timeout(500)
                        page.mouse.move(0, 0)
                        out = args.output_dir / f"{name}{suffix}.png"
                        page.screenshot(path=str(out))
                        print(f"wrote {out}")
                    page.close()
                browser.close()
        except Exception:
            print(app.log(), file=sys.stderr)
            raise
        finally:
            app.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
