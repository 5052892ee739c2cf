"""Mutation survivors of issue 20 that live in a page, the upload budgets or the command line.

Each test names the mutation it kills (checked by applying it, running the test, reverting it).
The budgets are exercised at their real values (256 MB a session, 1 GB a server, the previous
batch's uploads included) with uploads that *declare* their size, so no test allocates them.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tagging import cli as cli_module
from tagging.batch import BudgetExceededError, ByteBudget
from tagging.store import AUTOMATIC, FeedbackItem, Store
from tests.conftest import ROOT
from tests.imagga_standin import TEST_API_SECRET, ImaggaStandin, serve
from ui import batch as batch_ui

MB = 1024 * 1024
CLI_SECONDS = 300  # a deadline against a hung subprocess, not a measure of speed


def _png(index: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (index % 256, index // 256 % 256, 77)).save(buffer, "PNG")
    return buffer.getvalue()


# --- review page: a key for a card never drawn ------------------------------------------------------
def test_a_key_for_a_card_never_drawn_saves_nothing(app, isolated_env, monkeypatch):
    # mutation: _too_soon taking "drawn" as True (only the look time would be checked)
    store = Store(isolated_env)
    for key in ("a", "b"):
        store.save_feedback(image_key=key, filename=f"{key}.jpg", source="batch", backend="embedded", language="en",
                            threshold=60, min_tags=3, items=[FeedbackItem("cat", 90.0, True)],
                            provenance=AUTOMATIC, saved_by="batcher", batch="b1")
    at = app()
    at.switch_page("pages/review.py").run()
    assert not at.exception
    review = at.session_state["review_session"]
    first = review.current.item.image_key
    review.skip()  # the session moved on (a run cut short): the browser never got the next card
    review.clock = lambda: review.shown_at + 60.0  # however long ago: it was never on screen
    assert review.current.item.image_key != first and at.session_state["review_shown"] != review.shown
    at.button(key="review_accept").click().run()
    assert not at.exception
    assert {store.verdict_set(k, "embedded", "en").provenance for k in ("a", "b")} == {AUTOMATIC}
    assert "before the image was on screen" in "\n".join(str(e.value) for e in at.info)


# --- upload budgets at their real values ------------------------------------------------------------
def _intake_script() -> None:
    import streamlit as st

    from ui.batch import collect_uploads

    class Declared(bytes):
        """A small upload that says it is ``declared`` bytes long (its budget counts the length)."""

        declared = 0

        def __len__(self) -> int:
            return self.declared

    class Upload:
        def __init__(self, name: str, declared: int) -> None:
            self.name, self.file_id, self.size = name, name, declared
            self.data = Declared(b"\xff\xd8\xff\xe0 not read here")
            self.data.declared = declared

        def getvalue(self) -> bytes:
            return self.data

    files = [Upload(name, size) for name, size in st.session_state["plan"]]
    intake = collect_uploads(files)
    st.session_state["problems"] = list(intake.problems)
    if st.session_state.get("keep"):
        st.session_state["kept"] = intake  # a batch still holding its uploads (its results not saved yet)


@pytest.fixture
def intake(monkeypatch):
    budget = ByteBudget(batch_ui.SERVER_BUDGET.capacity)  # a server budget of the real size, for this test only
    monkeypatch.setattr(batch_ui, "SERVER_BUDGET", budget)
    at = AppTest.from_function(_intake_script, default_timeout=30)

    def run(*plan: tuple[str, int], keep: bool = False) -> list[str]:
        at.session_state["plan"] = list(plan)
        at.session_state["keep"] = keep
        at.run()
        assert not at.exception, at.exception
        return at.session_state["problems"]

    run.budget = budget
    return run


def test_a_session_keeps_at_most_256_mb_of_uploads(intake):
    # mutation: MAX_SESSION_BYTES other than 256 MB
    (problem,) = intake(("b.jpg", 256 * MB + 1))
    assert "per session" in problem and intake.budget.held == 0
    assert intake(("a.jpg", 256 * MB)) == []
    assert intake.budget.held == 256 * MB


def test_the_previous_batchs_held_uploads_count_toward_the_session_budget(intake):
    # mutation: the session check leaving out last_batch (the uploads a finished batch still holds)
    assert intake(("first.jpg", 200 * MB), keep=True) == []
    (problem,) = intake(("second.jpg", 57 * MB), keep=True)
    assert "last batch" in problem and "per session" in problem
    assert intake(("second.jpg", 56 * MB)) == []  # 200 + 56 = 256 MB: just fits


def test_the_server_keeps_at_most_1_gb_of_uploads_for_all_sessions():
    # mutation: SERVER_BUDGET's capacity other than 1 GB
    budget = batch_ui.SERVER_BUDGET
    hold = budget.reserve(1024 * MB - budget.held)
    try:
        with pytest.raises(BudgetExceededError):
            budget.reserve(1)
    finally:
        hold.release()


# --- command line -----------------------------------------------------------------------------------
def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("IMAGGA_", "DASK_", "TAGGING_")) and k != "PYTHONPATH"}
    clean.update(CI="true", HOME=str(tmp_path), PYTHONPATH=str(ROOT), TAGGING_DB=str(tmp_path / "db" / "t.db"), **env)
    return subprocess.run([sys.executable, "-m", "tagging", "batch", *args], cwd=tmp_path, env=clean,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=CLI_SECONDS)


def test_the_command_line_exits_1_when_any_image_failed(tmp_path):
    # mutation: batch() returning EXIT_OK whatever was tagged
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "good.png").write_bytes(_png(1))
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)  # a PNG's start, then nothing
    result = _cli(tmp_path, "in", "--no-progress", "--out", "r.csv")
    assert result.returncode == cli_module.EXIT_INCOMPLETE == 1, result.stderr
    assert "1 of 2 images tagged" in result.stderr and "1 failed" in result.stderr


def test_refused_credentials_stop_every_later_window_of_a_long_batch(tmp_path):
    # mutation: the local runner sending later windows after an abort (dropping "or aborted")
    assert cli_module.LOCAL_WINDOW == 256
    images = 2 * cli_module.LOCAL_WINDOW + 1  # three windows
    (tmp_path / "in").mkdir()
    for i in range(images):
        (tmp_path / "in" / f"p{i:03d}.png").write_bytes(_png(i))
    with serve(ImaggaStandin()) as (standin, url):
        result = _cli(tmp_path, "in", "--backend", "imagga", "--concurrency", "1", "--no-progress", "--out", "r.csv",
                      IMAGGA_API_KEY="not-the-key", IMAGGA_API_SECRET=TEST_API_SECRET, IMAGGA_API_URL=url)
        sent = standin.count("POST", "/v2/tags")
    assert result.returncode == 1, result.stderr
    assert sent == 1  # the refusal, then nothing: not one request per later window
    assert f"0 of {images} images tagged" in result.stderr and "Traceback" not in result.stderr


def test_undoing_a_review_whose_feedback_a_server_is_sending_says_it_cannot_be_taken_back(app, isolated_env):
    # mutation: withdraw ignoring a live claim (the page would then stay silent); the old text said "already sent"
    store = Store(isolated_env)
    store.save_feedback(image_key="a", filename="a.jpg", source="batch", backend="imagga", language="en",
                        threshold=60, min_tags=3, items=[FeedbackItem("cat", 90.0, True)],
                        provenance=AUTOMATIC, saved_by="batcher", batch="b1")
    at = app()
    at.switch_page("pages/review.py").run()
    at.session_state["review_session"].clock = lambda: 1e12  # looked at long enough
    at.button(key="review_accept").click().run()
    (message,) = store.pending("imagga")
    assert store.claim_next("imagga", "another server").idempotency_key == message.idempotency_key
    at.button(key="review_undo").click().run()
    assert not at.exception
    warning = "\n".join(str(e.value) for e in at.warning)
    assert "being sent by a server right now" in warning and "cannot be taken back" in warning
    assert store.verdict_set("a", "imagga", "en").provenance == AUTOMATIC
