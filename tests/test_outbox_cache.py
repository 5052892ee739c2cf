from __future__ import annotations

import pytest

from tagging.errors import ApiError, AuthError, ServerError
from tagging.store import ResultCache, Store, cache_path_for, deliver_pending


class Sender:
    """Answers from a script: an exception instance raises, anything else is returned."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls: list[tuple[dict, str]] = []

    def send_feedback(self, payload, *, idempotency_key):
        self.calls.append((payload, idempotency_key))
        answer = self.answers.pop(0) if self.answers else {"status": {"type": "success"}}
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "t.db")


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
    report = deliver_pending(store, Sender(ApiError("bad payload"), ServerError("503")), "imagga")
    assert (report.sent, report.failed, report.remaining) == (0, 2, 2)
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


def test_result_cache_roundtrip_and_keys(tmp_path):
    cache = ResultCache(cache_path_for(tmp_path / "tagging.db"))
    assert cache.path == tmp_path / "results-cache.db"
    assert cache.get("embedded", "img", "req") is None
    cache.put("embedded", "img", "req", {"result": {"tags": []}})
    assert cache.get("embedded", "img", "req") == {"result": {"tags": []}}
    assert cache.get("embedded", "img", "other-params") is None
    assert cache.get("imagga:http://x/v2", "img", "req") is None
    assert (cache.hits, cache.misses) == (1, 3)
    reopened = ResultCache(cache.path)  # survives a restart
    assert reopened.get("embedded", "img", "req") == {"result": {"tags": []}} and len(reopened) == 1
    reopened.clear()
    assert len(reopened) == 0
