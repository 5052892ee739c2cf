"""Start a throwaway team setup on this machine (see scripts/team-demo.sh) and stop it on Ctrl-C.

Sign-in: a loopback OpenID Connect provider (``oidc-provider-mock``, the one the tests use) offers three
users, a viewer, an analyst and an admin (its ``roles`` claim); each app server gets its own ``[auth]``
section (its redirect URI, a random client and cookie secret) in a secrets file under ``data/`` readable
only by this user, so nothing secret is on a command line. ``--no-sign-in`` leaves it out.

The database is a throwaway cluster made like the tests' (``tests/pgcluster.py``: initdb in a temporary
folder, run as the ``postgres`` user when started as root); the analysts' role has a random password that is
passed to the servers as ``TAGGING_DB_PASSWORD``, never on a command line or in a URL.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import pgcluster  # noqa: E402
from tests.browser.server import auth_secrets, start_oidc_provider  # noqa: E402

READY_SECONDS = 120
DEMO_USERS = [
    {"sub": "viewer@example.com", "email": "viewer@example.com", "roles": "viewer"},
    {"sub": "analyst@example.com", "email": "analyst@example.com", "roles": "analyst"},
    {"sub": "admin@example.com", "email": "admin@example.com", "roles": "admin"},
]


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _wait_for_port(port: int, what: str) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while _free(port):
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start on port {port} within {READY_SECONDS} s.")
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, nargs=2, default=(8501, 8502), help="the two app servers' ports")
    parser.add_argument("--scheduler-port", type=int, default=8786)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--oidc-port", type=int, default=9400, help="the loopback OpenID Connect provider's port")
    parser.add_argument("--no-sign-in", action="store_true", help="no provider: the servers run without sign-in")
    args = parser.parse_args()
    for port in (*args.ports, args.scheduler_port, *(() if args.no_sign_in else (args.oidc_port,))):
        if not _free(port):
            raise SystemExit(f"Port {port} is taken; choose others with --ports / --scheduler-port.")

    venv = ROOT / ".venv" / "bin"
    processes: list[subprocess.Popen] = []
    provider = None
    secret_files: list[Path] = []
    cluster = pgcluster.start()
    try:
        password = secrets.token_urlsafe(18)
        cluster.create_role("analysts", password)
        cluster.execute('CREATE DATABASE "tagging" OWNER "analysts" TEMPLATE template0')
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TAGGING_DB": cluster.url("tagging", user="analysts"),
               "TAGGING_DB_PASSWORD": password,
               "DASK_SCHEDULER_ADDRESS": f"tcp://127.0.0.1:{args.scheduler_port}"}
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "stdin": subprocess.DEVNULL}
        processes.append(subprocess.Popen([str(venv / "dask"), "scheduler", "--host", "127.0.0.1", "--port",
                                           str(args.scheduler_port), "--dashboard-address", ":0"], env=env, **quiet))
        _wait_for_port(args.scheduler_port, "The Dask scheduler")
        processes.append(subprocess.Popen([str(venv / "dask"), "worker", env["DASK_SCHEDULER_ADDRESS"], "--nworkers",
                                           str(args.workers), "--nthreads", "1", "--dashboard-address", ":0"],
                                          env=env, **quiet))
        if not args.no_sign_in:
            (ROOT / "data").mkdir(exist_ok=True)
            provider = start_oidc_provider(ROOT / "data", DEMO_USERS, port=args.oidc_port)
            env["TAGGING_DAILY_IMAGGA_CAP"] = "200"
            # one client and one cookie secret for both: the browser's sign-in cookie is per host, not per port
            client_secret, cookie_secret = secrets.token_urlsafe(24), secrets.token_urlsafe(32)
        for port in args.ports:
            extra: list[str] = []
            if provider is not None:  # one [auth] per server: its own redirect URI
                path = ROOT / "data" / f"team-demo-secrets-{port}.toml"
                path.touch(mode=0o600)
                path.chmod(0o600)
                path.write_text(auth_secrets(port, provider, client_secret, cookie_secret))
                secret_files.append(path)
                extra = ["--secrets.files", str(path)]
            processes.append(subprocess.Popen(
                [str(venv / "streamlit"), "run", str(ROOT / "dashboard.py"), "--server.port", str(port),
                 "--server.address", "127.0.0.1", *extra], env=env, cwd=ROOT, **quiet))
        for port in args.ports:
            _wait_for_port(port, "An app server")
        print(f"PostgreSQL: {cluster.url('tagging', user='analysts')} (password in TAGGING_DB_PASSWORD)")
        print(f"Dask:       {env['DASK_SCHEDULER_ADDRESS']} with {args.workers} worker processes")
        for port in args.ports:
            print(f"App:        http://127.0.0.1:{port}")
        if provider is not None:
            print(f"Sign-in:    {provider.issuer} (OpenID Connect); pick viewer@, analyst@ or admin@example.com "
                  "on its page: each role sees what it may do")
        print("Both apps share one library, one result cache and the cluster. Ctrl-C stops everything.")
        settings = ROOT / "data" / "team-demo.env"  # /data/ is gitignored; readable by this user only
        settings.parent.mkdir(exist_ok=True)
        settings.touch(mode=0o600)
        settings.chmod(0o600)
        settings.write_text("".join(f"export {name}={shlex.quote(env[name])}\n" for name in
                                    ("TAGGING_DB", "TAGGING_DB_PASSWORD", "DASK_SCHEDULER_ADDRESS")))
        print(f"The command line on the same cluster and database: source {settings.relative_to(ROOT)}, then")
        print("  .venv/bin/python -m tagging batch samples/")
        signal.signal(signal.SIGTERM, _interrupt)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        print("Stopping…")
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        if provider is not None:
            provider.stop()
        for path in secret_files:
            path.unlink(missing_ok=True)
        cluster.stop()
        (ROOT / "data" / "team-demo.env").unlink(missing_ok=True)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    raise SystemExit(main())
