"""Start ``streamlit run dashboard.py`` (and the Imagga stand-in) as subprocesses on free loopback ports.

Shared by ``tests/browser/conftest.py`` and ``scripts/screenshot.py``; standard library only, so it
imports without pytest or Playwright.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"
STANDIN = ROOT / "tests" / "imagga_standin.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Anything that would change what the app sees: it must come from the test, not the developer.
SCRUBBED_PREFIXES = ("IMAGGA_", "TAGGING_", "STREAMLIT_")
START_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _python() -> str:
    return str(PYTHON) if PYTHON.exists() else sys.executable


def _read(path: Path, limit: int = 20_000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-limit:]


def _get(url: str, timeout: float = 2.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
            return response.read().decode(errors="replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None


@dataclass
class Process:
    """One subprocess in its own process group, logging to a file."""

    name: str
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return _read(self.log_path)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self.proc.stdout:
            self.proc.stdout.close()


def _spawn(name: str, args: list[str], env: Mapping[str, str], log_path: Path, cwd: Path = ROOT) -> Process:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")  # noqa: SIM115 - closed by the child's exit; Popen dups it
    try:
        proc = subprocess.Popen(
            args, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: teardown kills streamlit and its children
        )
    finally:
        log.close()
    return Process(name, proc, log_path)


def _wait_until(process: Process, url: str, expected: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise RuntimeError(
                f"{process.name} exited with code {process.proc.returncode} before answering {url}.\n"
                f"--- log ---\n{process.log()}"
            )
        body = _get(url)
        if body is not None and expected in body:
            return
        time.sleep(0.1)
    process.stop()
    raise RuntimeError(f"{process.name} did not answer {url} within {timeout:.0f} s.\n--- log ---\n{process.log()}")


def base_env(home: Path) -> dict[str, str]:
    """The parent's environment without app settings, with HOME (so ~/.streamlit) in a temp dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
    env["HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    return env


@dataclass
class Standin:
    """The Imagga stand-in subprocess; ``api_url`` ends in ``/v2``."""

    process: Process
    port: int

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2"

    @property
    def credentials(self) -> dict[str, str]:
        sys.path.insert(0, str(ROOT))
        try:
            from tests.imagga_standin import TEST_API_KEY, TEST_API_SECRET
        finally:
            sys.path.remove(str(ROOT))
        return {"IMAGGA_API_KEY": TEST_API_KEY, "IMAGGA_API_SECRET": TEST_API_SECRET, "IMAGGA_API_URL": self.api_url}

    def stop(self) -> None:
        self.process.stop()


def start_standin(workdir: Path, timeout: float = 30.0) -> Standin:
    """Start ``tests/imagga_standin.py`` on a free port and wait for its health check."""
    port = free_port()
    env = base_env(workdir)
    process = _spawn(
        "imagga stand-in",
        [_python(), str(STANDIN), "--port", str(port), "--quiet"],
        env,
        workdir / "standin.log",
    )
    _wait_until(process, f"http://127.0.0.1:{port}/__standin__/health", "true", timeout)
    return Standin(process, port)


@dataclass
class App:
    """A running ``streamlit run dashboard.py``."""

    process: Process
    port: int
    db_path: Path
    workdir: Path
    env: dict[str, str] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.process.log()

    def stop(self) -> None:
        self.process.stop()


def start_app(
    workdir: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    *,
    wait: bool = True,
    timeout: float = START_TIMEOUT,
    extra_args: list[str] | None = None,
    root: Path = ROOT,
    port: int | None = None,
) -> App:
    """Start the dashboard on a free port with its own database and no Imagga key (unless given).

    ``workdir`` holds the database, the server log and the HOME of the server; secrets come
    only from ``workdir/secrets.toml`` (absent unless a caller writes it), never from the
    checkout's ``.streamlit/secrets.toml``. ``root`` is the checkout to run (default: this
    one). With ``wait`` (the default) this returns once ``/_stcore/health`` answers ``ok``
    and raises with the server's log otherwise.
    """
    workdir = Path(workdir or tempfile.mkdtemp(prefix="dashboard-"))
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()  # given: a sign-in test wrote it into secrets.toml's redirect_uri
    db_path = workdir / "tagging.db"
    env = base_env(workdir)
    env["TAGGING_DB"] = str(db_path)
    env.update(extra_env or {})
    args = [
        _python(), "-m", "streamlit", "run", "dashboard.py",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--secrets.files", str(workdir / "secrets.toml"),
        *(extra_args or []),
    ]
    process = _spawn("streamlit", args, env, workdir / "streamlit.log", cwd=root)
    app = App(process, port, db_path, workdir, env)
    if wait:
        _wait_until(process, f"{app.url}/_stcore/health", "ok", timeout)
    return app


@dataclass
class OidcProvider:
    """``oidc-provider-mock`` (a real OpenID Connect provider, for tests) on a loopback port."""

    process: Process
    port: int

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def stop(self) -> None:
        self.process.stop()


def start_oidc_provider(workdir: Path, users: list[dict], timeout: float = 30.0, port: int | None = None,
                        ) -> OidcProvider:
    """Start the provider with ``users`` (claims, each with ``sub``) offered as one-click sign-ins."""
    import json

    port = port or free_port()
    args = [_python(), "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port)]
    for claims in users:
        args += ["--user-claims", json.dumps(claims)]
    process = _spawn("oidc provider", args, base_env(workdir), workdir / "oidc-provider.log")
    provider = OidcProvider(process, port)
    _wait_until(process, provider.metadata_url, "authorization_endpoint", timeout)
    return provider


def auth_secrets(app_port: int, provider: OidcProvider, client_secret: str, cookie_secret: str) -> str:
    """The ``[auth]`` section of secrets.toml for a dashboard on ``app_port`` signing in at ``provider``."""
    return (
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{app_port}/oauth2callback"\n'
        f'cookie_secret = "{cookie_secret}"\n'
        'client_id = "tagging-dashboard"\n'
        f'client_secret = "{client_secret}"\n'
        f'server_metadata_url = "{provider.metadata_url}"\n'
    )


# For page.wait_for_function(TAGS_READY, arg=filename): true once the run that drew `filename`
# has finished: its image caption is up, nothing is stale (Streamlit marks elements of a run
# in progress with data-stale), and the tag chips and the chart exist.
TAGS_READY = """(filename) => {
  const captions = [...document.querySelectorAll('[data-testid="stImageCaption"]')];
  return captions.some(c => c.innerText.startsWith(filename + ' '))
    && document.querySelectorAll('[data-stale="true"]').length === 0
    && document.querySelectorAll('[data-testid="stMultiSelect"] span[data-tag]').length > 0
    && document.querySelector('[data-testid="stVegaLiteChart"] svg, [data-testid="stVegaLiteChart"] canvas') !== null;
}"""

# For locator.evaluate_all(CHIP_NAMES): the tag names of accepted-tags chips, which read "name · confidence".
CHIP_NAMES = "els => els.map(e => e.getAttribute('aria-label').replace(/ · \\d+$/, ''))"
