"""Imagga's analysis endpoints (faces, colours, text, crops) against the loopback stand-in: contract per
endpoint and per failure, the same handling as tags."""

from __future__ import annotations

import io
import threading

import pytest
from PIL import Image
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Response

from tagging.analysis import COLORS, CROPPINGS, ENDPOINTS, FACES, PATHS, TEXT, check
from tagging.errors import (
    ApiError,
    AuthError,
    BackendTimeoutError,
    MalformedResponseError,
    RateLimitError,
    ServerError,
)
from tagging.imagga import ImaggaClient, ImaggaCredentials
from tests.imagga_standin import DEFAULT_SIZE, ImaggaStandin, standin_analysis
from tests.test_imagga_client import CREDS, assert_clean_exc, make_client, no_secret_in_logs  # noqa: F401

RESOLUTIONS = [(1080, 1080), (1920, 1080)]


def jpeg(size: tuple[int, int] = (400, 300)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (90, 120, 150)).save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture
def standin(httpserver: HTTPServer) -> ImaggaStandin:
    stand = ImaggaStandin()
    stand.base_url = stand.install(httpserver)  # type: ignore[attr-defined]
    return stand


@pytest.fixture
def client(standin: ImaggaStandin) -> ImaggaClient:
    return make_client(standin.base_url)  # type: ignore[attr-defined]


def ask(client: ImaggaClient, endpoint: str, **kwargs):
    kwargs.setdefault("data", jpeg())
    return client.analyse(endpoint, resolutions=RESOLUTIONS if endpoint == CROPPINGS else (), **kwargs)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_upload_answers_the_endpoint_shape(client, standin, endpoint) -> None:
    data = jpeg((400, 300))
    answer = ask(client, endpoint, data=data)
    check(endpoint, answer.raw)
    resolution = "1080x1080,1920x1080" if endpoint == CROPPINGS else None
    assert answer.raw["result"] == standin_analysis(endpoint, data, resolution)
    (seen,) = standin.requests
    assert (seen.method, seen.path) == ("POST", "/v2" + PATHS[endpoint])
    assert seen.files["image"][1] == data


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_url_is_fetched_by_imagga(client, standin, endpoint) -> None:
    answer = ask(client, endpoint, data=None, image_url="https://example.com/a.jpg")
    check(endpoint, answer.raw)
    (seen,) = standin.requests
    assert seen.method == "GET" and seen.query["image_url"] == "https://example.com/a.jpg"


def test_query_parameters_per_endpoint(client, standin) -> None:
    ask(client, COLORS)
    ask(client, CROPPINGS)
    colors, crops = standin.requests
    assert colors.query["extract_object_colors"] == "1" and colors.query["overall_count"] == "5"
    assert crops.query["resolution"] == "1080x1080,1920x1080" and crops.query["no_scaling"] == "1"
    answer = ask(client, CROPPINGS)
    first = answer.raw["result"]["croppings"][0]
    assert (first["x1"], first["y1"], first["x2"], first["y2"]) == (50, 0, 349, 299)  # centred square of 400x300


def test_bad_calls_are_refused_before_sending(client, standin) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        client.analyse(FACES)
    with pytest.raises(ValueError, match="exactly one"):
        client.analyse(FACES, data=b"x", image_url="https://example.com/a.jpg")
    with pytest.raises(ValueError, match="resolution"):
        client.analyse(CROPPINGS, data=jpeg())
    with pytest.raises(ValueError, match="unknown analysis endpoint"):
        client.analyse("tags", data=jpeg())
    assert standin.count() == 0


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_rejected_key_is_an_auth_error_without_secrets(standin, endpoint) -> None:
    client = make_client(standin.base_url, ImaggaCredentials("acc_wrong_key_123", "wrong-secret-456"))  # type: ignore[attr-defined]
    with pytest.raises(AuthError, match="HTTP 401") as info:
        ask(client, endpoint)
    assert_clean_exc(info.value)
    assert "wrong-secret-456" not in str(info.value) and "acc_wrong_key_123" not in str(info.value)
    assert standin.count() == 1  # an auth error is not retried


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_rate_limit_is_retried_then_answers(client, standin, endpoint) -> None:
    standin.fail("rate_limit", times=2, retry_after=0)
    answer = ask(client, endpoint)
    check(endpoint, answer.raw)
    assert standin.count() == 3


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_rate_limit_that_persists_is_reported(client, standin, endpoint) -> None:
    standin.fail("rate_limit", retry_after=0)
    with pytest.raises(RateLimitError, match="HTTP 429") as info:
        ask(client, endpoint)
    assert standin.count() == 3  # the first try and two retries
    assert_clean_exc(info.value)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_server_error_is_retried_then_reported(client, standin, endpoint) -> None:
    standin.fail("server_error", status=503)
    with pytest.raises(ServerError, match="HTTP 503"):
        ask(client, endpoint)
    assert standin.count() == 3


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_read_timeout(standin, endpoint) -> None:
    gate = threading.Event()
    standin.fail("slow", delay=30, gate=gate)
    client = make_client(standin.base_url, read_timeout=0.1)  # type: ignore[attr-defined]
    try:
        with pytest.raises(BackendTimeoutError, match="did not answer within 0.1 s") as info:
            ask(client, endpoint, data=None, image_url="https://example.com/a.jpg")
    finally:
        gate.set()
    assert standin.count() == 1
    assert_clean_exc(info.value)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_api_error_and_missing_result(client, standin, endpoint) -> None:
    standin.fail("api_error", times=1, text="Unsupported image type")
    with pytest.raises(ApiError, match="Unsupported image type"):
        ask(client, endpoint)
    standin.fail("no_result", times=1)
    with pytest.raises(MalformedResponseError):
        ask(client, endpoint)


@pytest.mark.parametrize(("endpoint", "result"), [
    (FACES, {"faces": [{"confidence": 99, "coordinates": {"xmin": 1}}]}),
    (COLORS, {"colors": []}),
    (TEXT, {"text": "hello"}),
    (CROPPINGS, {"croppings": [{"x1": 0}]}),
])
def test_answer_of_another_shape_is_malformed(httpserver: HTTPServer, endpoint, result) -> None:
    import json

    httpserver.expect_request("/v2" + PATHS[endpoint]).respond_with_response(Response(
        json.dumps({"result": result, "status": {"type": "success", "text": ""}}), content_type="application/json"))
    client = make_client(httpserver.url_for("/v2"))
    with pytest.raises(MalformedResponseError, match=f"{endpoint} answer came back in an unexpected shape") as info:
        ask(client, endpoint)
    assert_clean_exc(info.value)


def test_undecodable_bytes_get_default_size_answers(client) -> None:
    body = ask(client, CROPPINGS, data=b"not an image").raw
    assert body["result"]["croppings"][0]["y2"] == DEFAULT_SIZE[1] - 1
