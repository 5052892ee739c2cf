"""ImaggaClient against a real loopback HTTP server (pytest-httpserver + the stand-in)."""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import re
import socket
import threading
import time
import types

import pytest
import requests
import urllib3.util.retry
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Response

from tagging.errors import (
    ApiError,
    AuthError,
    BackendConnectionError,
    BackendTimeoutError,
    BackendUnreachableError,
    MalformedResponseError,
    RateLimitError,
    ServerError,
    TaggingError,
)
from tagging.imagga import (
    DEFAULT_BASE_URL,
    Categorizer,
    ImaggaClient,
    ImaggaCredentials,
    TagParams,
    Usage,
    build_feedback_payload,
    retry_after_seconds,
)
from tests.imagga_standin import (
    TEST_API_KEY,
    TEST_API_SECRET,
    ImaggaStandin,
    standin_categories,
    standin_tags,
)

CREDS = ImaggaCredentials(TEST_API_KEY, TEST_API_SECRET)
TOKEN = base64.b64encode(f"{TEST_API_KEY}:{TEST_API_SECRET}".encode()).decode()
SECRETS = (TEST_API_KEY, TEST_API_SECRET, TOKEN)
IMAGE = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00fake-jpeg-bytes\xff\xd9"


def assert_clean(*texts: object) -> None:
    """None of the credentials (nor the Basic token) appears in any of the texts."""
    for text in texts:
        for secret in SECRETS:
            assert secret not in str(text)


def assert_clean_exc(exc: BaseException) -> None:
    """The exception, and every exception chained to it, says nothing secret."""
    seen: BaseException | None = exc
    while seen is not None:
        assert_clean(str(seen), repr(seen), *seen.args)
        seen = seen.__cause__ or seen.__context__


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture):
    """Every test runs with DEBUG logging (urllib3's too) and must log nothing secret."""
    caplog.set_level(logging.DEBUG)
    yield
    assert_clean(caplog.text, *(r.getMessage() for r in caplog.records))


@pytest.fixture
def standin(httpserver: HTTPServer) -> ImaggaStandin:
    stand = ImaggaStandin()
    stand.base_url = stand.install(httpserver)  # type: ignore[attr-defined]
    return stand


def make_client(base_url: str, creds: ImaggaCredentials = CREDS, **kwargs) -> ImaggaClient:
    """A client with tiny waits so failure tests stay fast."""
    kwargs.setdefault("retries", 2)
    kwargs.setdefault("backoff_factor", 0.01)
    kwargs.setdefault("max_retry_after", 1.0)
    return ImaggaClient(creds, base_url=base_url, **kwargs)


@pytest.fixture
def client(standin: ImaggaStandin) -> ImaggaClient:
    return make_client(standin.base_url)  # type: ignore[attr-defined]


def raw_requests(httpserver: HTTPServer):
    return [request for request, _ in httpserver.log]


# --- values -------------------------------------------------------------------------
def test_credentials_and_client_repr_mask_secrets() -> None:
    client = ImaggaClient(CREDS)
    for text in (repr(CREDS), str(CREDS), f"{CREDS}", repr(client), str(client)):
        assert_clean(text)
    assert repr(CREDS) == "ImaggaCredentials(api_key='***', api_secret='***')"
    assert repr(client) == f"ImaggaClient(base_url={DEFAULT_BASE_URL!r})"


def test_missing_credentials_are_an_auth_error() -> None:
    with pytest.raises(AuthError, match="IMAGGA_API_KEY and IMAGGA_API_SECRET"):
        ImaggaCredentials("", "x")
    with pytest.raises(AuthError):
        ImaggaCredentials("key", "  ")


def test_tag_params_query() -> None:
    assert TagParams().to_query() == {"language": "en"}
    assert TagParams().path == "/tags"
    params = TagParams(languages=("en", "de"), limit=5, threshold=30.5, decrease_parents=True,
                       verbose=False, tagger_id="my tagger")
    assert params.to_query() == {"language": "en,de", "limit": "5", "threshold": "30.5",
                                 "decrease_parents": "1", "verbose": "0"}
    assert params.path == "/tags/my%20tagger"
    assert TagParams(threshold=60.0).to_query()["threshold"] == "60"
    assert TagParams(languages="de").languages == ("de",)  # type: ignore[arg-type]
    for bad in ({"languages": ()}, {"limit": 0}, {"threshold": 101}, {"threshold": -1}):
        with pytest.raises(ValueError):
            TagParams(**bad)


# --- exact requests -----------------------------------------------------------------
def test_tag_image_sends_basic_auth_multipart_and_query(
    standin: ImaggaStandin, client: ImaggaClient, httpserver: HTTPServer
) -> None:
    params = TagParams(languages=("en", "de"), limit=5, threshold=30.5, decrease_parents=True,
                       verbose=False)
    result = client.tag_image(IMAGE, "cat.jpg", params=params)

    (request,) = raw_requests(httpserver)
    assert request.method == "POST" and request.path == "/v2/tags"
    assert request.headers["Authorization"] == f"Basic {TOKEN}"
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert list(request.files) == ["image"]
    assert dict(request.args) == {"language": "en,de", "limit": "5", "threshold": "30.5",
                                  "decrease_parents": "1", "verbose": "0"}
    (seen,) = standin.requests
    assert seen.files == {"image": ("cat.jpg", IMAGE)}

    expected = standin_tags(IMAGE, ("en", "de"), limit=5, threshold=30.5)
    assert result.tags == expected
    assert result.raw == {"result": {"tags": expected}, "status": {"text": "", "type": "success"}}
    assert set(result.tags[0]["tag"]) == {"en", "de"}


def test_tag_url_and_custom_tagger(standin: ImaggaStandin, client: ImaggaClient) -> None:
    url = "https://example.com/pics/cat.jpg?size=large&x=1"
    result = client.tag_url(url, params=TagParams(tagger_id="my_tagger", verbose=True))
    (seen,) = standin.requests
    assert (seen.method, seen.path) == ("GET", "/v2/tags/my_tagger")
    assert seen.query == {"image_url": url, "language": "en", "verbose": "1"}
    assert result.tags == standin_tags(url, verbose=True, tagger_id="my_tagger")
    assert {"origin", "synset_id"} <= set(result.tags[0])


def test_tag_url_imagga_cannot_download(standin: ImaggaStandin, client: ImaggaClient) -> None:
    with pytest.raises(ApiError, match="HTTP 400.*Could not download the image") as info:
        client.tag_url("https://nowhere.invalid/cat.jpg")
    assert standin.count() == 1  # a 4xx is not retried
    assert_clean_exc(info.value)


def test_two_step_uploads_tags_and_deletes(standin: ImaggaStandin, client: ImaggaClient) -> None:
    result = client.tag_two_step(IMAGE, "cat.png", params=TagParams(limit=3))
    upload, tag, delete = standin.requests
    assert (upload.method, upload.path) == ("POST", "/v2/uploads")
    assert upload.files == {"image": ("cat.png", IMAGE)}
    (upload_id,) = standin.deleted_uploads
    assert (tag.method, tag.path) == ("GET", "/v2/tags")
    assert tag.query == {"image_upload_id": upload_id, "language": "en", "limit": "3"}
    assert (delete.method, delete.path) == ("DELETE", f"/v2/uploads/{upload_id}")
    assert standin.uploads == {}
    assert result.tags == standin_tags(IMAGE, limit=3)


def test_two_step_deletes_even_when_tagging_fails(standin: ImaggaStandin, client: ImaggaClient) -> None:
    standin.fail("api_error", status=400, path="/v2/tags", text="Unsupported image type.")
    with pytest.raises(ApiError, match="Unsupported image type"):
        client.tag_two_step(IMAGE)
    assert [(r.method, r.path.split("/")[2]) for r in standin.requests] == [
        ("POST", "uploads"), ("GET", "tags"), ("DELETE", "uploads")]
    assert standin.uploads == {} and len(standin.deleted_uploads) == 1


def test_two_step_failed_delete_does_not_hide_tags(
    standin: ImaggaStandin, client: ImaggaClient, caplog: pytest.LogCaptureFixture
) -> None:
    standin.fail("server_error", status=503, method="DELETE")
    result = client.tag_two_step(IMAGE)
    assert result.tags == standin_tags(IMAGE)
    assert standin.count("DELETE") == 3  # retried, then given up quietly
    assert "DELETE /uploads failed (ServerError)" in caplog.text


def test_two_step_failed_tag_and_delete_raise_the_tag_error(
    standin: ImaggaStandin, client: ImaggaClient
) -> None:
    standin.fail("auth", status=403, path="/v2/tags")
    standin.fail("html", status=404, method="DELETE")
    with pytest.raises(AuthError):
        client.tag_two_step(IMAGE)
    assert standin.count("DELETE") == 1


def test_upload_without_upload_id_is_malformed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v2/uploads").respond_with_json({"result": {}, "status": {"type": "success"}})
    with pytest.raises(MalformedResponseError, match="no upload id"):
        make_client(httpserver.url_for("/v2")).upload(IMAGE, "a.jpg")


def test_injected_session_is_used_and_only_mounted_for_the_api(
    standin: ImaggaStandin, httpserver: HTTPServer
) -> None:
    session = requests.Session()
    session.headers["X-Trace"] = "t-1"
    client = make_client(standin.base_url, session=session)  # type: ignore[attr-defined]
    client.usage()
    assert standin.requests[0].headers["X-Trace"] == "t-1"
    assert session.get_adapter("https://example.org/") is not session.get_adapter(standin.base_url)  # type: ignore[attr-defined]
    assert "Authorization" not in session.headers and session.auth is None


def test_requests_are_logged_without_query_or_secrets(
    standin: ImaggaStandin, client: ImaggaClient, caplog: pytest.LogCaptureFixture
) -> None:
    client.tag_url("https://example.com/a.jpg")
    mine = [r.getMessage() for r in caplog.records if r.name == "tagging.imagga"]
    assert mine == ["Imagga GET /tags -> 200"]


# --- failure modes ------------------------------------------------------------------
def test_wrong_credentials_are_an_auth_error(standin: ImaggaStandin) -> None:
    client = make_client(standin.base_url, ImaggaCredentials("acc_wrong", "wrong-secret"))  # type: ignore[attr-defined]
    with pytest.raises(AuthError) as info:
        client.tag_image(IMAGE)
    message = str(info.value)
    assert message.startswith("Imagga rejected the API key/secret (HTTP 401)")
    assert "check IMAGGA_API_KEY and IMAGGA_API_SECRET" in message
    assert "acc_wrong" not in message and "wrong-secret" not in message
    assert standin.count() == 1  # never retried
    assert_clean_exc(info.value)


def test_403_is_an_auth_error(standin: ImaggaStandin, client: ImaggaClient) -> None:
    standin.fail("auth", status=403)
    with pytest.raises(AuthError, match="HTTP 403") as info:
        client.usage()
    assert_clean_exc(info.value)


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The sleeps urllib3's retry asks for, recorded instead of slept (only its module's ``time``)."""
    asked: list[float] = []
    fake = types.SimpleNamespace(sleep=asked.append, time=time.time, monotonic=time.monotonic)
    monkeypatch.setattr(urllib3.util.retry, "time", fake)
    return asked


def test_429_with_retry_after_then_success(standin: ImaggaStandin, client: ImaggaClient, slept: list[float]) -> None:
    standin.fail("rate_limit", times=2, retry_after="0.1")
    result = client.tag_image(IMAGE)
    assert result.tags == standin_tags(IMAGE)
    assert standin.count("POST", "/v2/tags") == 3
    assert slept == [pytest.approx(0.1), pytest.approx(0.1)]  # Retry-After was honoured twice


def test_429_forever_gives_up_after_bounded_tries(standin: ImaggaStandin, client: ImaggaClient) -> None:
    standin.fail("rate_limit", retry_after="0.05")
    with pytest.raises(RateLimitError) as info:
        client.tag_url("https://example.com/a.jpg")
    assert standin.count() == 3  # 1 + retries=2
    assert info.value.retry_after == pytest.approx(0.05)
    assert "HTTP 429" in str(info.value) and "try again in about 1 s" in str(info.value)
    assert_clean_exc(info.value)


def test_429_without_retry_after_uses_backoff(standin: ImaggaStandin, client: ImaggaClient) -> None:
    standin.fail("rate_limit")
    with pytest.raises(RateLimitError, match="try again in a minute") as info:
        client.usage()
    assert info.value.retry_after is None
    assert standin.count() == 3


def test_retry_after_too_large_gives_up_at_once(standin: ImaggaStandin, slept: list[float]) -> None:
    standin.fail("rate_limit", retry_after=3600)
    client = make_client(standin.base_url, retries=5, max_retry_after=10)  # type: ignore[attr-defined]
    with pytest.raises(RateLimitError, match="wait about 1 h, longer than this app waits") as info:
        client.tag_image(IMAGE)
    assert slept == []  # gave up without waiting
    assert standin.count() == 1
    assert info.value.retry_after == 3600


def test_retry_after_http_date_too_large_gives_up_at_once(standin: ImaggaStandin) -> None:
    standin.fail("rate_limit", retry_after=email.utils.formatdate(time.time() + 600, usegmt=True))
    with pytest.raises(RateLimitError, match="about 10 min") as info:
        make_client(standin.base_url).usage()  # type: ignore[attr-defined]
    assert standin.count() == 1
    assert 590 < info.value.retry_after <= 600


def test_total_wait_is_capped_by_max_retry_after(standin: ImaggaStandin, slept: list[float]) -> None:
    standin.fail("rate_limit", retry_after="0.3")
    client = make_client(standin.base_url, retries=10, max_retry_after=0.5)  # type: ignore[attr-defined]
    with pytest.raises(RateLimitError):
        client.usage()
    assert standin.count() == 2  # a 2nd wait of 0.3 s would overrun the 0.5 s budget
    assert slept == [pytest.approx(0.3)]


def test_500_then_success(standin: ImaggaStandin, client: ImaggaClient) -> None:
    standin.fail("server_error", times=1)
    assert client.usage().monthly_limit == 1000
    assert standin.count("GET", "/v2/usage") == 2


def test_503_forever_is_a_server_error(standin: ImaggaStandin, client: ImaggaClient) -> None:
    standin.fail("server_error", status=503, text="Service temporarily unavailable.")
    with pytest.raises(ServerError, match="HTTP 503.*Service temporarily unavailable") as info:
        client.tag_image(IMAGE)
    assert standin.count() == 3
    assert_clean_exc(info.value)


def test_502_html_page_is_a_server_error(standin: ImaggaStandin, client: ImaggaClient) -> None:
    standin.fail("server_error", status=502)
    with pytest.raises(ServerError, match="HTTP 502"):
        client.list_categorizers()


def test_read_timeout(standin: ImaggaStandin) -> None:
    gate = threading.Event()  # the stand-in answers only once the test opens it
    standin.fail("slow", delay=30, gate=gate)
    client = make_client(standin.base_url, read_timeout=0.1)  # type: ignore[attr-defined]
    try:
        with pytest.raises(BackendTimeoutError, match="did not answer within 0.1 s") as info:
            client.tag_url("https://example.com/a.jpg")
        assert standin.in_flight == 1  # the client gave up while the answer was still being held back
    finally:
        gate.set()
    assert standin.count() == 1  # a read timeout is not retried
    assert_clean_exc(info.value)


def test_upload_uses_its_own_read_timeout(standin: ImaggaStandin) -> None:
    standin.fail("slow", delay=0.2, times=1)
    client = make_client(standin.base_url, read_timeout=0.05, upload_read_timeout=2.0)  # type: ignore[attr-defined]
    assert client.tag_image(IMAGE).tags == standin_tags(IMAGE)


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(f"http://127.0.0.1:{port}/v2")
    with pytest.raises(BackendUnreachableError, match=f"Could not reach Imagga at 127.0.0.1:{port}") as info:
        client.tag_image(IMAGE)
    assert "IMAGGA_API_URL" in str(info.value)
    assert_clean_exc(info.value)


def test_a_connection_cut_after_the_request_is_not_called_unreachable() -> None:
    """The request may have reached Imagga (and been billed): only a connection never made is unreachable."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def accept_read_and_hang_up() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)  # the request arrives; no answer comes

        thread = threading.Thread(target=accept_read_and_hang_up, daemon=True)
        thread.start()
        client = make_client(f"http://127.0.0.1:{port}/v2", retries=0)
        with pytest.raises(BackendConnectionError, match="Could not reach Imagga") as info:
            client.tag_url("https://example.com/cat.jpg")
        thread.join(timeout=5)
    assert not isinstance(info.value, BackendUnreachableError)


def test_html_body_with_200_is_malformed(standin: ImaggaStandin, client: ImaggaClient) -> None:
    standin.fail("html")
    with pytest.raises(MalformedResponseError, match=r"not JSON \(HTTP 200, text/html\)") as info:
        client.tag_image(IMAGE)
    assert_clean_exc(info.value)


def test_json_without_result_is_malformed(standin: ImaggaStandin, client: ImaggaClient) -> None:
    standin.fail("no_result")
    with pytest.raises(MalformedResponseError, match="has no result"):
        client.tag_url("https://example.com/a.jpg")


def test_result_without_tags_is_malformed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v2/tags").respond_with_json({"result": {"tagz": []}, "status": {}})
    with pytest.raises(MalformedResponseError, match="no list of tags"):
        make_client(httpserver.url_for("/v2")).tag_url("https://example.com/a.jpg")


@pytest.mark.parametrize("status", [200, 400])
def test_status_type_error_is_an_api_error(standin: ImaggaStandin, client: ImaggaClient, status: int) -> None:
    standin.fail("api_error", status=status, text="Unsupported image type.")
    with pytest.raises(ApiError, match="Unsupported image type") as info:
        client.tag_image(IMAGE)
    assert standin.count() == 1
    assert_clean_exc(info.value)


def test_other_4xx_without_text(standin: ImaggaStandin, client: ImaggaClient) -> None:
    standin.fail("html", status=404)
    with pytest.raises(ApiError, match=r"HTTP 404\). It gave no reason"):
        client.usage()


def test_redirect_is_not_followed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v2/usage").respond_with_response(
        Response(status=301, headers={"Location": "https://elsewhere.example/v2/usage"}))
    with pytest.raises(ApiError, match="redirect.*IMAGGA_API_URL"):
        make_client(httpserver.url_for("/v2")).usage()
    assert len(httpserver.log) == 1


def test_echoed_credentials_are_scrubbed_from_messages(standin: ImaggaStandin, client: ImaggaClient) -> None:
    standin.fail("api_error", status=400,
                 text=f"Bad key {TEST_API_KEY} / {TEST_API_SECRET} / Basic {TOKEN}")
    with pytest.raises(ApiError) as info:
        client.usage()
    assert "Bad key *** / *** / Basic ***" in str(info.value)
    assert_clean_exc(info.value)


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ({"mode": "auth"}, AuthError),
        ({"mode": "auth", "status": 403}, AuthError),
        ({"mode": "rate_limit", "retry_after": "0.01"}, RateLimitError),
        ({"mode": "rate_limit", "retry_after": "99999"}, RateLimitError),
        ({"mode": "server_error", "status": 500}, ServerError),
        ({"mode": "server_error", "status": 502}, ServerError),
        ({"mode": "server_error", "status": 504}, ServerError),
        ({"mode": "html"}, MalformedResponseError),
        ({"mode": "no_result"}, MalformedResponseError),
        ({"mode": "api_error"}, ApiError),
        ({"mode": "api_error", "status": 422}, ApiError),
    ],
)
@pytest.mark.parametrize("call", ["tag_image", "tag_two_step", "tag_url", "usage", "categorize_image"])
def test_no_failure_reveals_credentials(
    standin: ImaggaStandin, client: ImaggaClient, rule: dict, error: type[TaggingError], call: str
) -> None:
    standin.fail(**rule)
    calls = {
        "tag_image": lambda: client.tag_image(IMAGE),
        "tag_two_step": lambda: client.tag_two_step(IMAGE),
        "tag_url": lambda: client.tag_url("https://example.com/a.jpg"),
        "usage": client.usage,
        "categorize_image": lambda: client.categorize_image("personal_photos", IMAGE),
    }
    with pytest.raises(error) as info:
        calls[call]()
    assert str(info.value).strip()
    assert_clean_exc(info.value)


# --- usage --------------------------------------------------------------------------
def test_usage_from_the_standin(standin: ImaggaStandin, client: ImaggaClient) -> None:
    client.tag_image(IMAGE)
    usage = client.usage()
    assert usage.monthly_limit == 1000 and usage.monthly_processed == 251
    assert usage.monthly_requests == 252 and usage.daily_processed == 1
    assert (usage.concurrency_max, usage.concurrency_now) == (3, 1)
    assert usage.billing_period_start == "2026-11-01 00:00:00"
    assert usage.billing_period_end == "2026-12-01 00:00:00"
    assert usage.quota_fraction == pytest.approx(0.251)
    assert usage.raw["result"]["total_processed"] == 251


def test_usage_is_tolerant() -> None:
    empty = Usage.from_result({}, {})
    assert empty == Usage() and empty.quota_fraction is None
    old = Usage.from_result({"limits": {"concurrency": 3, "monthly": 70000}, "monthly_processed": "700",
                             "concurrency": "n/a", "something_new": [1]}, {"raw": 1})
    assert (old.monthly_limit, old.concurrency_max, old.monthly_processed) == (70000, 3, 700)
    assert old.quota_fraction == pytest.approx(0.01) and old.raw == {"raw": 1}
    assert Usage(monthly_limit=0, monthly_processed=5).quota_fraction is None


def test_usage_with_partial_answer(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v2/usage").respond_with_json(
        {"result": {"monthly_limit": 2000, "billing_period_end": 1767225600, "x": True},
         "status": {"text": "", "type": "success"}})
    usage = make_client(httpserver.url_for("/v2")).usage()
    assert usage.monthly_limit == 2000 and usage.monthly_processed is None
    assert usage.billing_period_end == "1767225600" and usage.concurrency_now is None


# --- categories ---------------------------------------------------------------------
def test_list_categorizers(standin: ImaggaStandin, client: ImaggaClient) -> None:
    categorizers = client.list_categorizers()
    assert [c.id for c in categorizers] == ["personal_photos", "nsfw_beta"]
    assert categorizers[1] == Categorizer("nsfw_beta", "NSFW Beta", ("nsfw", "safe", "underwear"))
    assert standin.requests[0].path == "/v2/categorizers"


def test_categorize_by_url(standin: ImaggaStandin, client: ImaggaClient) -> None:
    url = "https://example.com/beach.jpg"
    categories = client.categorize("personal_photos", image_url=url, language="de")
    (seen,) = standin.requests
    assert (seen.path, seen.query) == ("/v2/categories/personal_photos", {"language": "de", "image_url": url})
    expected = standin_categories(url.encode(), "personal_photos", "de")
    assert [c.name for c in categories] == [e["name"]["de"] for e in expected]
    assert [c.confidence for c in categories] == sorted((c.confidence for c in categories), reverse=True)
    assert categories[0].names == {"de": categories[0].name}


def test_categorize_image_uploads_and_deletes(standin: ImaggaStandin, client: ImaggaClient) -> None:
    categories = client.categorize_image("nsfw_beta", IMAGE, "x.jpg")
    assert {c.name for c in categories} == {"nsfw", "safe", "underwear"}
    upload, categorize, delete = standin.requests
    (upload_id,) = standin.deleted_uploads
    assert categorize.query["image_upload_id"] == upload_id
    assert (delete.method, delete.path) == ("DELETE", f"/v2/uploads/{upload_id}")


def test_categorize_needs_one_reference_and_a_known_categorizer(
    standin: ImaggaStandin, client: ImaggaClient
) -> None:
    with pytest.raises(ValueError):
        client.categorize("nsfw_beta")
    with pytest.raises(ValueError):
        client.categorize("nsfw_beta", image_url="https://e.com/a.jpg", upload_id="i1")
    with pytest.raises(ApiError, match="HTTP 404.*does not exist"):
        client.categorize("nope", image_url="https://example.com/a.jpg")


# --- feedback -----------------------------------------------------------------------
def test_build_feedback_payload() -> None:
    payload = build_feedback_payload({"image_sha256": "ab" * 32}, [" cat", "pet", "cat"], ["dog"], "de")
    assert payload == {
        "image_sha256": "ab" * 32,
        "language": "de",
        "tags": [{"tag": "cat", "feedback": "positive"}, {"tag": "pet", "feedback": "positive"},
                 {"tag": "dog", "feedback": "negative"}],
    }
    for ref in ({}, {"image_url": "u", "image_upload_id": "i"}, {"image_path": "p"}, {"image_url": ""}):
        with pytest.raises(ValueError):
            build_feedback_payload(ref, ["a"], [])
    with pytest.raises(ValueError, match="both accepted and rejected: cat"):
        build_feedback_payload({"image_url": "u"}, ["cat"], ["cat"])


def test_send_feedback_posts_json_with_idempotency_key(
    standin: ImaggaStandin, client: ImaggaClient, httpserver: HTTPServer
) -> None:
    payload = build_feedback_payload({"image_url": "https://example.com/a.jpg"}, ["cat"], ["dog"])
    answer = client.send_feedback(payload, idempotency_key="fb-123")
    (request,) = raw_requests(httpserver)
    assert (request.method, request.path) == ("POST", "/v2/tags/feedback")
    assert request.headers["Idempotency-Key"] == "fb-123"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == f"Basic {TOKEN}"
    assert json.loads(request.get_data()) == payload
    assert answer["status"]["type"] == "success" and answer["result"]["received"] == 2
    assert standin.feedback == [{"idempotency_key": "fb-123", "payload": payload}]


def test_send_feedback_retry_keeps_the_key(standin: ImaggaStandin, client: ImaggaClient) -> None:
    payload = build_feedback_payload({"image_upload_id": "i1"}, ["cat"], [])
    standin.fail("server_error", status=503, times=1)
    client.send_feedback(payload, idempotency_key="k1")
    client.send_feedback(payload, idempotency_key="k1")  # the analyst clicked twice
    assert [r.headers["Idempotency-Key"] for r in standin.requests] == ["k1"] * 3
    assert len(standin.feedback) == 1 and standin.feedback_replays == 1
    with pytest.raises(ValueError):
        client.send_feedback(payload, idempotency_key=" ")


# --- helpers ------------------------------------------------------------------------
def test_retry_after_seconds() -> None:
    assert retry_after_seconds(None) is None and retry_after_seconds("") is None
    assert retry_after_seconds("120") == 120 and retry_after_seconds(" 1.5 ") == 1.5
    assert retry_after_seconds("-3") == 0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert retry_after_seconds("soon") is None


def test_short_credentials_do_not_garble_messages() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(f"http://127.0.0.1:{port}/v2", ImaggaCredentials("k", "s"), retries=0)
    with pytest.raises(BackendConnectionError, match="check the network connection"):
        client.usage()


# --- issue 10: wording, a cut body, uploads always deleted, _delete_quietly --------------------
def test_a_far_future_retry_after_reads_in_plain_words(standin: ImaggaStandin) -> None:
    far = email.utils.formatdate(time.time() + 73 * 365 * 86400, usegmt=True)  # "about 639041 h" before
    standin.fail("rate_limit", retry_after=far)
    with pytest.raises(RateLimitError) as info:
        make_client(standin.base_url).usage()  # type: ignore[attr-defined]
    message = str(info.value)
    assert "more than two months" in message
    assert not re.search(r"\d{4,}", message)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(1, "1 s"), (89, "89 s"), (600, "10 min"), (3600, "1 h"), (47 * 3600, "47 h"), (3 * 86400, "3 days"),
     (59 * 86400, "59 days"), (61 * 86400, "more than two months")],
)
def test_waits_are_said_in_the_largest_fitting_unit(standin: ImaggaStandin, slept: list[float], seconds: int,
                                                    words: str) -> None:
    standin.fail("rate_limit", retry_after=seconds)
    expected = f"wait {'' if 'than' in words else 'about '}{words}," if seconds > 1 else "try again in about 1 s"
    with pytest.raises(RateLimitError, match=expected):
        make_client(standin.base_url, max_retry_after=0.5 if seconds > 1 else 1.0).usage()  # type: ignore[attr-defined]


def _one_shot_server(reply: bytes) -> tuple[str, threading.Thread]:
    """A TCP server that answers one request with ``reply`` and hangs up (what werkzeug cannot send)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/v2", thread


def test_a_cut_body_is_a_clear_message_not_an_exception_name() -> None:
    base_url, thread = _one_shot_server(
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"status": {"ty'
    )
    with pytest.raises(MalformedResponseError) as info:
        make_client(base_url, retries=0).usage()
    thread.join(5)
    message = str(info.value)
    assert "broke off" in message and "try again" in message
    assert "ChunkedEncodingError" not in message and "Error" not in message.replace("MalformedResponseError", "")


def test_a_malformed_redirect_from_imagga_is_an_api_error() -> None:
    base_url, thread = _one_shot_server(b"HTTP/1.1 302 Found\r\nLocation: http://[::1/x\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(ApiError, match="redirect"):
        make_client(base_url, retries=0).usage()
    thread.join(5)


def test_categorize_image_deletes_its_upload_when_categorizing_fails(
    standin: ImaggaStandin, client: ImaggaClient
) -> None:
    standin.fail("api_error", status=400, path="/v2/categories", text="Categorizer is down.")
    with pytest.raises(ApiError, match="Categorizer is down"):
        client.categorize_image("nsfw_beta", IMAGE, "x.jpg")
    assert [(r.method, r.path.split("/")[2]) for r in standin.requests] == [
        ("POST", "uploads"), ("GET", "categories"), ("DELETE", "uploads")]
    assert standin.uploads == {} and len(standin.deleted_uploads) == 1


def test_delete_quietly_logs_a_documented_failure_as_a_warning_without_traceback(
    standin: ImaggaStandin, client: ImaggaClient, caplog: pytest.LogCaptureFixture
) -> None:
    standin.fail("server_error", status=503, method="DELETE")
    client.tag_two_step(IMAGE)
    (record,) = [r for r in caplog.records if "DELETE /uploads failed" in r.getMessage()]
    assert record.levelno == logging.WARNING and record.exc_info is None


def test_delete_quietly_logs_an_unexpected_error_with_its_traceback(
    standin: ImaggaStandin, client: ImaggaClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(upload_id: str) -> None:
        raise TypeError("a programming error in delete_upload")

    monkeypatch.setattr(client, "delete_upload", broken)
    result = client.tag_two_step(IMAGE)  # the tags still come back
    assert result.tags == standin_tags(IMAGE)
    (record,) = [r for r in caplog.records if "delete" in r.getMessage().lower() and r.name == "tagging.imagga"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[0] is TypeError
    assert "a programming error in delete_upload" in caplog.text  # the traceback is in the log
