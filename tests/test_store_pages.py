"""AppTest tests of what the store means on the pages: who replaced whom, provenance, database trouble, secrets."""

from __future__ import annotations

import hashlib
import logging
from urllib.parse import quote

import pytest

from tagging.store import AUTOMATIC, REVIEWED, SCHEMA_VERSION, FeedbackItem, Store
from tests.conftest import SAMPLES
from tests.pgcluster import _free_port
from ui.library import when
from ui.text import literal

CAT_KEY = hashlib.sha256((SAMPLES / "cat.jpg").read_bytes()).hexdigest()
PAGES = ["pages/tag.py", "pages/batch.py", "pages/tune.py", "pages/library.py", "pages/settings.py"]
SECRET = "pg-Secret:with@odd/chars#1"


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def everything(at) -> str:
    """The text of every element that shows text, for checks that a secret appears nowhere."""
    parts = [at.error, at.warning, at.info, at.success, at.text, at.markdown, at.caption, at.title, at.subheader,
             at.toast, at.code]
    labels = [getattr(w, "label", "") or "" for w in (*at.text_input, *at.radio, *at.selectbox, *at.button)]
    return "\n".join(texts(p) for p in parts) + "\n".join(labels)


def seed_cat(db, saved_by: str, provenance: str = REVIEWED) -> Store:
    store = Store(db)
    store.save_feedback(image_key=CAT_KEY, filename="cat.jpg", source="Sample photo", backend="embedded",
                        language="en", threshold=60, min_tags=3, items=[FeedbackItem("cat", 90.0, True)],
                        saved_by=saved_by, provenance=provenance)
    return store


# --- who saved, and who replaced whom ------------------------------------------------------------------
def test_tag_page_says_whose_verdict_was_replaced_literally(app, isolated_env, monkeypatch):
    monkeypatch.setenv("TAGGING_ANALYST", "alice")
    tricky = "**Bob** [call](mailto:x@example.invalid) :red[x] $y$"
    store = seed_cat(isolated_env, tricky)
    before = store.verdict_set(CAT_KEY, "embedded", "en").saved_at
    at = app().run()
    at.button(key="tag_save").click().run()
    assert not at.exception and not at.error
    expected = f"You replaced the verdict {literal(tricky)} saved at {literal(when(before))}."
    assert texts(at.warning) == expected
    assert "\\*\\*Bob\\*\\* \\[call\\]\\(mailto\\:x\u2060\\@example\\.invalid\\) \\:red\\[x\\] \\$y\\$" in expected
    stored = store.verdict_set(CAT_KEY, "embedded", "en")
    assert (stored.saved_by, stored.provenance) == ("alice", REVIEWED)
    at.button(key="tag_save").click().run()  # replacing your own verdict is no news
    assert not at.warning and "Updated feedback" in texts(at.toast)


def test_name_set_on_settings_signs_the_verdicts(app, isolated_env):
    seed_cat(isolated_env, "bob")
    at = app().run()
    at.switch_page("pages/settings.py").run()
    assert not at.exception
    at.text_input(key="settings_analyst_name").input("  Carol   Smith ").run()
    assert "Carol Smith" in texts(at.text)
    at.switch_page("pages/tag.py").run()
    at.button(key="tag_save").click().run()
    assert "You replaced the verdict bob saved at" in texts(at.warning)
    assert Store(isolated_env).verdict_set(CAT_KEY, "embedded", "en").saved_by == "Carol Smith"
    at.switch_page("pages/settings.py").run()  # the name outlives the page switch
    assert at.text_input(key="settings_analyst_name").value == "  Carol   Smith "  # as typed


def test_without_a_name_each_browser_session_signs_with_its_own_id(app, isolated_env):
    first = app().run()
    first.button(key="tag_save").click().run()
    own = first.session_state["analyst_session"]
    assert own.startswith("session-") and not first.warning
    second = app().run()  # another browser session
    second.button(key="tag_save").click().run()
    assert f"You replaced the verdict {literal(own)} saved at" in texts(second.warning)


# --- provenance on the Tune and Library pages -----------------------------------------------------------
def test_tune_page_uses_reviewed_verdicts_and_counts_those_awaiting_review(app, isolated_env):
    store = Store(isolated_env)
    for key, items in {"r1": [FeedbackItem("cat", 90, True), FeedbackItem("dog", 40, False)],
                       "r2": [FeedbackItem("tree", 80, True)]}.items():
        store.save_feedback(image_key=key, filename=f"{key}.jpg", source="Upload", backend="embedded",
                            language="en", threshold=60, min_tags=3, items=items)
    for key in ("a1", "a2", "a3"):
        store.save_feedback(image_key=key, filename=f"{key}.jpg", source="batch", backend="embedded",
                            language="en", threshold=60, min_tags=3, items=[FeedbackItem("car", 10, True)],
                            provenance=AUTOMATIC)
    at = app()
    at.switch_page("pages/tune.py").run()
    assert not at.exception and not at.error
    assert "Based on **2 images** and **3 tag verdicts**" in texts(at.warning) + texts(at.success)
    assert "3 tagged images of this tagger and language wait for review" in texts(at.caption)


def test_tune_page_without_reviews_says_how_many_wait(app, isolated_env):
    store = Store(isolated_env)
    store.save_feedback(image_key="a1", filename="a1.jpg", source="batch", backend="embedded", language="en",
                        threshold=60, min_tags=3, items=[FeedbackItem("car", 10, True)], provenance=AUTOMATIC)
    at = app()
    at.switch_page("pages/tune.py").run()
    assert "No reviewed feedback saved yet" in texts(at.info)
    assert "1 tagged image saved from batches awaits review" in texts(at.info)


def test_library_shows_and_filters_provenance(app, isolated_env):
    store = seed_cat(isolated_env, "alice")
    store.save_feedback(image_key="auto", filename="auto.jpg", source="batch", backend="embedded", language="en",
                        threshold=60, min_tags=3, items=[FeedbackItem("car", 70, True)], provenance=AUTOMATIC,
                        saved_by="bob")
    at = app()
    at.switch_page("pages/library.py").run()
    assert not at.exception and not at.error
    frame = next(d.value for d in at.dataframe if "thumbnail" in d.value.columns)
    assert dict(zip(frame["file"], frame["verdicts"], strict=True)) == {"cat.jpg": REVIEWED, "auto.jpg": AUTOMATIC}
    assert dict(zip(frame["file"], frame["saved by"], strict=True)) == {"cat.jpg": "alice", "auto.jpg": "bob"}
    at.radio(key="lib_provenance").set_value(AUTOMATIC).run()
    frame = next(d.value for d in at.dataframe if "thumbnail" in d.value.columns)
    assert list(frame["file"]) == ["auto.jpg"]
    at.radio(key="lib_provenance").set_value(REVIEWED).run()
    frame = next(d.value for d in at.dataframe if "thumbnail" in d.value.columns)
    assert list(frame["file"]) == ["cat.jpg"]


# --- PostgreSQL: the app on it, the database going away, secrets ------------------------------------------
def _set_connections(pg_cluster, url: str, allowed: bool) -> None:
    database = url.rsplit("/", 1)[1]
    pg_cluster.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {"true" if allowed else "false"}')
    if not allowed:
        pg_cluster.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")


def test_tag_page_on_postgresql_survives_the_database_going_away(app, pg_cluster, pg_database, monkeypatch):
    monkeypatch.setenv("TAGGING_DB", pg_database)
    at = app().run()
    assert not at.exception and not at.error
    at.multiselect(key="tag_selection").set_value(["cat"]).run()
    _set_connections(pg_cluster, pg_database, False)
    try:
        at.button(key="tag_save").click().run()
        assert not at.exception
        assert "Could not open the feedback database" in texts(at.error)
        assert "PostgreSQL server is running" in texts(at.error)
        assert "Nothing in this session is lost" in texts(at.error)
    finally:
        _set_connections(pg_cluster, pg_database, True)
    at.run()
    assert at.multiselect(key="tag_selection").value == ["cat"]  # the analyst's edit survived
    at.button(key="tag_save").click().run()
    assert not at.exception and not at.error and "Saved feedback" in texts(at.toast)
    store = Store(pg_database)
    try:
        assert [r.tag for r in store.feedback_for(CAT_KEY, "embedded", "en") if r.accepted] == ["cat"]
    finally:
        store.close()


@pytest.mark.parametrize("where", ["url", "setting"])
def test_a_database_password_never_shows_on_any_page_or_in_the_log(app, monkeypatch, caplog, where):
    url = f"postgresql://analyst@127.0.0.1:{_free_port()}/library"  # nothing listens there
    if where == "url":
        monkeypatch.setenv("TAGGING_DB", url.replace("analyst@", f"analyst:{quote(SECRET, safe='')}@"))
    else:
        monkeypatch.setenv("TAGGING_DB", url)
        monkeypatch.setenv("TAGGING_DB_PASSWORD", SECRET)
    caplog.set_level(logging.DEBUG)
    for page in PAGES:
        at = app()
        at.switch_page(page).run()
        assert not at.exception, page
        assert "Could not open the feedback database" in texts(at.error), page
        assert "127\\.0\\.0\\.1" in texts(at.error) and "analyst\\:\\*\\*\\*\u2060\\@" in texts(at.error)
        shown = everything(at)
        assert SECRET not in shown and quote(SECRET, safe="") not in shown and "Secret" not in shown, page
    assert SECRET not in caplog.text and quote(SECRET, safe="") not in caplog.text


def test_settings_shows_the_database_with_its_password_hidden(app, pg_cluster, pg_database, monkeypatch):
    database = pg_database.rsplit("/", 1)[1]
    pg_cluster.create_role("settings_analyst", SECRET)
    try:
        pg_cluster.execute(f'ALTER DATABASE "{database}" OWNER TO settings_analyst')
        pg_cluster.execute("ALTER SCHEMA public OWNER TO settings_analyst", database=database)
        monkeypatch.setenv(
            "TAGGING_DB", pg_cluster.url(database, user="settings_analyst", password=quote(SECRET, safe="")))
        at = app()
        at.switch_page("pages/settings.py").run()
        assert not at.exception and not at.error
        assert f"Database: postgresql://settings_analyst:***@127.0.0.1:{pg_cluster.port}/{database}" in texts(at.text)
        assert SECRET not in everything(at) and quote(SECRET, safe="") not in everything(at)
        assert f"schema v{SCHEMA_VERSION}" in texts(at.markdown)
    finally:
        at = None
        pg_cluster.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        pg_cluster.execute("DROP ROLE settings_analyst")


@pytest.mark.parametrize("page", ["pages/library.py", "pages/tune.py"])
def test_a_database_error_after_the_page_opened_is_one_message_escaped_once(app, isolated_env, monkeypatch, page):
    from tagging.errors import StoreError

    Store(isolated_env).save_feedback(image_key="k", filename="k.jpg", source="Upload", backend="embedded",
                                      language="en", threshold=60, min_tags=3, items=[FeedbackItem("cat", 90, True)])

    def gone(self):
        raise StoreError("the server closed the connection (test).")

    monkeypatch.setattr(Store, "data_version", gone)
    at = app()
    at.switch_page(page).run()
    assert not at.exception
    [error] = [str(e.value) for e in at.error]
    assert error.startswith("Could not read the")
    assert "\\\\" not in error and "the server closed the connection \\(test\\)\\." in error  # escaped once
