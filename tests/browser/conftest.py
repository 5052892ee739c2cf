"""Fixtures for the browser tests: a real ``streamlit run dashboard.py`` and Debian's Chromium.

Servers and the browser are module-scoped: one server per test module (the embedded model loads
once, about 2 s) and everything is gone before the rest of the suite runs. Each test gets its own
browser context, that is its own Streamlit session. On failure the page's screenshot, its console
and the logs of the servers the test used go to ``test-artifacts/<test name>/``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.server import CHROMIUM, CHROMIUM_ARGS, ROOT, App, Standin, start_app, start_standin

ARTIFACTS = ROOT / "test-artifacts"
VIEWPORT = {"width": 1400, "height": 1000}
_REPORTS = pytest.StashKey[dict]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _failed(node: pytest.Item) -> bool:
    reports = node.stash.get(_REPORTS, {})
    return any(r.failed for r in reports.values())


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """The dashboard with the embedded tagger only and its own database (shared by a module)."""
    app = start_app(tmp_path_factory.mktemp("app"))
    yield app
    app.stop()


@pytest.fixture(scope="module")
def imagga_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standin]:
    """The loopback Imagga stand-in as a subprocess on a free port."""
    standin = start_standin(tmp_path_factory.mktemp("standin"))
    yield standin
    standin.stop()


@pytest.fixture(scope="module")
def imagga_app_server(tmp_path_factory: pytest.TempPathFactory, imagga_standin: Standin) -> Iterator[App]:
    """The dashboard with IMAGGA_API_KEY/SECRET/URL pointing at the stand-in (shared by a module)."""
    app = start_app(tmp_path_factory.mktemp("imagga-app"), imagga_standin.credentials)
    yield app
    app.stop()


@pytest.fixture
def fresh_app_server(tmp_path: Path) -> Iterator[App]:
    """A server no browser has talked to yet, for first-request behaviour."""
    app = start_app(tmp_path / "fresh-app")
    yield app
    app.stop()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest):
    """A new page in its own context (a new Streamlit session); artifacts are saved on failure."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    yield page
    if _failed(request.node):
        _save_artifacts(request, page, console)
    context.close()


def _save_artifacts(request: pytest.FixtureRequest, page, console: list[str]) -> None:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1])[:120]
    target = ARTIFACTS / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=str(target / "page.png"), full_page=True)
        (target / "page.url").write_text(page.url + "\n")
    except Exception as exc:  # noqa: BLE001 - a dead page must not hide the test's own failure
        (target / "screenshot-error.txt").write_text(repr(exc))
    (target / "console.log").write_text("\n".join(console))
    for arg, value in request.node.funcargs.items():
        if isinstance(value, App | Standin):
            log = value.log() if isinstance(value, App) else value.process.log()
            (target / f"{arg}.log").write_text(log)
