"""The outbox and the result cache on SQLite and PostgreSQL: exactly once, never billed twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tagging.errors import ApiError, AuthError, NotReviewedError, ServerError
from tagging.models import Tag
from tagging.store import AUTOMATIC, FeedbackItem, ResultCache, deliver_pending, open_result_cache, queue_feedback

ROOT = Path(__file__).resolve().parent.parent


class Sender:
    """Answers from a script: an exception instance raises, anything else is returned. Thread-safe."""

    def __init__(self, *answers, delay: float = 0.0):
        self.answers = list(answers)
        self.calls: list[tuple[dict, str]] = []
        self.delay = delay
        self._lock = threading.Lock()

    def send_feedback(self, payload, *, idempotency_key):
        with self._lock:
            self.calls.append((payload, idempotency_key))
            answer = self.answers.pop(0) if self.answers else {"status": {"type": "success"}}
        time.sleep(self.delay)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def store(open_db):
    return open_db()


def test_delivers_in_order_with_idempotency_keys(store):
    k1 = store.enqueue(image_key="a", backend="imagga", payload={"n": 1})
    k2 = store.enqueue(image_key="b", backend="imagga", payload={"n": 2})
    sender = Sender()
    report = deliver_pending(store, sender, "imagga")
    assert (report.sent, report.failed, report.remaining, report.ok) == (2, 0, 0, True)
    assert sender.calls == [({"n": 1}, k1), ({"n": 2}, k2)]
    assert deliver_pending(store, sender, "imagga").sent == 0  # nothing is sent twice


def test_one_bad_message_does_not_block_the_rest(store):
    store.enqueue(image_key="a", backend="imagga", payload={"n": 1})
    store.enqueue(image_key="b", backend="imagga", payload={"n": 2})
    sender = Sender(ApiError("bad payload"), ServerError("503"))
    report = deliver_pending(store, sender, "imagga")
    assert (report.sent, report.failed, report.remaining) == (0, 2, 2)
    assert len(sender.calls) == 2  # each tried once per round, not retried in a loop
    assert [p.last_error for p in store.pending()] == ["bad payload", "503"]


def test_auth_failure_stops_the_round_and_keeps_everything(store):
    for key in "abc":
        store.enqueue(image_key=key, backend="imagga", payload={"k": key})
    sender = Sender(AuthError("wrong key"))
    report = deliver_pending(store, sender, "imagga")
    assert len(sender.calls) == 1 and report.remaining == 3
    retry = Sender()
    assert deliver_pending(store, retry, "imagga").sent == 3
    assert [p["k"] for p, _ in retry.calls] == ["a", "b", "c"]


def test_other_backends_are_left_alone(store):
    store.enqueue(image_key="a", backend="other", payload={})
    assert deliver_pending(store, Sender(), "imagga").sent == 0
    assert len(store.pending("other")) == 1


def test_two_servers_retrying_at_once_send_each_message_exactly_once(open_db):
    """Two stores (two servers' connection pools) deliver the same outbox at the same moment."""
    first = open_db()
    keys = [first.enqueue(image_key=f"img{i}", backend="imagga", payload={"n": i}) for i in range(12)]
    sender = Sender(delay=0.02)  # sending takes a while, so the two rounds overlap
    barrier = threading.Barrier(2)
    reports = []

    def server() -> None:
        store = open_db()
        barrier.wait()
        reports.append(deliver_pending(store, sender, "imagga"))

    threads = [threading.Thread(target=server) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = Counter(key for _, key in sender.calls)
    assert sent == Counter(keys)  # every message once, none twice
    assert sum(r.sent for r in reports) == 12 and all(r.sent for r in reports)  # both servers took part
    assert first.pending() == []


def _tags() -> list[Tag]:
    return [Tag("cat", 90.0), Tag("dog", 10.0)]


def test_only_reviewed_verdicts_are_queued(store):
    items = [FeedbackItem("cat", 90.0, True), FeedbackItem("dog", 10.0, False)]
    common = dict(filename="x.jpg", source="batch", backend="imagga", language="en", threshold=50, min_tags=0,
                  items=items)
    store.save_feedback(image_key="auto", provenance=AUTOMATIC, **common)
    with pytest.raises(NotReviewedError):
        queue_feedback(store, backend="imagga", image_key="auto", tags=_tags(), accepted={"cat"}, language="en")
    assert store.pending() == []
    store.save_feedback(image_key="rev", **common)
    queue_feedback(store, backend="imagga", image_key="rev", tags=_tags(), accepted={"cat"}, language="en")
    [message] = store.pending()
    assert message.image_key == "rev"


# --- the result cache ----------------------------------------------------------------------------
def test_result_cache_roundtrip_and_keys(open_db):
    cache = open_result_cache(open_db())
    assert cache.get("embedded", "img", "req") is None
    cache.put("embedded", "img", "req", {"result": {"tags": []}})
    assert cache.get("embedded", "img", "req") == {"result": {"tags": []}}
    assert cache.get("embedded", "img", "other-params") is None
    assert cache.get("imagga:http://x/v2", "img", "req") is None
    assert (cache.hits, cache.misses) == (1, 3)
    cache.put("embedded", "img", "req", {"result": {"tags": ["newer"]}})  # the newest answer wins
    reopened = ResultCache(open_db())  # survives a restart, shared through the database
    assert reopened.get("embedded", "img", "req") == {"result": {"tags": ["newer"]}} and len(reopened) == 1
    reopened.clear()
    assert len(reopened) == 0 and cache.get("embedded", "img", "req") is None


def test_get_or_compute_computes_once_among_concurrent_callers(open_db):
    """Six callers, each with its own connection pool, ask for one missing answer at once: one computes."""
    calls: list[str] = []
    barrier = threading.Barrier(6)
    results: list[tuple[dict, bool]] = []
    errors: list[BaseException] = []

    def caller(name: str) -> None:
        cache = ResultCache(open_db())

        def compute() -> dict:
            calls.append(name)
            time.sleep(0.3)  # a slow backend: the others must wait, not call it too
            return {"by": name}

        barrier.wait()
        try:
            results.append(cache.get_or_compute("imagga", "img", "req", compute))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(f"c{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(calls) == 1
    assert all(payload == {"by": calls[0]} for payload, _ in results)
    assert sorted(fresh for _, fresh in results) == [False] * 5 + [True]


def test_a_failed_compute_stores_nothing_and_the_next_caller_computes(open_db):
    cache = ResultCache(open_db())

    def broken() -> dict:
        raise ApiError("unreadable answer")

    with pytest.raises(ApiError):
        cache.get_or_compute("imagga", "img", "req", broken)
    assert len(cache) == 0
    payload, fresh = cache.get_or_compute("imagga", "img", "req", lambda: {"ok": 1})  # no lease left behind
    assert (payload, fresh) == ({"ok": 1}, True)


def test_a_live_caller_keeps_its_lease_past_its_length(open_db):
    """A compute longer than the lease is not taken over: the computing caller renews it."""
    calls: list[str] = []
    started = threading.Event()
    results: list[tuple[dict, bool]] = []

    def slow() -> dict:
        calls.append("slow")
        started.set()
        time.sleep(1.5)  # five times the lease below
        return {"by": "slow"}

    first = threading.Thread(target=lambda: results.append(
        ResultCache(open_db(), lease_seconds=0.3).get_or_compute("imagga", "img", "req", slow)))
    first.start()
    assert started.wait(30)
    second = ResultCache(open_db(), lease_seconds=0.3).get_or_compute(
        "imagga", "img", "req", lambda: calls.append("second") or {"by": "second"})
    first.join()
    assert calls == ["slow"] and second == ({"by": "slow"}, False) and results == [({"by": "slow"}, True)]


CRASHER = """
import sys, time
from pathlib import Path
from tagging.store import ResultCache

cache = ResultCache(sys.argv[1], lease_seconds=float(sys.argv[2]))

def compute():
    Path(sys.argv[3]).touch()  # the lease is ours: tell the test, then hang until killed
    time.sleep(600)

cache.get_or_compute("imagga", "img", "req", compute)
"""


def test_the_lease_of_a_crashed_caller_lapses_and_is_taken_over(db_target, open_db, tmp_path):
    open_db()
    computing = tmp_path / "computing"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    crasher = subprocess.Popen([sys.executable, "-c", CRASHER, db_target, "1.5", str(computing)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not computing.exists():
            assert crasher.poll() is None, crasher.communicate()[0].decode()
            assert time.monotonic() < deadline, "the subprocess never started computing"
            time.sleep(0.02)
        os.killpg(crasher.pid, signal.SIGKILL)  # a crash: the lease row stays behind
        crasher.wait(30)
        cache = ResultCache(open_db())
        calls = []
        payload, fresh = cache.get_or_compute("imagga", "img", "req", lambda: calls.append(1) or {"ok": True})
        assert (payload, fresh, calls) == ({"ok": True}, True, [1])  # waited for the lapse, then computed once
    finally:
        if crasher.poll() is None:
            os.killpg(crasher.pid, signal.SIGKILL)
            crasher.wait(30)
        crasher.stdout.close()
