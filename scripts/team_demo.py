"""Start a throwaway team setup on this machine (see scripts/team-demo.sh) and stop it on Ctrl-C.

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

READY_SECONDS = 120


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
    args = parser.parse_args()
    for port in (*args.ports, args.scheduler_port):
        if not _free(port):
            raise SystemExit(f"Port {port} is taken; choose others with --ports / --scheduler-port.")

    venv = ROOT / ".venv" / "bin"
    processes: list[subprocess.Popen] = []
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
        for port in args.ports:
            processes.append(subprocess.Popen(
                [str(venv / "streamlit"), "run", str(ROOT / "dashboard.py"), "--server.port", str(port),
                 "--server.address", "127.0.0.1"], env=env, cwd=ROOT, **quiet))
        for port in args.ports:
            _wait_for_port(port, "An app server")
        print(f"PostgreSQL: {cluster.url('tagging', user='analysts')} (password in TAGGING_DB_PASSWORD)")
        print(f"Dask:       {env['DASK_SCHEDULER_ADDRESS']} with {args.workers} worker processes")
        for port in args.ports:
            print(f"App:        http://localhost:{port}")
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
        cluster.stop()
        (ROOT / "data" / "team-demo.env").unlink(missing_ok=True)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    raise SystemExit(main())
