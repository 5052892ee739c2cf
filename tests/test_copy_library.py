"""``python -m tagging copy-library`` and ``bench``: SQLite to PostgreSQL and back, resumable, verified by counts."""

from __future__ import annotations

import pytest

from tagging import cli
from tagging.store import FeedbackItem, Store, TagSearch
from tagging.store import _transfer as transfer


def library_of(store: Store) -> list:
    return [e for chunk in store.iter_library(TagSearch()) for e in chunk]


@pytest.fixture
def pg_target(pg_database):
    return pg_database


def test_copy_sqlite_to_postgresql_and_back_resumes_and_verifies(tmp_path, pg_target, monkeypatch, capsys):
    source = tmp_path / "src.db"
    assert cli.main(["bench", str(source), "--images", "120", "--verdicts", "6"]) == 0
    src = Store(source)
    src.save_feedback(image_key="zz-upload", filename="cat.jpg", source="Upload", backend="imagga", language="en",
                      threshold=60, min_tags=3, items=[FeedbackItem("cat", 90, True), FeedbackItem("cat ", 90, False)],
                      thumbnail=b"\xff\xd8thumb")
    src.set_setting("default_threshold", 42)
    expected = library_of(src)

    # A copy stopped after two chunks resumes after them: nothing is copied twice.
    calls = []
    real = transfer.copy_library

    def stop_after_two(source, target, chunk=500, progress=None):
        def tick(n):
            calls.append(n)
            if len(calls) == 2:
                raise KeyboardInterrupt
        return real(source, target, chunk, tick)

    monkeypatch.setattr(transfer, "copy_library", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        cli.main(["copy-library", str(source), pg_target, "--chunk", "25"])
    assert len(calls) == 2
    monkeypatch.setattr(transfer, "copy_library", real)
    assert cli.main(["copy-library", str(source), pg_target, "--chunk", "25"]) == 0
    dst = Store(pg_target)
    assert library_of(dst) == expected
    assert dst.counts() == src.counts() and dst.library_tags() == src.library_tags()
    assert dst.tag_parents() == src.tag_parents() and dst.get_setting("default_threshold") == 42
    assert dst.thumbnail("zz-upload") == b"\xff\xd8thumb"
    assert dst.tune_rows("embedded", "en", 3).event_ds.tolist() == src.tune_rows("embedded", "en", 3).event_ds.tolist()
    assert "differs" not in capsys.readouterr().err

    back = tmp_path / "back.db"
    assert cli.main(["copy-library", pg_target, str(back)]) == 0
    assert library_of(Store(back)) == expected

    # A destination holding other rows does not pass the check.
    Store(back).save_feedback(image_key="other", filename="o.jpg", source="Upload", backend="embedded",
                              language="en", threshold=60, min_tags=3, items=[FeedbackItem("x", 50, True)])
    assert cli.main(["copy-library", pg_target, str(back)]) == 1
    assert "differs" in capsys.readouterr().err


def test_generator_is_the_same_on_both_databases(tmp_path, pg_target):
    assert cli.main(["bench", str(tmp_path / "g.db"), "--images", "50"]) == 0
    assert cli.main(["bench", pg_target, "--images", "50"]) == 0
    a, b = Store(tmp_path / "g.db"), Store(pg_target)
    assert a.counts() == b.counts() == (50, 500)
    assert library_of(a) == library_of(b)
    assert a.library_tags() == b.library_tags()
    assert a.totals()["sets:reviewed"] == sum((n * 37) % 100 < 30 for n in range(50)) == b.totals()["sets:reviewed"]


def test_bad_target_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["bench", "postgresql://nobody:s3cret@127.0.0.1:1/none", "--images", "5"]) == cli.EXIT_USAGE
    assert "s3cret" not in capsys.readouterr().err
