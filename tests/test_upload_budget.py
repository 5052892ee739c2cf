"""The process-wide budget of uploaded bytes that batches hold (issue 10, defect 1)."""

from __future__ import annotations

import io
import pickle
import zipfile

import pytest

from tagging.batch import BatchItem, BudgetExceededError, ByteBudget, HeldBytes, scan_archive


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def test_reservations_add_up_to_the_capacity_and_no_further():
    budget = ByteBudget(1000)
    first = budget.reserve(600)
    with pytest.raises(BudgetExceededError, match="hold 600 bytes of the 1000 bytes") as info:
        budget.reserve(401, "“big.zip”")
    assert "“big.zip” (401 bytes)" in str(info.value)
    assert (info.value.asked, info.value.held, info.value.capacity) == (401, 600, 1000)
    assert budget.held == 600  # the refused reservation took nothing
    second = budget.reserve(400)
    assert budget.held == 1000 and budget.holds == 2
    first.release()
    first.release()  # a second release gives nothing back twice
    assert first.released and not second.released
    assert budget.held == 400 and budget.holds == 1


def test_a_hold_is_given_back_when_nothing_refers_to_it_any_more():
    budget = ByteBudget(10_000)
    source = HeldBytes(b"x" * 300, "a.png", budget.reserve(300))
    item = BatchItem("a.png", source=source)
    del source
    assert budget.held == 300  # the item still reads through it
    assert item.read() == b"x" * 300
    del item
    assert budget.held == 0 and budget.holds == 0


def test_zip_members_keep_their_archive_hold_alive():
    budget = ByteBudget(10_000_000)
    data = _zip([("a.png", b"\x89PNG\r\n\x1a\n" + b"a" * 100), ("b.png", b"\x89PNG\r\n\x1a\n" + b"b" * 100)])
    index = scan_archive(data, "two.zip", keep=budget.reserve(len(data)))
    members = [member for _, member in index.members]
    del index
    assert budget.held == len(data)
    last = members[-1]
    del members
    assert budget.held == len(data)  # one member is enough to keep the archive
    del last
    assert budget.held == 0


def test_pickled_sources_carry_the_bytes_but_not_the_hold():
    budget = ByteBudget(1000)
    source = HeldBytes(b"abc", "a.png", budget.reserve(3))
    copy = pickle.loads(pickle.dumps(source))
    assert copy.read() == b"abc" and copy.hold is None
    del source
    assert budget.held == 0


def test_a_budget_needs_a_capacity_and_a_reservation_a_size():
    with pytest.raises(ValueError):
        ByteBudget(0)
    with pytest.raises(ValueError):
        ByteBudget(10).reserve(-1)
