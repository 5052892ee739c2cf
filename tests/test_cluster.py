"""Batches on a real Dask LocalCluster (two worker processes) against the loopback Imagga stand-in.

The cluster-wide cap, a 429 pausing every worker, no double billing, stop and resume, a
second run for free, and a worker killed mid-batch. Timings here are the stand-in's own
timestamps of when requests arrived, compared with each other, never a bound on speed.
"""

from __future__ import annotations

import io
import os
import signal
import threading
from pathlib import Path

import pytest
from PIL import Image

from tagging.backends import EMBEDDED, IMAGGA, EmbeddedBackend, TagRequest, backend_id
from tagging.batch import (
    CACHED,
    OK,
    SKIPPED,
    BatchItem,
    FileSource,
    HeldBytes,
    WorkSpec,
    discover,
    run_batch,
    run_on_cluster,
    worker_counters,
)
from tagging.imagga import ImaggaCredentials
from tests.cluster_helpers import Background, GatedSource, TimedStandin, wait_for
from tests.conftest import SAMPLES
from tests.imagga_standin import TEST_API_KEY, TEST_API_SECRET, serve

REQUEST = TagRequest(language="en", mode="upload")
CREDENTIALS = ImaggaCredentials(TEST_API_KEY, TEST_API_SECRET)


def _png(index: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (index * 37 % 256, index * 91 % 256, 90 + index % 100)).save(buffer, "PNG")
    return buffer.getvalue()


def _files(folder: Path, n: int, start: int = 0) -> list[BatchItem]:
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(start, start + n):
        path = folder / f"img{i:02d}.png"
        path.write_bytes(_png(i))
        items.append(BatchItem(path.name, source=FileSource(str(path))))
    return items


def _imagga(url: str, tmp_path: Path, cap: int) -> WorkSpec:
    return WorkSpec(IMAGGA, REQUEST, backend_id(IMAGGA, url), cache_target=str(tmp_path / "tagging.db"),
                    concurrency=cap, imagga_url=url, credentials=CREDENTIALS)


def _delta(before: dict, after: dict, name: str) -> dict[str, int]:
    return {w: after[w].get(name, 0) - before.get(w, {}).get(name, 0) for w in after}


@pytest.fixture
def standin():
    with serve(TimedStandin()) as (stand_in, url):
        yield stand_in, url


def test_embedded_on_two_workers_loads_the_model_once_per_worker_and_tags_like_the_local_engine(
    dask_client, tmp_path
):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("cat.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg"):
        (folder / name).write_bytes((SAMPLES / name).read_bytes())
    for i in range(6):
        (folder / f"p{i}.png").write_bytes(_png(i))
    items = discover([str(folder)]).items
    spec = WorkSpec(EMBEDDED, REQUEST, "embedded", cache_target=str(tmp_path / "tagging.db"), chunk_size=2)
    before = dask_client.run(worker_counters)

    report = run_on_cluster(dask_client, items, spec)

    after = dask_client.run(worker_counters)
    assert [r.status for r in report.results] == [OK] * 10
    passes = _delta(before, after, "forward_passes")
    assert sum(passes.values()) == 5  # one forward pass per chunk of two
    assert sum(_delta(before, after, "chunks").values()) == 5
    for worker, count in passes.items():  # every worker that tagged loaded the model once, for all its chunks
        if count:
            assert after[worker]["model_loads"] == 1
    assert sum(w.get("model_loads", 0) for w in after.values()) <= 2 < sum(passes.values())

    local = run_batch(items, EmbeddedBackend(), REQUEST, backend_key="embedded")
    for remote, here in zip(report.results, local.results, strict=True):
        assert remote.name == here.name and remote.image_key == here.image_key
        if remote.name.endswith(".jpg"):  # the photos: a clear winner, whatever the thread count
            assert remote.tags[0].name == here.tags[0].name
            assert remote.tags[0].confidence == pytest.approx(here.tags[0].confidence, abs=0.5)
    assert "cat" in {t.name for t in next(r for r in report.results if r.name.endswith("cat.jpg")).tags}

    again = run_on_cluster(dask_client, items, spec)
    assert [r.status for r in again.results] == [CACHED] * 10
    assert sum(_delta(after, dask_client.run(worker_counters), "forward_passes").values()) == 0


def test_the_same_upload_twice_is_tagged_once_even_in_chunks_on_different_workers(dask_client, tmp_path):
    # One image per task: without hashing uploads here, both copies could be tagged at once on two workers.
    spec = WorkSpec(EMBEDDED, REQUEST, "embedded", cache_target=str(tmp_path / "tagging.db"), chunk_size=1)
    cat = (SAMPLES / "cat.jpg").read_bytes()
    items = [BatchItem(name, source=HeldBytes(data, name)) for name, data in
             [("cat.jpg", cat), ("p0.png", _png(0)), ("p1.png", _png(1)), ("cat again.jpg", cat)]]
    before = dask_client.run(worker_counters)

    report = run_on_cluster(dask_client, items, spec)

    assert [r.status for r in report.results] == [OK, OK, OK, CACHED]
    assert report.results[3].reason == "same image as “cat.jpg” in this batch"
    assert report.results[3].tags == report.results[0].tags
    assert sum(_delta(before, dask_client.run(worker_counters), "forward_passes").values()) == 3


def test_imagga_requests_are_capped_across_both_workers_and_a_second_run_is_free(dask_client, standin, tmp_path):
    stand_in, url = standin
    stand_in.latency = 0.15
    items = _files(tmp_path / "in", 24)
    spec = _imagga(url, tmp_path, cap=2)  # 8 images a task: three tasks, two threads each, on two workers
    before = dask_client.run(worker_counters)

    report = run_on_cluster(dask_client, items, spec)

    assert [r.status for r in report.results] == [OK] * 24
    assert stand_in.max_in_flight == 2  # the cap held across the workers' four threads, and was used
    chunks = _delta(before, dask_client.run(worker_counters), "chunks")
    assert all(count >= 1 for count in chunks.values()), chunks  # both workers sent requests
    assert set(stand_in.billed().values()) == {1} and len(stand_in.billed()) == 24
    assert report.calls_made == 24

    total = len(stand_in.timeline)
    again = run_on_cluster(dask_client, items, spec)
    assert [r.status for r in again.results] == [CACHED] * 24
    assert len(stand_in.timeline) == total and again.calls_made == 0


def test_a_429_pauses_every_worker_for_the_time_it_asks(dask_client, standin, tmp_path):
    stand_in, url = standin
    stand_in.latency = 0.05
    items = _files(tmp_path / "in", 12)
    limited = items[5]
    stand_in.fail("rate_limit", times=1, retry_after=1.5, image_sha256=limited.sha256)

    report = run_on_cluster(dask_client, items, _imagga(url, tmp_path, cap=1))

    assert [r.status for r in report.results] == [OK] * 12
    refused = [t for t in stand_in.timeline if t[2] == 429]
    assert len(refused) == 1
    answered_429 = refused[0][1]
    later = [arrived for arrived, *_ in stand_in.timeline if arrived > answered_429]
    assert later, "the batch went on after the pause"
    assert min(later) >= answered_429 + 1.5  # nobody, on either worker, sent anything during the pause
    assert stand_in.billed()[limited.sha256] == 1  # retried after the pause, paid once
    assert len(stand_in.billed()) == 12


def test_no_image_is_billed_twice_across_workers_even_when_it_repeats(dask_client, standin, tmp_path):
    stand_in, url = standin
    stand_in.latency = 0.05
    uploads = [(f"u{i:02d}.png", _png(i)) for i in range(16)]
    uploads += [("again-u00.png", _png(0)), ("again-u09.png", _png(9)), ("again-u15.png", _png(15))]

    report = run_on_cluster(dask_client, uploads, _imagga(url, tmp_path, cap=2))  # bytes scattered to workers

    assert [r.status for r in report.results] == [OK] * 16 + [CACHED] * 3
    assert all("same image as" in r.reason for r in report.results[16:])
    assert len(stand_in.billed()) == 16 and set(stand_in.billed().values()) == {1}


def test_stop_then_resume_pays_only_for_what_did_not_finish(dask_client, standin, tmp_path):
    stand_in, url = standin
    stand_in.latency = 0.2
    items = _files(tmp_path / "in", 12)
    spec = _imagga(url, tmp_path, cap=1)
    stop = threading.Event()

    def stop_after_three(result, done, total):
        if done >= 3:
            stop.set()

    first = run_on_cluster(dask_client, items, spec, on_result=stop_after_three, stop=stop)

    assert first.stopped and first.count(SKIPPED) > 0
    tagged_first = {r.name for r in first.results if r.status == OK}
    assert tagged_first and first.count(OK) + first.count(SKIPPED) == 12
    paid_first = sum(stand_in.billed().values())

    second = run_on_cluster(dask_client, items, spec)

    assert all(r.tagged for r in second.results)
    assert {r.name for r in second.results if r.status == CACHED} >= tagged_first
    assert second.count(OK) == sum(stand_in.billed().values()) - paid_first  # only the rest was paid for
    assert len(stand_in.billed()) == 12 and set(stand_in.billed().values()) == {1}


def test_wrong_credentials_end_the_cluster_batch_instead_of_failing_every_image(dask_client, standin, tmp_path):
    stand_in, url = standin
    stand_in.fail("auth")
    items = _files(tmp_path / "in", 16)

    report = run_on_cluster(dask_client, items, _imagga(url, tmp_path, cap=1))

    assert report.aborted and "IMAGGA_API_KEY" in report.aborted
    assert report.count(SKIPPED) > 0
    assert all(r.reason.startswith("not sent:") for r in report.results if r.status == SKIPPED)
    assert len(stand_in.timeline) < 16


def test_a_worker_killed_mid_batch_loses_nothing_and_nothing_is_billed_twice(
    dask_client, dask_cluster, standin, tmp_path
):
    stand_in, url = standin
    gate = tmp_path / "gate"
    gate.mkdir()
    # Uploaded bytes (scattered to the worker that runs their chunk) and one file that blocks when decoded.
    # Cap 1: chunks of four, tagged one after the other.
    items = [BatchItem(f"img{i:02d}.png", _png(i)) for i in range(8)]
    (tmp_path / "gated.png").write_bytes(_png(2))
    items[2] = BatchItem("img02.png", source=GatedSource(str(tmp_path / "gated.png"), str(gate)))
    workers_before = set(dask_client.run(os.getpid).values())

    run = Background(run_on_cluster, dask_client, items, _imagga(url, tmp_path, cap=1))
    wait_for(lambda: any(gate.glob("blocked-*")), what="the gated image's worker to block")
    pid = int(next(gate.glob("blocked-*")).name.split("-")[1])
    assert pid in workers_before
    paid_before_kill = sum(stand_in.billed().values())
    assert paid_before_kill >= 2  # the first two images of that chunk were paid for and stored
    os.kill(pid, signal.SIGKILL)
    (gate / "release").touch()
    report = run.join()

    assert all(r.tagged for r in report.results), [(r.name, r.status, r.reason) for r in report.results]
    # The chunk's bytes died with the worker: sent again, and the rerun found what the dead worker paid for.
    assert [r.status for r in report.results[:2]] == [CACHED, CACHED]
    assert len(stand_in.billed()) == 8 and set(stand_in.billed().values()) == {1}
    dask_client.wait_for_workers(2, timeout=60)  # the nanny's replacement, for the tests after this one
    assert pid not in set(dask_client.run(os.getpid).values())
