"""URL checks and image fetching; no real DNS, only a loopback pytest-httpserver."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tagging.errors import FetchError, URLRejectedError
from tagging.urlfetch import (
    CONNECT_TIMEOUT,
    MAX_REDIRECTS,
    READ_TIMEOUT,
    check_url,
    fetch_image,
    filename_from_url,
    is_public_address,
    make_session,
)

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4

Resolver = Callable[..., list[tuple[object, ...]]]


def fake_resolver(mapping: dict[str, list[str]], calls: list[str] | None = None) -> Resolver:
    """A getaddrinfo stand-in answering from ``mapping``; unknown names do not resolve."""

    def resolve(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        if calls is not None:
            calls.append(host)
        if host not in mapping:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in mapping[host]
        ]

    return resolve


def no_dns(*args: object, **kwargs: object) -> list[tuple[object, ...]]:
    raise AssertionError("IP literals must not be resolved")


PUBLIC = fake_resolver({"images.example.com": [PUBLIC_V4], "v6.example.com": [PUBLIC_V6]})


# --- check_url: rejections -----------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://images.example.com/cat.jpg", "“ftp:”; only http:// and https://"),
        ("file:///etc/passwd", "“file:”"),
        ("javascript:alert(1)", "“javascript:”"),
        ("data:image/png;base64,iVBORw0KGgo=", "“data:”"),
        ("images.example.com/cat.jpg", "no http:// or https://"),
        ("http:///cat.jpg", "no server name"),
        ("https://", "no server name"),
        ("", "empty"),
        ("   ", "empty"),
        ("http://images.example.com:99999/", "invalid port"),
        ("http://images.example.com/a\r\nHost: evil", "control characters"),
    ],
)
def test_check_url_rejects_malformed_or_non_http(url: str, message: str) -> None:
    with pytest.raises(URLRejectedError, match=message):
        check_url(url, resolver=PUBLIC)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.0.0.1:8080/cat.jpg",
        "http://10.0.0.7/cat.jpg",
        "http://192.168.1.20/cat.jpg",
        "http://172.16.0.1/cat.jpg",
        "http://172.31.255.254/cat.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://0.0.0.0/",
        "http://224.0.0.1/",  # multicast
        "http://240.0.0.1/",  # reserved
        "http://255.255.255.255/",
        "http://[::1]/",
        "http://[::]/",
        "http://[fe80::1]/",
        "http://[fe80::1%25eth0]/",
        "http://[fc00::1]/",  # unique local
        "http://[ff02::1]/",  # multicast
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped loopback
        "http://[::ffff:10.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    ],
)
def test_check_url_rejects_non_public_ip_literals(url: str) -> None:
    with pytest.raises(URLRejectedError, match="private, local or reserved network address"):
        check_url(url, resolver=no_dns)


@pytest.mark.parametrize("url", ["http://127.1/", "http://2130706433/", "http://0x7f.0.0.1/"])
def test_check_url_rejects_legacy_numeric_hosts(url: str) -> None:
    with pytest.raises(URLRejectedError, match="unusual numeric server address"):
        check_url(url, resolver=no_dns)


def test_check_url_rejects_localhost_through_the_resolver() -> None:
    calls: list[str] = []
    resolver = fake_resolver({"localhost": ["127.0.0.1", "::1"]}, calls)
    with pytest.raises(URLRejectedError, match=r"localhost \((127\.0\.0\.1|::1)\)"):
        check_url("http://localhost:8501/cat.jpg", resolver=resolver)
    assert calls == ["localhost"]


def test_check_url_rejects_a_name_with_any_private_address() -> None:
    resolver = fake_resolver({"mixed.example.com": [PUBLIC_V4, "10.1.2.3"]})
    with pytest.raises(URLRejectedError, match="10.1.2.3"):
        check_url("https://mixed.example.com/cat.jpg", resolver=resolver)


@pytest.mark.parametrize(
    "url",
    [
        "http://analyst:s3cr3t@images.example.com/cat.jpg",
        "http://analyst@images.example.com/cat.jpg",
        "http://:s3cr3t@images.example.com/cat.jpg",
        "http://images.example.com\\@127.0.0.1/",
    ],
)
def test_check_url_rejects_credentials_without_echoing_them(url: str) -> None:
    with pytest.raises(URLRejectedError, match="user name or password") as excinfo:
        check_url(url, resolver=PUBLIC)
    assert "s3cr3t" not in str(excinfo.value)
    assert "analyst" not in str(excinfo.value)


def test_check_url_unknown_name_is_a_clear_fetch_error() -> None:
    with pytest.raises(FetchError, match="Could not find the server “nope.invalid”"):
        check_url("https://nope.invalid/cat.jpg", resolver=PUBLIC)


def test_allow_private_skips_only_the_address_check() -> None:
    assert check_url("http://127.0.0.1:5000/x", resolver=no_dns, allow_private=True) == "http://127.0.0.1:5000/x"
    with pytest.raises(URLRejectedError):
        check_url("ftp://127.0.0.1/x", resolver=no_dns, allow_private=True)
    with pytest.raises(URLRejectedError):
        check_url("http://u:p@127.0.0.1/x", resolver=no_dns, allow_private=True)


# --- check_url: acceptance and normalisation -------------------------------------------
def test_check_url_accepts_a_public_name_and_normalises() -> None:
    calls: list[str] = []
    resolver = fake_resolver({"images.example.com": [PUBLIC_V4, PUBLIC_V6]}, calls)

    url = check_url("  HTTPS://Images.Example.COM:443/cats/1.jpg?size=large#top ", resolver=resolver)

    assert url == "https://images.example.com/cats/1.jpg?size=large"
    assert calls == ["images.example.com"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://images.example.com", "http://images.example.com/"),
        ("http://images.example.com:8080/a.png", "http://images.example.com:8080/a.png"),
        ("https://v6.example.com/a.png", "https://v6.example.com/a.png"),
        (f"http://{PUBLIC_V4}/a.png", f"http://{PUBLIC_V4}/a.png"),
        (f"http://[{PUBLIC_V6}]:81/a.png", f"http://[{PUBLIC_V6}]:81/a.png"),
    ],
)
def test_check_url_accepts_public_addresses(url: str, expected: str) -> None:
    assert check_url(url, resolver=PUBLIC) == expected


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        (PUBLIC_V6, True),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::808:808", True),  # DNS64 form of 8.8.8.8
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("100.63.255.255", True),
        ("100.64.0.0", False),
        ("100.127.255.255", False),
        ("192.0.2.1", False),  # documentation range
        ("198.18.0.1", False),  # benchmarking
        ("2001:db8::1", False),
        ("fec0::1", False),  # deprecated site-local
        ("not an ip", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public


# --- fetch_image against a loopback server ---------------------------------------------
def test_fetch_returns_the_body(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/cat.png").respond_with_data(IMAGE, content_type="image/png")

    data = fetch_image(httpserver.url_for("/cat.png"), allow_private=True)

    assert data == IMAGE
    request = httpserver.log[0][0]
    assert request.headers["User-Agent"].startswith("image-tagging-dashboard")


def test_fetch_rejects_the_loopback_server_by_default(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/cat.png").respond_with_data(IMAGE)

    with pytest.raises(URLRejectedError, match="private, local or reserved"):
        fetch_image(httpserver.url_for("/cat.png"))

    assert httpserver.log == []


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, r"HTTP 404 NOT FOUND: the image does not exist there"),
        (403, r"HTTP 403 FORBIDDEN: access is forbidden"),
        (500, r"HTTP 500 INTERNAL SERVER ERROR: the site has a problem; try again later"),
        (418, r"HTTP 418 .*the request was refused"),
    ],
)
def test_fetch_http_errors(httpserver: HTTPServer, status: int, message: str) -> None:
    httpserver.expect_request("/cat.png").respond_with_data(b"nope", status=status)

    with pytest.raises(FetchError, match=message):
        fetch_image(httpserver.url_for("/cat.png"), allow_private=True)


def test_fetch_rejects_an_html_page(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/gallery").respond_with_data(
        "<html><img src=cat.png></html>", content_type="text/html; charset=utf-8"
    )
    with pytest.raises(FetchError, match="web page, not to an image"):
        fetch_image(httpserver.url_for("/gallery"), allow_private=True)


def test_fetch_rejects_a_declared_oversized_body(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big.png").respond_with_data(b"x" * 3000, content_type="image/png")

    with pytest.raises(FetchError, match=r"is 2.9 KB; the limit is 1000 bytes"):
        fetch_image(httpserver.url_for("/big.png"), allow_private=True, max_bytes=1000)


def test_fetch_stops_an_undeclared_oversized_body(httpserver: HTTPServer) -> None:
    sent: list[int] = []

    def stream() -> Iterator[bytes]:
        for _ in range(100):
            sent.append(1)
            yield b"x" * 1000

    def handler(request: Request) -> Response:
        return Response(stream(), content_type="image/png")  # no Content-Length

    httpserver.expect_request("/big.png").respond_with_handler(handler)

    with pytest.raises(FetchError, match=r"larger than 4.9 KB, the limit"):
        fetch_image(httpserver.url_for("/big.png"), allow_private=True, max_bytes=5000)
    assert "Content-Length" not in httpserver.log[0][1].headers


def test_fetch_accepts_a_body_exactly_at_the_limit(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/cat.png").respond_with_data(IMAGE, content_type="image/png")
    assert fetch_image(httpserver.url_for("/cat.png"), allow_private=True, max_bytes=len(IMAGE)) == IMAGE


def test_fetch_read_timeout(httpserver: HTTPServer) -> None:
    gate, answered = threading.Event(), threading.Event()

    def slow(request: Request) -> Response:
        gate.wait(30)  # the test, not the clock, decides when the answer comes
        answered.set()
        return Response(IMAGE, content_type="image/png")

    httpserver.expect_request("/slow.png").respond_with_handler(slow)
    try:
        with pytest.raises(FetchError, match=r"did not answer within 0.1 s"):
            fetch_image(httpserver.url_for("/slow.png"), allow_private=True, timeout=(2.0, 0.1))
        assert not answered.is_set()  # gave up before the server answered
    finally:
        gate.set()


def test_fetch_total_timeout_stops_a_trickling_server(httpserver: HTTPServer) -> None:
    # One byte every 0.05 s, without end (bounded only so the server thread stops): it never trips
    # the read timeout nor the size limit, so only the total deadline can end the fetch.
    done = threading.Event()

    def trickle() -> Iterator[bytes]:
        for _ in range(600):
            if done.is_set():
                return
            time.sleep(0.05)
            yield b"x"

    httpserver.expect_request("/drip.png").respond_with_handler(
        lambda request: Response(trickle(), content_type="image/png")
    )
    try:
        with pytest.raises(FetchError, match=r"took longer than 0.3 s"):
            fetch_image(httpserver.url_for("/drip.png"), allow_private=True, total_timeout=0.3)
    finally:
        done.set()


@pytest.mark.parametrize(("extra", "accepted"), [(0, True), (1, False)])
def test_an_undeclared_body_one_byte_over_the_limit_is_refused(httpserver: HTTPServer, extra: int,
                                                                accepted: bool) -> None:
    limit = 3 * 1000 + 17

    def stream() -> Iterator[bytes]:
        body = IMAGE[:1000] * 3 + IMAGE[:17 + extra]
        for start in range(0, len(body), 1000):
            yield body[start:start + 1000]

    httpserver.expect_request("/edge.png").respond_with_handler(
        lambda request: Response(stream(), content_type="image/png")  # no Content-Length
    )
    if accepted:
        assert len(fetch_image(httpserver.url_for("/edge.png"), allow_private=True, max_bytes=limit)) == limit
    else:
        with pytest.raises(FetchError, match="larger than"):
            fetch_image(httpserver.url_for("/edge.png"), allow_private=True, max_bytes=limit)
    assert "Content-Length" not in httpserver.log[0][1].headers


@pytest.fixture
def raw_server() -> Iterator[Callable[[bytes, float], str]]:
    """A one-shot TCP server that sends ``reply``, waits ``linger`` seconds and hangs up."""
    threads: list[threading.Thread] = []
    listeners: list[socket.socket] = []

    def start(reply: bytes, linger: float) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(reply)
                time.sleep(linger)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        return f"http://127.0.0.1:{listener.getsockname()[1]}/cat.png"

    yield start
    for thread in threads:
        thread.join(timeout=5)
    for listener in listeners:
        listener.close()


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n"


def test_fetch_body_shorter_than_declared(raw_server: Callable[[bytes, float], str]) -> None:
    url = raw_server(HEAD + b"x" * 10, 0)
    with pytest.raises(FetchError, match="broke off"):
        fetch_image(url, allow_private=True)


def test_fetch_server_stalls_mid_body(raw_server: Callable[[bytes, float], str]) -> None:
    url = raw_server(HEAD + b"x" * 10, 1.0)
    with pytest.raises(FetchError, match=r"stopped sending the image \(nothing received for 0.2 s\)"):
        fetch_image(url, allow_private=True, timeout=(2.0, 0.2))


def test_fetch_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more.
    with pytest.raises(FetchError, match="Could not connect to 127.0.0.1"):
        fetch_image(f"http://127.0.0.1:{port}/cat.png", allow_private=True)


def test_fetch_unknown_name() -> None:
    with pytest.raises(FetchError, match="Could not find the server"):
        fetch_image("https://nope.invalid/cat.png", resolver=PUBLIC)


# --- redirects -------------------------------------------------------------------------
def redirect(httpserver: HTTPServer, path: str, location: str, status: int = 302) -> None:
    httpserver.expect_request(path).respond_with_data(b"", status=status, headers={"Location": location})


def test_fetch_follows_up_to_max_redirects(httpserver: HTTPServer) -> None:
    assert MAX_REDIRECTS == 3
    redirect(httpserver, "/a", "/b", 301)  # relative
    redirect(httpserver, "/b", httpserver.url_for("/c"), 307)  # absolute
    redirect(httpserver, "/c", "/final.png", 303)
    httpserver.expect_request("/final.png").respond_with_data(IMAGE, content_type="image/png")

    assert fetch_image(httpserver.url_for("/a"), allow_private=True) == IMAGE
    assert [request.path for request, _ in httpserver.log] == ["/a", "/b", "/c", "/final.png"]


def test_fetch_refuses_a_fourth_redirect(httpserver: HTTPServer) -> None:
    for hop in range(5):
        redirect(httpserver, f"/{hop}", f"/{hop + 1}")

    with pytest.raises(FetchError, match="redirected more than 3 times"):
        fetch_image(httpserver.url_for("/0"), allow_private=True)
    assert len(httpserver.log) == 4


def test_redirect_loop_is_bounded(httpserver: HTTPServer) -> None:
    redirect(httpserver, "/loop", "/loop")
    with pytest.raises(FetchError, match="redirected more than"):
        fetch_image(httpserver.url_for("/loop"), allow_private=True)


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("http://127.0.0.1:{port}/secret", "redirects to an address that points to 127.0.0.1"),
        ("http://intranet.corp/secret", r"intranet.corp \(10.20.30.40\)"),
        ("http://[::ffff:169.254.169.254]/latest/meta-data/", "private, local or reserved"),
        ("file:///etc/passwd", "redirects to an address that uses “file:”"),
    ],
)
def test_redirect_to_a_disallowed_address_is_rejected(httpserver: HTTPServer, location: str, message: str) -> None:
    # The fake resolver says the server's own name is public, so the first hop is
    # allowed with allow_private=False; the plain session skips the connect-time guard.
    resolver = fake_resolver({"localhost": [PUBLIC_V4], "intranet.corp": ["10.20.30.40"]})
    redirect(httpserver, "/cat.png", location.format(port=httpserver.port))
    httpserver.expect_request("/secret").respond_with_data(b"internal")

    with requests.Session() as session, pytest.raises(URLRejectedError, match=message):
        fetch_image(httpserver.url_for("/cat.png"), session=session, resolver=resolver)

    assert [request.path for request, _ in httpserver.log] == ["/cat.png"]


def test_connect_time_guard_stops_dns_rebinding(httpserver: HTTPServer) -> None:
    # The name checks out as public, but the connection really lands on loopback (as
    # when DNS answers differently the second time): nothing may be sent.
    httpserver.expect_request("/cat.png").respond_with_data(IMAGE)
    resolver = fake_resolver({"localhost": [PUBLIC_V4]})

    with pytest.raises(URLRejectedError, match=r"The server name localhost led to (127\.0\.0\.1|::1)"):
        fetch_image(httpserver.url_for("/cat.png"), resolver=resolver)

    assert httpserver.log == []


def test_make_session_allow_private_has_no_guard(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/cat.png").respond_with_data(IMAGE, content_type="image/png")
    url = httpserver.url_for("/cat.png")

    with make_session(allow_private=True) as session:
        assert session.get(url, timeout=5).content == IMAGE
    with make_session() as session, pytest.raises(URLRejectedError):
        session.get(url, timeout=5)


# --- misc ----------------------------------------------------------------------------
def test_timeouts_are_sane() -> None:
    assert 0 < CONNECT_TIMEOUT <= READ_TIMEOUT <= 60


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://images.example.com/cats/tabby%20cat.jpg?x=1", "tabby cat.jpg"),
        ("https://images.example.com/", "images.example.com"),
        ("https://images.example.com/cats/", "cats"),
    ],
)
def test_filename_from_url(url: str, name: str) -> None:
    assert filename_from_url(url) == name


def test_check_url_without_resolving_checks_form_only():
    def no_dns(*_args, **_kwargs):
        raise AssertionError("resolve=False must not look the name up")

    assert check_url("https://Example.COM/a.jpg#x", resolve=False, resolver=no_dns) == "https://example.com/a.jpg"
    with pytest.raises(URLRejectedError):
        check_url("ftp://example.com/a.jpg", resolve=False, resolver=no_dns)
    with pytest.raises(URLRejectedError):
        check_url("https://user:pw@example.com/a.jpg", resolve=False, resolver=no_dns)


# --- malformed URLs are refusals, never a ValueError (issue 10, defect 2) -------------------
MALFORMED = ["http://[::1/cat.jpg", "http://[abc]/x.jpg", "http://a]b/x.jpg", "https://exa mple.com/x.jpg"]


@pytest.mark.parametrize("url", MALFORMED)
@pytest.mark.parametrize("resolve", [True, False])
def test_malformed_urls_are_a_clear_refusal(url: str, resolve: bool) -> None:
    with pytest.raises(URLRejectedError, match="not a valid web address|invalid server name"):
        check_url(url, resolver=no_dns, resolve=resolve)


@pytest.mark.parametrize("url", MALFORMED)
def test_filename_from_a_malformed_url_is_still_a_name(url: str) -> None:
    assert filename_from_url(url) in ("cat.jpg", "x.jpg")


def test_redirect_to_a_malformed_address_is_a_refusal(raw_server: Callable[[bytes, float], str]) -> None:
    # werkzeug cannot even send this Location, so a raw socket does
    url = raw_server(b"HTTP/1.1 302 Found\r\nLocation: http://[::1/x.jpg\r\nContent-Length: 0\r\n\r\n", 0)
    with pytest.raises(URLRejectedError, match="redirects to an address that is not a valid web address"):
        fetch_image(url, allow_private=True)


def test_a_declared_size_one_byte_over_says_so_in_bytes(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/cat.png").respond_with_data(IMAGE, content_type="image/png")
    with pytest.raises(FetchError, match=f"is {len(IMAGE):,} bytes; the limit is {len(IMAGE) - 1:,} bytes"):
        fetch_image(httpserver.url_for("/cat.png"), allow_private=True, max_bytes=len(IMAGE) - 1)
