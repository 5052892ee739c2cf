"""What the cluster tests share with the Dask worker processes (which import this module by name)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.imagga_standin import CONTROL_PREFIX, ImaggaStandin

GATE_SECONDS = 120.0  # a gate never released (a broken test) lets the read go on after this


@dataclass(frozen=True)
class GatedSource:
    """A file whose second read in a process (decoding, after hashing) blocks until ``gate_dir/release`` exists.

    Before blocking it leaves ``gate_dir/blocked-<pid>``, so a test knows which worker process to kill
    while that worker holds no request in flight.
    """

    path: str
    gate_dir: str

    def read(self) -> bytes:
        gate = Path(self.gate_dir)
        data = Path(self.path).read_bytes()
        if (gate / "release").exists():
            return data
        hashed = gate / f"hashed-{os.getpid()}"
        if not hashed.exists():
            hashed.touch()
            return data
        (gate / f"blocked-{os.getpid()}").touch()
        deadline = time.monotonic() + GATE_SECONDS
        while not (gate / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return data


class TimedStandin(ImaggaStandin):
    """The Imagga stand-in, also keeping when each API request arrived and ended, its status and image."""

    def reset(self) -> None:
        super().reset()
        self.timeline: list[tuple[float, float, int, str]] = []  # (arrived, answered, status, sha256 or "")

    def handle(self, request: Request) -> Response:
        arrived = time.time()
        response = super().handle(request)
        if not request.path.startswith(CONTROL_PREFIX):
            upload = request.files.get("image")
            sha = ""
            if upload is not None:
                upload.stream.seek(0)
                sha = hashlib.sha256(upload.stream.read()).hexdigest()
            with self._lock:
                self.timeline.append((arrived, time.time(), response.status_code, sha))
        return response

    def billed(self) -> Counter[str]:
        """Successful tag requests per image (what Imagga would bill)."""
        with self._lock:
            return Counter(sha for _, _, status, sha in self.timeline if status == 200 and sha)


def wait_for(condition: Any, seconds: float = 60.0, what: str = "a condition") -> None:
    """Poll ``condition()`` until it is true (a test's own deadline, never an assertion on speed)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Background:
    """Run a function in a thread and keep its result or exception."""

    def __init__(self, target: Any, *args: Any, **kwargs: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(target, args, kwargs), daemon=True)
        self.thread.start()

    def _run(self, target: Any, args: tuple, kwargs: dict) -> None:
        try:
            self.result = target(*args, **kwargs)
        except BaseException as exc:  # handed to the test, which raises it
            self.error = exc

    def join(self, seconds: float = 120.0) -> Any:
        self.thread.join(seconds)
        assert not self.thread.is_alive(), "the background run did not end"
        if self.error is not None:
            raise self.error
        return self.result
