"""Analysis through the backends: Imagga's answers mapped onto the oriented full-size image, offline answers,
and the shared result cache (an image is analysed, and billed, once across servers)."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from pytest_httpserver import HTTPServer

from tagging.analysis import COLORS, CROPPINGS, ENDPOINTS, FACES, TEXT, check
from tagging.backends import EmbeddedBackend, ImaggaBackend, TagRequest, analysis_request_key
from tagging.images import load_image
from tagging.store import ResultCache
from tests.imagga_standin import ImaggaStandin
from tests.test_imagga_client import make_client


def exif_rotated_jpeg(size: tuple[int, int]) -> bytes:
    """A photo ``size`` wide and high once displayed, stored sideways with EXIF orientation 6."""
    stored = Image.new("RGB", size, (120, 140, 160)).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    stored.save(out, format="JPEG", exif=exif)
    return out.getvalue()


@pytest.fixture
def standin(httpserver: HTTPServer) -> ImaggaStandin:
    stand = ImaggaStandin()
    stand.base_url = stand.install(httpserver)  # type: ignore[attr-defined]
    return stand


@pytest.fixture
def imagga(standin) -> ImaggaBackend:
    return ImaggaBackend(make_client(standin.base_url))


def test_imagga_sees_oriented_downscaled_pixels_and_answers_map_back(imagga, standin) -> None:
    image = load_image(exif_rotated_jpeg((1200, 800)), "sideways.jpg")
    assert image.image.size == (1200, 800)
    body = imagga.analyse(CROPPINGS, image, TagRequest(downscale_to=600), resolutions=[(1, 1)])
    sent = Image.open(io.BytesIO(standin.requests[0].files["image"][1]))
    assert sent.size == (600, 400)  # upright and downscaled, whatever the original file's orientation
    (crop,) = body["result"]["croppings"]
    # The stand-in centres a 400x400 square in 600x400; on the 1200x800 original that is 800x800 at x=200.
    assert (crop["x1"], crop["y1"], crop["x2"], crop["y2"]) == (200, 0, 998, 798)
    faces = imagga.analyse(FACES, image, TagRequest(downscale_to=600))
    for face in faces["result"]["faces"]:
        c = face["coordinates"]
        assert c["width"] == pytest.approx(1200 / 4, abs=2) and c["xmax"] <= 1200 and c["ymax"] <= 800


def test_imagga_url_answers_are_kept_as_sent(imagga, standin) -> None:
    body = imagga.analyse(TEXT, None, TagRequest(), image_url="https://example.com/sign.jpg")
    check(TEXT, body)
    assert standin.requests[0].query["image_url"] == "https://example.com/sign.jpg"


def test_offline_backend_answers_every_endpoint_in_imagga_shape() -> None:
    backend = EmbeddedBackend()
    image = load_image(open("samples/astronaut.jpg", "rb").read(), "astronaut.jpg")
    for endpoint in ENDPOINTS:
        body = backend.analyse(endpoint, image, TagRequest(), resolutions=[(1080, 1080)])
        check(endpoint, body)
    assert backend.analyzer.face_detector is backend.tagger.faces  # one BlazeFace for tags and analysis


def test_request_keys_differ_per_endpoint_and_resolution() -> None:
    request = TagRequest()
    keys = {analysis_request_key(e, request) for e in ENDPOINTS}
    keys.add(analysis_request_key(CROPPINGS, request, [(1, 1)]))
    keys.add(analysis_request_key(COLORS, TagRequest(downscale_to=800)))
    assert len(keys) == len(ENDPOINTS) + 2
    assert request.cache_key() not in keys


def test_two_servers_pay_for_one_analysis(open_db, imagga, standin) -> None:
    image = load_image(exif_rotated_jpeg((300, 200)), "a.jpg")
    request = TagRequest()
    key = analysis_request_key(COLORS, request)
    first, second = ResultCache(open_db()), ResultCache(open_db())  # two app servers on one database
    a, computed_a = first.get_or_compute("imagga:x", image.sha256, key,
                                         lambda: imagga.analyse(COLORS, image, request))
    b, computed_b = second.get_or_compute("imagga:x", image.sha256, key,
                                          lambda: imagga.analyse(COLORS, image, request))
    assert a == b and (computed_a, computed_b) == (True, False)
    assert standin.count(path="/v2/colors") == 1
