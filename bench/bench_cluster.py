"""Benchmark batches on a Dask cluster against the in-process engine, side by side in one run.

Run from the repository root::

    .venv/bin/python bench/bench_cluster.py [--images 48] [--repeats 3] [--latency 0.3]

Prints, each measured in this one run:

1. The embedded tagger (no result cache, so every image is tagged): images per second end to
   end (read, decode, forward pass in chunks of 4) with ``run_batch`` in this process (torch
   free to use every core), and with ``run_on_cluster`` on a LocalCluster of one and of two
   worker processes (one thread each; Dask's nanny sets OMP_NUM_THREADS=1, so a worker is one
   core). Both clusters are started and warmed (model loaded) before any timing; the three
   runs alternate and the median of ``--repeats`` is kept. Ratios against one worker.
2. The loopback Imagga stand-in with ``--latency`` seconds per request and a plan limit of 3:
   ``run_batch`` in this process at concurrency 3 against ``run_on_cluster`` over the two
   workers with a cluster-wide cap of 3 (a ``distributed.Semaphore``): images per second, and
   the most requests the stand-in saw in flight at once. The ceiling is cap / latency.

One worker's embedded rate is the per-core rate the README uses to estimate N machines. The
images are files (variants of the four sample photos) that the workers read themselves. The
load average is printed because other processes on the machine skew every number.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench_batch import variants  # noqa: E402
from distributed import LocalCluster  # noqa: E402

from tagging.backends import EMBEDDED, IMAGGA, EmbeddedBackend, ImaggaBackend, TagRequest, backend_id  # noqa: E402
from tagging.batch import (  # noqa: E402
    BatchItem,
    FileSource,
    PerThreadImagga,
    WorkSpec,
    connect,
    run_batch,
    run_on_cluster,
)
from tagging.imagga import ImaggaClient, ImaggaCredentials  # noqa: E402
from tests.imagga_standin import TEST_API_KEY, TEST_API_SECRET, ImaggaStandin, serve  # noqa: E402

REQUEST = TagRequest(language="en", mode="upload")
CAP = 3


def files(folder: Path, images: list[tuple[str, bytes]]) -> list[BatchItem]:
    items = []
    for name, data in images:
        (folder / name).write_bytes(data)
        items.append(BatchItem(name, source=FileSource(str(folder / name))))
    return items


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def cluster(workers: int) -> tuple[LocalCluster, object]:
    local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                         silence_logs=logging.ERROR)
    return local, connect(local.scheduler_address)


def bench_embedded(items: list[BatchItem], clients: dict[str, object], repeats: int) -> dict[str, float]:
    backend = EmbeddedBackend()
    warm = items[:4]
    run_batch(warm, backend, REQUEST, backend_key=EMBEDDED)  # model loaded here, untimed
    spec = WorkSpec(EMBEDDED, REQUEST, EMBEDDED, cache_target=None)
    for client in clients.values():
        run_on_cluster(client, warm, spec)  # every worker loads the model, untimed
    timings: dict[str, list[float]] = {"in process (run_batch)": []} | {name: [] for name in clients}
    for _ in range(repeats):
        started = time.perf_counter()
        report = run_batch(items, backend, REQUEST, backend_key=EMBEDDED)
        assert report.count("ok") == len(items)
        timings["in process (run_batch)"].append(rate(len(items), time.perf_counter() - started))
        for name, client in clients.items():
            started = time.perf_counter()
            report = run_on_cluster(client, items, spec)
            assert report.count("ok") == len(items), [r.reason for r in report.results if r.status != "ok"][:3]
            timings[name].append(rate(len(items), time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in timings.items()}


def bench_imagga(items: list[BatchItem], client: object, latency: float, cache_dir: Path) -> list[tuple]:
    rows = []
    with serve(ImaggaStandin(latency=latency)) as (standin, url):
        credentials = ImaggaCredentials(TEST_API_KEY, TEST_API_SECRET)
        key = backend_id(IMAGGA, url)

        standin.reset()
        started = time.perf_counter()
        report = run_batch(items, ImaggaBackend(ImaggaClient(credentials, base_url=url)), REQUEST, backend_key=key,
                           concurrency=CAP, backend_factory=PerThreadImagga(credentials, url))
        seconds = time.perf_counter() - started
        assert report.count("ok") == len(items)
        rows.append(("in process, concurrency 3", rate(len(items), seconds), standin.max_in_flight))

        standin.reset()
        spec = WorkSpec(IMAGGA, REQUEST, key, cache_target=str(cache_dir / "imagga.db"), concurrency=CAP,
                        imagga_url=url, credentials=credentials)
        started = time.perf_counter()
        report = run_on_cluster(client, items, spec)
        seconds = time.perf_counter() - started
        assert report.count("ok") == len(items), [r.reason for r in report.results if r.status != "ok"][:3]
        rows.append(("2 workers, cluster-wide cap 3", rate(len(items), seconds), standin.max_in_flight))
        calls = len(standin.requests)
        again = run_on_cluster(client, items, spec)
        rows.append(("same batch again (result cache)", f"{again.count('cached')} cached",
                     f"{len(standin.requests) - calls} calls"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.3)
    args = parser.parse_args(argv)
    logging.getLogger("distributed").setLevel(logging.ERROR)  # the in-process schedulers' INFO lines
    print(f"{platform.processor() or platform.machine()} · {os.cpu_count()} cores · Python "
          f"{platform.python_version()} · load average at start: "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    bench_started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        items = files(folder, variants(args.images))
        one, one_client = cluster(1)
        two, two_client = cluster(2)
        try:
            embedded = bench_embedded(items, {"1 worker process": one_client, "2 worker processes": two_client},
                                      args.repeats)
            imagga = bench_imagga(items[:30], two_client, args.latency, folder)
        finally:
            for client in (one_client, two_client):
                client.close()
            one.close()
            two.close()

    base = embedded["1 worker process"]
    print(f"\nEmbedded tagger, {args.images} images, chunks of 4, no cache (median of {args.repeats}):")
    print(f"{'':32} {'img/s':>8} {'vs 1 worker':>12}")
    for name, value in embedded.items():
        print(f"{name:32} {value:8.2f} {value / base:11.2f}x")
    print(f"2 workers / in process: {embedded['2 worker processes'] / embedded['in process (run_batch)']:.2f}x; "
          f"per-core rate (1 worker): {base:.2f} img/s")

    print(f"\nImagga stand-in, {args.latency * 1000:.0f} ms per request, 30 images (ceiling {CAP / args.latency:.1f}"
          " img/s):")
    print(f"{'':32} {'img/s':>10} {'max in flight':>14}")
    for name, value, in_flight in imagga:
        shown = f"{value:10.2f}" if isinstance(value, float) else f"{value:>10}"
        print(f"{name:32} {shown} {in_flight!s:>14}")
    print(f"\ntotal benchmark time {time.perf_counter() - bench_started:.1f} s; load average at the end: "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
