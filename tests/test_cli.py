"""``python -m tagging batch`` as a user runs it: a subprocess with CI=true and no stdin.

Imagga is the loopback stand-in (fast, and it counts what would be billed); one test tags a
folder with the embedded model on the two-worker LocalCluster.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tagging.batch import worker_counters
from tagging.store import Store
from tests.cluster_helpers import TimedStandin, wait_for
from tests.conftest import ROOT, SAMPLES
from tests.imagga_standin import TEST_API_KEY, TEST_API_SECRET, serve, standin_tags

CLI_SECONDS = 300  # a deadline against a hung subprocess, not a measure of speed


def _png(index: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (index * 53 % 256, 200, index * 19 % 256)).save(buffer, "PNG")
    return buffer.getvalue()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IMAGGA_", "DASK_", "TAGGING_")) and k != "PYTHONPATH"}
    # No developer's secrets: the subprocess runs in tmp_path with HOME there too.
    env.update(CI="true", HOME=str(tmp_path), PYTHONPATH=str(ROOT), TAGGING_DB=str(tmp_path / "db" / "tagging.db"))
    env.update(extra)
    return env


def cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tagging", "batch", *args], cwd=tmp_path, env=_env(tmp_path, **env),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=CLI_SECONDS,
    )


def imagga_env(url: str) -> dict[str, str]:
    return {"IMAGGA_API_KEY": TEST_API_KEY, "IMAGGA_API_SECRET": TEST_API_SECRET, "IMAGGA_API_URL": url}


@pytest.fixture
def standin():
    with serve(TimedStandin()) as (stand_in, url):
        yield stand_in, url


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, bytes]:
    """photos/ (nested, with a non-image), extra/*.png, a zip, and a file for a file:// URL; name -> bytes."""
    images = {f"photos/a{i}.png": _png(i) for i in range(2)}
    images["photos/sub/b.png"] = _png(2)
    images["extra/c.png"] = _png(3)
    images["extra/d.png"] = _png(4)
    images["url/e.png"] = _png(5)
    for name, data in images.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    with zipfile.ZipFile(tmp_path / "trip.zip", "w") as archive:
        archive.writestr("day 1/f.png", _png(6))
        archive.writestr("readme.md", "hello")
    images["trip.zip › day 1/f.png"] = _png(6)
    return images


def test_folders_globs_zips_and_a_file_url_to_csv_with_the_batch_pages_rule(tmp_path, inputs, standin):
    stand_in, url = standin
    out = tmp_path / "results.csv"
    result = cli(tmp_path, "photos", "extra/*.png", "trip.zip", f"file://{tmp_path}/url/e.png",
                 "--backend", "imagga", "--out", str(out), "--threshold", "60", "--min-tags", "1",
                 **imagga_env(url))

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert "2 files not read" in result.stderr  # notes.txt and the zip's readme.md
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["image"] for r in rows] == [
        "photos/a0.png", "photos/a1.png", "photos/sub/b.png", "extra/c.png", "extra/d.png", "trip.zip › day 1/f.png",
        f"file://{tmp_path}/url/e.png",
    ]
    by_name = {name: inputs[name] for name in inputs if not name.startswith("url/")}
    by_name[f"file://{tmp_path}/url/e.png"] = inputs["url/e.png"]
    for row in rows:
        expected = [t["tag"]["en"] for t in standin_tags(by_name[row["image"]]) if t["confidence"] >= 60]
        assert row["status"] == "ok" and row["selected tags"] == "; ".join(expected)
    assert len(stand_in.billed()) == 7 and set(stand_in.billed().values()) == {1}


def test_json_output_a_stored_default_threshold_and_a_second_run_that_makes_zero_calls(tmp_path, inputs, standin):
    stand_in, url = standin
    (tmp_path / "db").mkdir()
    Store(tmp_path / "db" / "tagging.db").set_setting("default_threshold", 70.0)  # what the Tune page stores
    out = tmp_path / "results.json"

    first = cli(tmp_path, "photos", "--backend", "imagga", "--out", str(out), **imagga_env(url))
    assert first.returncode == 0, first.stderr
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["backend"] == "imagga" and document["threshold"] == 70 and document["min_tags"] == 3
    assert [i["status"] for i in document["images"]] == ["ok"] * 3
    for image in document["images"]:  # at or above 70, and never fewer than the 3 best
        above = [t["tag"] for t in image["tags"] if t["confidence"] >= 70]
        assert image["selected"] == (above if len(above) >= 3 else [t["tag"] for t in image["tags"][:3]])
    calls = len(stand_in.timeline)

    second = cli(tmp_path, "photos", "--backend", "imagga", "--out", str(out), **imagga_env(url))
    assert second.returncode == 0, second.stderr
    assert len(stand_in.timeline) == calls  # zero calls
    assert [i["status"] for i in json.loads(out.read_text(encoding="utf-8"))["images"]] == ["cached"] * 3
    assert "0 now, 3 from the cache" in second.stderr


def test_without_out_the_csv_goes_to_stdout_and_the_progress_bar_to_stderr(tmp_path, inputs, standin):
    stand_in, url = standin
    result = cli(tmp_path, "extra", "--backend", "imagga", **imagga_env(url))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("image,status,selected tags")
    assert len(result.stdout.splitlines()) == 3
    assert "2/2" in result.stderr  # tqdm's count, written without a terminal


@pytest.mark.parametrize(("args", "code", "message"), [
    (["missing-folder"], 2, "“missing-folder”: no such file or folder."),
    (["nosuch://bucket/photos"], 2, "cannot be opened: Protocol not known: nosuch"),
    (["photos/notes.txt"], 2, "No images found"),
    (["photos", "--out", "results.txt"], 2, "--out must end in .csv or .json"),
    (["photos", "--out", "no/such/folder/r.csv"], 2, "does not exist"),
    (["photos", "--backend", "imagga"], 2, "Imagga is not configured"),
    (["photos", "--threshold", "120"], 2, "--threshold is a confidence between 0 and 100"),
    (["photos", "--scheduler", "not an address"], 3, "is not a Dask scheduler address"),
    (["photos", "--scheduler", "tcp://127.0.0.1:9"], 3, "Cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
])
def test_expected_failures_exit_with_a_message_and_never_a_traceback(tmp_path, inputs, args, code, message):
    result = cli(tmp_path, *args)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_bad_usage_is_argparses_exit_2():
    result = subprocess.run([sys.executable, "-m", "tagging", "batch", "--backend", "nope", "x"], cwd=ROOT,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=CLI_SECONDS)
    assert result.returncode == 2 and "invalid choice" in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_stops_after_the_images_in_progress_and_the_next_run_pays_only_for_the_rest(tmp_path, standin):
    stand_in, url = standin
    stand_in.latency = 0.3
    (tmp_path / "many").mkdir()
    for i in range(12):
        (tmp_path / "many" / f"m{i:02d}.png").write_bytes(_png(20 + i))
    out = tmp_path / "results.csv"
    args = [sys.executable, "-m", "tagging", "batch", "many", "--backend", "imagga", "--concurrency", "1",
            "--out", str(out)]
    process = subprocess.Popen(args, cwd=tmp_path, env=_env(tmp_path, **imagga_env(url)), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(stand_in.timeline) >= 3, what="three requests")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=CLI_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "Run the same command again" in stderr and "Traceback" not in stderr
    statuses = [row["status"] for row in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))]
    assert len(statuses) == 12 and "skipped" in statuses  # every image listed, the unfinished ones as skipped
    paid = sum(stand_in.billed().values())
    assert statuses.count("ok") <= paid < 12

    stand_in.latency = 0.0
    again = cli(tmp_path, "many", "--backend", "imagga", "--out", str(out), **imagga_env(url))
    assert again.returncode == 0, again.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert all(r["status"] in ("ok", "cached") for r in rows)
    assert sum(r["status"] == "cached" for r in rows) == paid  # all that was paid for, and only that, was free
    assert len(stand_in.billed()) == 12 and set(stand_in.billed().values()) == {1}


def test_a_folder_on_the_cluster_with_the_embedded_model_then_again_for_free(tmp_path, dask_cluster, dask_client):
    (tmp_path / "photos").mkdir()
    for name in ("cat.jpg", "coffee.jpg", "rocket.jpg"):
        (tmp_path / "photos" / name).write_bytes((SAMPLES / name).read_bytes())
    address = dask_cluster.scheduler_address
    out = tmp_path / "results.csv"
    before = dask_client.run(worker_counters)

    first = cli(tmp_path, "photos", "--out", str(out), DASK_SCHEDULER_ADDRESS=address)

    assert first.returncode == 0, first.stderr
    assert f"on the Dask cluster at {address}" in first.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["status"] for r in rows] == ["ok"] * 3
    assert "cat" in rows[0]["selected tags"].split("; ")
    passes = lambda: sum(w.get("forward_passes", 0) for w in dask_client.run(worker_counters).values())  # noqa: E731
    after = passes()
    assert after > sum(w.get("forward_passes", 0) for w in before.values())

    second = cli(tmp_path, "photos", "--out", str(out), "--scheduler", address)
    assert second.returncode == 0, second.stderr
    assert [r["status"] for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))] == ["cached"] * 3
    assert passes() == after  # no forward pass anywhere on the cluster


def test_workers_share_a_postgresql_cache_whose_password_never_shows(
    tmp_path, dask_cluster, dask_client, pg_cluster, pg_database
):
    """The team setup: TAGGING_DB names a PostgreSQL database (no password in it), TAGGING_DB_PASSWORD the
    password; the workers write their answers there, and a second run pays for nothing."""
    from tagging.store import open_result_cache, open_store

    secret = "cluster-Secret:with@odd/chars#2"
    database = pg_database.rsplit("/", 1)[1]
    pg_cluster.create_role("batch_analyst", secret)
    pg_cluster.execute(f'ALTER DATABASE "{database}" OWNER TO batch_analyst')
    pg_cluster.execute("ALTER SCHEMA public OWNER TO batch_analyst", database=database)
    target = pg_cluster.url(database, user="batch_analyst")
    (tmp_path / "photos").mkdir()
    for name in ("cat.jpg", "coffee.jpg"):
        (tmp_path / "photos" / name).write_bytes((SAMPLES / name).read_bytes())
    address = dask_cluster.scheduler_address
    out = tmp_path / "results.json"

    first = cli(tmp_path, "photos", "--out", str(out), "--scheduler", address,
                TAGGING_DB=target, TAGGING_DB_PASSWORD=secret)

    assert first.returncode == 0, first.stderr
    assert [i["status"] for i in json.loads(out.read_text(encoding="utf-8"))["images"]] == ["ok", "ok"]
    assert secret not in first.stderr + first.stdout
    store = open_store(target, secret)
    try:
        assert len(open_result_cache(store)) == 2  # written on the workers, into the shared database
    finally:
        store.close()
    passes = sum(w.get("forward_passes", 0) for w in dask_client.run(worker_counters).values())

    second = cli(tmp_path, "photos", "--out", str(out), "--scheduler", address,
                 TAGGING_DB=target, TAGGING_DB_PASSWORD=secret)
    assert second.returncode == 0, second.stderr
    assert [i["status"] for i in json.loads(out.read_text(encoding="utf-8"))["images"]] == ["cached", "cached"]
    assert sum(w.get("forward_passes", 0) for w in dask_client.run(worker_counters).values()) == passes

    wrong = cli(tmp_path, "photos", "--scheduler", address, TAGGING_DB=target, TAGGING_DB_PASSWORD="not it")
    assert wrong.returncode != 0 and "Traceback" not in wrong.stderr
    assert "not it" not in wrong.stderr and "feedback database" in wrong.stderr
