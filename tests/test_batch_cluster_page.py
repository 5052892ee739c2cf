"""AppTest of the Batch page with DASK_SCHEDULER_ADDRESS set: the same page, the work on a LocalCluster."""

from __future__ import annotations

import pytest

from tagging.batch import ClusterJob, worker_counters
from tagging.embedded import EmbeddedTagger
from tests.cluster_helpers import TimedStandin, wait_for
from tests.imagga_standin import TEST_API_KEY, TEST_API_SECRET, serve
from tests.markdown import shown
from tests.test_batch_page import CAT, COFFEE, _png, _zip, metrics, table


def _passes(client) -> int:
    return sum(w.get("forward_passes", 0) for w in client.run(worker_counters).values())


@pytest.fixture
def local_passes(monkeypatch):
    """Forward passes of the embedded tagger in this (the app server's) process: none when the cluster works."""
    calls: list[int] = []
    original = EmbeddedTagger.tag_batch

    def counting(self, images):
        calls.append(len(images))
        return original(self, images)

    monkeypatch.setattr(EmbeddedTagger, "tag_batch", counting)
    return calls


def test_uploads_are_tagged_on_the_cluster_with_the_same_results_and_again_for_free(
    app, dask_cluster, dask_client, local_passes
):
    at = app({"DASK_SCHEDULER_ADDRESS": dask_cluster.scheduler_address})
    at.switch_page("pages/batch.py").run()
    files = [(f"p{i}.png", _png(i), "image/png") for i in range(3)] + [("cat.jpg", CAT, "image/jpeg")]
    files += [("trip.zip", _zip([("coffee.jpg", COFFEE), ("cat again.jpg", CAT)]), "application/zip")]
    at.file_uploader(key="batch_upload").set_value(files).run()
    assert "runs on the Dask cluster" in shown(at.caption)
    before = _passes(dask_client)

    at.button(key="batch_start").click().run()
    assert not at.exception and not at.error
    job = at.session_state["batch_job"]
    assert isinstance(job, ClusterJob)
    assert job.wait(120)
    at.run()

    assert not at.exception and not at.error
    rows = table(at)
    assert list(rows["image"]) == ["p0.png", "p1.png", "p2.png", "cat.jpg", "trip.zip › coffee.jpg",
                                    "trip.zip › cat again.jpg"]
    assert list(rows["status"]) == ["tagged"] * 5 + ["from cache"]  # the second cat is the first's answer
    assert "cat" in rows.iloc[3]["selected tags"].split(", ")
    assert metrics(at) == {"Tagged now": "5", "From the cache": "1", "Failed": "0", "Skipped": "0"}
    assert "on the Dask cluster" in shown(at.caption)
    assert _passes(dask_client) > before and local_passes == []  # tagged by the workers, not by the app server

    at.button(key="batch_start").click().run()
    assert at.session_state["batch_job"].wait(120)
    at.run()
    assert metrics(at)["From the cache"] == "6" and metrics(at)["Tagged now"] == "0"
    assert _passes(dask_client) > before and local_passes == []


def test_stop_on_the_cluster_keeps_what_finished(app, dask_cluster, monkeypatch):
    with serve(TimedStandin(latency=0.3)) as (stand_in, url):
        monkeypatch.setenv("IMAGGA_API_KEY", TEST_API_KEY)
        monkeypatch.setenv("IMAGGA_API_SECRET", TEST_API_SECRET)
        monkeypatch.setenv("IMAGGA_API_URL", url)
        at = app({"DASK_SCHEDULER_ADDRESS": dask_cluster.scheduler_address})
        at.switch_page("pages/batch.py").run()
        at.number_input(key="batch_concurrency").set_value(1).run()
        files = [(f"p{i}.png", _png(i), "image/png") for i in range(12)]
        at.file_uploader(key="batch_upload").set_value(files).run()
        at.button(key="batch_start").click().run()
        wait_for(lambda: len(stand_in.timeline) >= 2, what="two requests")
        at.button(key="batch_stop").click().run()
        assert "stopping" in at.get("progress")[0].proto.text
        assert at.session_state["batch_job"].wait(120)
        at.run()

        assert not at.exception
        statuses = list(table(at)["status"])
        assert "skipped" in statuses and statuses.count("tagged") == sum(stand_in.billed().values())
        assert "Stopped." in shown(at.info)


def test_a_wrong_scheduler_address_is_a_clear_message_and_nothing_is_lost(app):
    at = app({"DASK_SCHEDULER_ADDRESS": "not a scheduler"})
    at.switch_page("pages/batch.py").run()
    at.file_uploader(key="batch_upload").set_value([("cat.jpg", CAT, "image/jpeg")]).run()
    at.button(key="batch_start").click().run()
    assert not at.exception
    assert "is not a Dask scheduler address; it looks like tcp://host:8786" in shown(at.error)
    assert "batch_job" not in at.session_state  # no job was started
    assert not at.button(key="batch_start").disabled  # the uploads are still there: fix the address, tag again
