"""AppTest tests of the Tag and Settings pages on the Imagga backend, against the loopback stand-in."""

from __future__ import annotations

import logging

import pytest

from tagging.store import Store
from tests.conftest import SAMPLES, tag_names
from tests.imagga_standin import TEST_API_KEY, TEST_API_SECRET, ImaggaStandin, serve, standin_tags
from tests.markdown import shown

CAT = (SAMPLES / "cat.jpg").read_bytes()


@pytest.fixture
def standin(monkeypatch):
    with serve(ImaggaStandin()) as (server, base_url):
        monkeypatch.setenv("IMAGGA_API_KEY", TEST_API_KEY)
        monkeypatch.setenv("IMAGGA_API_SECRET", TEST_API_SECRET)
        monkeypatch.setenv("IMAGGA_API_URL", base_url)
        server.base_url = base_url
        yield server


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def rendered(at) -> str:
    """Every element's protobuf as text: what the browser would receive."""
    parts: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for child in children.values():
                walk(child)

    walk(at._tree)
    return "\n".join(parts)


def tag_page_on_cat(app):
    at = app().run()
    at.selectbox(key="tag_sample").set_value("cat.jpg").run()
    return at


def test_imagga_is_default_and_tags_come_from_it(app, standin):
    at = tag_page_on_cat(app)
    assert not at.exception and not at.error
    assert "Tagged by **Imagga API**" in texts(at.caption)
    expected = [t["tag"]["en"] for t in standin_tags(CAT)]
    assert tag_names(at.multiselect(key="tag_selection")) == expected
    posts = [r for r in standin.requests if r.method == "POST" and r.path == "/v2/tags"]
    assert posts and posts[-1].files["image"] == ("cat.jpg", CAT)  # the bytes, in the multipart field "image"
    assert posts[-1].authorized
    assert at.radio(key="tag_backend").options == ["Imagga API", "Embedded tagger (offline)"]


def test_slider_language_and_backend_switch_call_once_each(app, standin):
    at = tag_page_on_cat(app)
    before = standin.count(path="/v2/tags")
    for value in (0, 30, 95, 60):
        at.slider(key="tag_threshold").set_value(value).run()
    assert standin.count(path="/v2/tags") == before
    at.selectbox(key="tag_language").set_value("de").run()
    assert standin.count(path="/v2/tags") == before + 1
    de = tag_names(at.multiselect(key="tag_selection"))
    assert de == [t["tag"]["de"] for t in standin_tags(CAT, ("de",))]
    assert standin.requests[-1].query["language"] == "de"
    at.selectbox(key="tag_language").set_value("en").run()
    at.radio(key="tag_backend").set_value("embedded").run()
    assert "Tagged by **Embedded tagger (offline)**" in texts(at.caption)
    at.radio(key="tag_backend").set_value("imagga").run()
    assert standin.count(path="/v2/tags") == before + 1  # en and de both cached


def test_results_survive_a_restart_without_new_calls(app, standin):
    tag_page_on_cat(app)
    calls = standin.count(path="/v2/tags")
    import streamlit as st

    st.cache_data.clear()  # a new process: memory caches are gone, the disk cache is not
    st.cache_resource.clear()
    at = tag_page_on_cat(app)
    assert not at.exception and not at.error  # the disk-cache hit is rendered, not raised
    assert tag_names(at.multiselect(key="tag_selection")) == [t["tag"]["en"] for t in standin_tags(CAT)]
    assert "Tagged by **Imagga API**" in texts(at.caption)
    assert standin.count(path="/v2/tags") == calls


def test_two_step_mode_deletes_the_upload(app, standin):
    at = app().run()
    at.selectbox(key="tag_mode").set_value("two_step").run()
    assert not at.error
    assert standin.count("POST", "/v2/uploads") == 1
    tags_get = [r for r in standin.requests if r.method == "GET" and r.path == "/v2/tags"]
    assert tags_get and "image_upload_id" in tags_get[-1].query
    assert standin.deleted_uploads and not standin.uploads


def test_downscaling_sends_fewer_bytes_and_says_so(app, standin):
    at = app().run()
    full = [r for r in standin.requests if r.path == "/v2/tags"][-1].files["image"][1]
    at.number_input(key="tag_downscale").set_value(256).run()
    small = [r for r in standin.requests if r.path == "/v2/tags"][-1].files["image"][1]
    assert len(small) < len(full)
    assert "instead of" in texts(at.caption) and "saves" in texts(at.caption)


def test_url_is_passed_to_imagga(app, standin):
    at = app().run()
    at.radio(key="tag_source").set_value("Image URL").run()
    at.text_input(key="tag_url").input("https://images.example.com/photos/cat.jpg").run()
    assert not at.exception and not at.error
    request = [r for r in standin.requests if r.path == "/v2/tags"][-1]
    assert request.method == "GET" and request.query["image_url"] == "https://images.example.com/photos/cat.jpg"
    at.text_input(key="tag_url").input("https://broken.invalid/x.jpg").run()
    assert "could not" in shown(at.error).lower()


@pytest.mark.parametrize(
    ("mode", "kwargs", "expected"),
    [
        ("auth", {}, "IMAGGA_API_KEY"),
        ("auth", {"status": 403}, "IMAGGA_API_KEY"),
        ("rate_limit", {"retry_after": 0}, "limiting requests"),
        ("server_error", {"status": 503}, "503"),
        ("html", {}, "not json"),
        ("no_result", {}, "result"),
        ("api_error", {"text": "Unsupported image type"}, "Unsupported image type"),
    ],
)
def test_failures_show_a_clear_message_and_keep_the_image(app, standin, mode, kwargs, expected):
    standin.fail(mode, path="/v2/tags", **kwargs)
    at = tag_page_on_cat(app)
    assert not at.exception
    assert expected.lower() in shown(at.error).lower()
    assert at.image  # the photo is still shown
    standin.reset()
    at.run()  # failures are not cached: the next run tags
    assert not at.error and tag_names(at.multiselect(key="tag_selection"))


def test_feedback_is_sent_with_an_idempotency_key(app, standin, isolated_env):
    at = tag_page_on_cat(app)
    accepted = at.multiselect(key="tag_selection").value
    at.button(key="tag_save").click().run()
    assert not at.exception and not at.warning
    assert "Sent 1 feedback" in texts(at.toast)
    assert len(standin.feedback) == 1
    sent = standin.feedback[0]
    assert sent["idempotency_key"]
    positive = [t["tag"] for t in sent["payload"]["tags"] if t["feedback"] == "positive"]
    assert positive == accepted
    assert Store(isolated_env).pending() == []


def test_failed_feedback_stays_queued_and_is_retried(app, standin, isolated_env):
    standin.fail("server_error", path="/v2/tags/feedback")
    at = tag_page_on_cat(app)
    at.button(key="tag_save").click().run()
    assert not at.exception
    assert "queued" in shown(at.warning)
    store = Store(isolated_env)
    assert store.counts()[1] > 0  # saved locally whatever the remote said
    assert len(store.pending("imagga")) == 1
    standin.reset()  # the service recovers
    at.switch_page("pages/settings.py").run()
    assert "1 feedback message waiting to be sent" in shown(at.warning)
    at.button(key="settings_send_outbox").click().run()
    assert "Sent 1 feedback message." in shown(at.success)
    assert store.pending() == [] and len(standin.feedback) == 1


def test_outbox_is_retried_at_the_next_start(app, standin, isolated_env):
    standin.fail("rate_limit", path="/v2/tags/feedback", retry_after=0)
    tag_page_on_cat(app).button(key="tag_save").click().run()
    assert len(Store(isolated_env).pending()) == 1
    standin.reset()
    import streamlit as st

    st.cache_resource.clear()  # a restart
    st.cache_data.clear()
    app().run()
    assert Store(isolated_env).pending() == [] and len(standin.feedback) == 1


def test_categorizer_panel(app, standin):
    at = tag_page_on_cat(app)
    assert "Personal Photos (personal_photos)" in at.selectbox(key="tag_categorizer").options
    at.selectbox(key="tag_categorizer").set_value("personal_photos").run()
    at.button(key="tag_categorize").click().run()
    assert not at.error
    assert standin.count("GET", "/v2/categories/personal_photos") == 1
    assert at.dataframe


def test_a_categorizer_call_imagga_refused_is_given_back_to_the_daily_cap(app, standin, isolated_env, monkeypatch):
    from tagging.auth import spent_today

    monkeypatch.setenv("TAGGING_DAILY_IMAGGA_CAP", "5")
    at = tag_page_on_cat(app)
    who = at.session_state["analyst_session"]
    assert spent_today(Store(isolated_env), who) == 1  # the cat's tags
    standin.fail("server_error", status=500, path="/v2/categories")
    at.selectbox(key="tag_categorizer").set_value("personal_photos").run()
    at.button(key="tag_categorize").click().run()
    assert "HTTP 500" in shown(at.error) and not at.exception
    assert spent_today(Store(isolated_env), who) == 1
    standin.reset()
    at.button(key="tag_categorize").click().run()
    assert not at.error and at.dataframe
    assert spent_today(Store(isolated_env), who) == 2


def test_settings_connection_test_and_usage(app, standin):
    at = app().run()
    at.switch_page("pages/settings.py").run()
    at.button(key="settings_test_connection").click().run()
    assert "Connected" in shown(at.success)
    assert [m.label for m in at.metric][:2] == ["Processed this month", "Monthly limit"]
    assert not at.warning


def test_settings_quota_warning(app, monkeypatch):
    with serve(ImaggaStandin(monthly_limit=1000, monthly_processed=950)) as (_, base_url):
        monkeypatch.setenv("IMAGGA_API_KEY", TEST_API_KEY)
        monkeypatch.setenv("IMAGGA_API_SECRET", TEST_API_SECRET)
        monkeypatch.setenv("IMAGGA_API_URL", base_url)
        at = app().run()
        at.switch_page("pages/settings.py").run()
        at.button(key="settings_test_connection").click().run()
        assert "nearly used up" in shown(at.warning)


def test_settings_wrong_key_and_wrong_url(app, standin, monkeypatch):
    monkeypatch.setenv("IMAGGA_API_SECRET", "not-the-secret")
    at = app().run()
    at.switch_page("pages/settings.py").run()
    at.button(key="settings_test_connection").click().run()
    assert "Wrong key or secret" in shown(at.error)
    monkeypatch.setenv("IMAGGA_API_SECRET", TEST_API_SECRET)
    monkeypatch.setenv("IMAGGA_API_URL", "http://127.0.0.1:9/v2")
    at.run()
    at.button(key="settings_test_connection").click().run()
    assert "could not be reached" in shown(at.error) and "IMAGGA_API_URL" in shown(at.error)


def test_credentials_from_secrets_file(app, standin, monkeypatch):
    monkeypatch.delenv("IMAGGA_API_KEY")
    monkeypatch.delenv("IMAGGA_API_SECRET")
    at = app({"IMAGGA_API_KEY": TEST_API_KEY, "IMAGGA_API_SECRET": TEST_API_SECRET}).run()
    assert "Tagged by **Imagga API**" in texts(at.caption)


def test_half_configured_key_falls_back_with_a_warning(app, monkeypatch):
    monkeypatch.setenv("IMAGGA_API_KEY", TEST_API_KEY)
    at = app().run()
    assert "IMAGGA_API_SECRET is not set" in shown(at.warning)
    assert "Tagged by **Embedded tagger (offline)**" in texts(at.caption)


def test_no_secret_in_pages_or_logs(app, standin, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    at = tag_page_on_cat(app)
    at.button(key="tag_save").click().run()
    standin.fail("auth", path="/v2/tags")
    at.selectbox(key="tag_language").set_value("fr").run()
    assert at.error
    pages = [rendered(at)]
    at.switch_page("pages/settings.py").run()
    at.button(key="settings_test_connection").click().run()
    pages.append(rendered(at))
    everything = "\n".join(pages) + caplog.text + repr(dict(at.session_state))
    for secret in (TEST_API_KEY, TEST_API_SECRET):
        assert secret not in everything


def test_imagga_parameters_reach_the_request(app, standin):
    at = app().run()
    at.number_input(key="tag_limit").set_value(5).run()
    assert len(tag_names(at.multiselect(key="tag_selection"))) == 5
    at.number_input(key="tag_server_threshold").set_value(30.5).run()
    at.checkbox(key="tag_decrease_parents").check().run()
    at.checkbox(key="tag_verbose").check().run()
    at.text_input(key="tag_tagger_id").input("my_tagger").run()
    assert not at.exception and not at.error
    last = [r for r in standin.requests if r.path.startswith("/v2/tags")][-1]
    assert last.path == "/v2/tags/my_tagger"
    assert last.query == {"language": "en", "limit": "5", "threshold": "30.5", "decrease_parents": "1", "verbose": "1"}
    raw = at.json[0].proto.body
    assert '"origin"' in raw  # verbose answers carry origin and synset_id


def test_malformed_url_is_refused_before_imagga_is_asked(app, standin):
    at = app().run()
    before = standin.count(path="/v2/tags")
    at.radio(key="tag_source").set_value("Image URL").run()
    for url in ["http://[::1/cat.jpg", "http://[abc]/x.jpg", "http://a]b/x.jpg"]:
        at.text_input(key="tag_url").input(url).run()
        assert not at.exception, url
        assert "not a valid web address" in shown(at.error), url
    assert standin.count(path="/v2/tags") == before


@pytest.mark.parametrize(("retries", "requests_made"), [("0", 1), ("2", 3)])
def test_page_retries_come_from_the_environment(app, standin, monkeypatch, retries, requests_made):
    monkeypatch.setenv("IMAGGA_RETRIES", retries)
    standin.fail("server_error", status=503, path="/v2/tags")
    at = app().run()  # opens on the cat sample: one tagging attempt
    assert not at.exception and "503" in shown(at.error)
    assert standin.count("POST", "/v2/tags") == requests_made
