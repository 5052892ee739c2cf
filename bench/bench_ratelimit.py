"""Measure how long ImaggaClient's DEFAULT settings wait on 429 before RateLimitError.

Runs the client against the loopback Imagga stand-in (tests/imagga_standin.py) in a
thread; nothing is asserted, the timings are printed::

    .venv/bin/python bench/bench_ratelimit.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tagging.errors import RateLimitError  # noqa: E402
from tagging.imagga import (  # noqa: E402
    DEFAULT_BACKOFF_FACTOR,
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_RETRIES,
    ImaggaClient,
    ImaggaCredentials,
)
from tests.imagga_standin import TEST_API_KEY, TEST_API_SECRET, ImaggaStandin, serve  # noqa: E402

IMAGE = b"\xff\xd8\xff\xe0bench\xff\xd9"
SCENARIOS = (
    ("429 + Retry-After: 1", "1"),
    ("429 without Retry-After (backoff)", None),
    (f"429 + Retry-After: {int(DEFAULT_MAX_RETRY_AFTER) + 20} (over the budget)",
     str(int(DEFAULT_MAX_RETRY_AFTER) + 20)),
)


def measure(retry_after: str | None) -> tuple[float, int, float | None]:
    """Seconds until RateLimitError, requests the stand-in saw, the error's retry_after."""
    standin = ImaggaStandin()
    standin.fail("rate_limit", retry_after=retry_after)
    with serve(standin) as (_, base_url):
        client = ImaggaClient(ImaggaCredentials(TEST_API_KEY, TEST_API_SECRET), base_url=base_url)
        start = time.perf_counter()
        try:
            client.tag_image(IMAGE, "bench.jpg")
        except RateLimitError as exc:
            return time.perf_counter() - start, standin.count(), exc.retry_after
    raise SystemExit("the stand-in did not rate-limit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"defaults: retries={DEFAULT_RETRIES} backoff_factor={DEFAULT_BACKOFF_FACTOR} "
          f"max_retry_after={DEFAULT_MAX_RETRY_AFTER} s (total wait budget per call)")
    for label, retry_after in SCENARIOS:
        times, count, asked = [], 0, None
        for _ in range(args.runs):
            seconds, count, asked = measure(retry_after)
            times.append(seconds)
        print(f"{label:45s} -> RateLimitError after {statistics.median(times):6.3f} s "
              f"(min {min(times):.3f}, max {max(times):.3f}, {count} requests, "
              f"retry_after={asked})")


if __name__ == "__main__":
    main()
