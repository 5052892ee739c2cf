"""Write the Analysis view's screenshots to docs/: offline on the astronaut, offline on a rendered sign (text
boxes), and with Imagga configured (the loopback stand-in), in Debian's Chromium at 1400x1000.

Starts its own ``streamlit run dashboard.py`` (a throwaway database) and prints how long the Analysis view takes
to appear after the tags (the target: within 1 s offline), measured in the browser.

    .venv/bin/python scripts/screenshot_analysis.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.server import CHROMIUM, CHROMIUM_ARGS, TAGS_READY, start_app, start_standin  # noqa: E402

TIMEOUT = 90_000
# True once the Analysis view of the current run is drawn: its overlay caption is up and nothing is stale.
ANALYSIS_READY = """() => [...document.querySelectorAll('[data-testid="stImageCaption"]')]
    .some(c => c.innerText.startsWith('Faces yellow'))
  && document.querySelectorAll('[data-stale="true"]').length === 0"""


def sign(path: Path) -> None:
    """A street sign rendered with Debian's DejaVu font: a photo-like test of the text boxes."""
    image = Image.new("RGB", (960, 640), (92, 120, 150))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 64)
    small = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 36)
    draw.rectangle((180, 160, 780, 470), fill=(20, 110, 60), outline=(250, 250, 250), width=8)
    draw.text((230, 200), "MAIN STREET", fill=(250, 250, 250), font=font)
    draw.text((260, 320), "Exit 24 - Airport", fill=(250, 250, 250), font=small)
    draw.rectangle((460, 470, 500, 640), fill=(120, 120, 120))
    image.save(path, quality=92)


# True once the tags of ``filename`` are drawn (the caption of its image and the chart), while the rest of the
# run (the Analysis view under them) may still be computing.
TAGS_SHOWN = """(filename) => [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
    .some(c => c.innerText.startsWith('Tagged by'))
  && [...document.querySelectorAll('[data-testid="stImageCaption"]')].some(c => c.innerText.startsWith(filename + ' '))
  && [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].some(c => c.dataset.stale !== 'true')"""


def choose_sample(page, name: str) -> tuple[float, float]:
    """Pick a sample; seconds from the click until its tags show, and until its Analysis view is drawn."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Sample photo")
    box.get_by_role("combobox").click()
    option = page.get_by_role("option", name=name, exact=True)
    option.wait_for(timeout=TIMEOUT)
    start = time.perf_counter()
    option.click()
    page.wait_for_function(TAGS_SHOWN, arg=name, timeout=TIMEOUT, polling=20)
    tags = time.perf_counter() - start
    page.wait_for_function(ANALYSIS_READY, timeout=TIMEOUT, polling=20)
    return tags, time.perf_counter() - start


def shoot(page, path: Path) -> None:
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.mouse.move(0, 0)
    page.get_by_role("heading", name="Analysis").scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, -20)")
    heading = page.get_by_role("heading", name="Analysis")
    heading.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(500)
    page.screenshot(path=str(path))
    print(f"wrote {path}")


def main() -> int:
    from playwright.sync_api import sync_playwright

    docs = ROOT / "docs"
    with tempfile.TemporaryDirectory(prefix="analysis-screens-") as workdir:
        work = Path(workdir)
        sign(work / "main-street.jpg")
        app = start_app(work / "offline")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(app.url + "/")
                page.wait_for_function(TAGS_READY, arg="cat.jpg", timeout=TIMEOUT)
                page.get_by_text("Show faces, colours, text and crops").click()  # stays on for the session
                page.wait_for_function(ANALYSIS_READY, timeout=TIMEOUT)  # cold: the text reader loads once
                for name in ("astronaut.jpg", "rocket.jpg", "coffee.jpg"):
                    tags, view = choose_sample(page, name)
                    print(f"offline {name} (never seen): tags shown {tags:.2f} s, Analysis view drawn {view:.2f} s "
                          f"after the click ({view - tags:.2f} s after the tags)")
                choose_sample(page, "astronaut.jpg")
                shoot(page, docs / "analysis-offline.png")
                page.locator('[data-testid="stRadio"]').get_by_text("Upload", exact=True).click()
                page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
                    str(work / "main-street.jpg"))
                page.wait_for_function(TAGS_READY, arg="main-street.jpg", timeout=TIMEOUT)
                page.wait_for_function(ANALYSIS_READY, timeout=TIMEOUT)
                page.get_by_role("tab", name="Text").click()
                shoot(page, docs / "analysis-text.png")
                browser.close()
        except Exception:
            print(app.log(), file=sys.stderr)
            raise
        finally:
            app.stop()

        standin = start_standin(work / "standin")
        app = start_app(work / "imagga", standin.credentials)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(app.url + "/")
                page.wait_for_function(TAGS_READY, arg="cat.jpg", timeout=TIMEOUT)
                box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Sample photo")
                box.get_by_role("combobox").click()
                page.get_by_role("option", name="astronaut.jpg", exact=True).click()
                page.wait_for_function(TAGS_READY, arg="astronaut.jpg", timeout=TIMEOUT)
                page.get_by_role("button", name="Analyse with Imagga").click()
                page.wait_for_function(ANALYSIS_READY, timeout=TIMEOUT)
                shoot(page, docs / "analysis-imagga.png")
                browser.close()
        except Exception:
            print(app.log(), file=sys.stderr)
            raise
        finally:
            app.stop()
            standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
