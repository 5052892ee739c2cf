"""Fetch an image from a URL the analyst pasted, without becoming an SSRF proxy.

Defences, in order:

* :func:`check_url` allows only http(s) URLs without credentials whose host resolves
  exclusively to public (globally routable) addresses. It runs on the pasted URL and on
  every redirect target; redirects are followed by hand (at most ``MAX_REDIRECTS``).
* DNS rebinding: a name can resolve to a public address for the check and to a private
  one a moment later when the HTTP client connects. Sessions from :func:`make_session`
  (the default) therefore check the address each TCP connection actually reached,
  before a single byte of the request is sent, and drop it if it is not public.
  Not covered: a caller-supplied ``session`` (used as is, so only the name checks
  apply), and connections made through an HTTP(S) proxy from the environment, where
  the peer is the proxy and the proxy's own policy applies.
* The body is streamed and abandoned once it exceeds ``max_bytes`` or the whole fetch
  takes longer than ``total_timeout``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError, ReadTimeoutError

from tagging.errors import FetchError, URLRejectedError
from tagging.images import DEFAULT_MAX_BYTES, format_size, format_sizes

# A reachable server completes the TCP (and TLS) handshake in well under a second;
# 5 s tolerates slow networks while failing fast on hosts that silently drop packets,
# so the analyst is not left staring at a spinner.
CONNECT_TIMEOUT = 5.0
# Longest silence allowed between two bytes of the response. Image CDNs that resize
# on the fly can take several seconds before the first byte.
READ_TIMEOUT = 15.0
# Cap on the whole fetch (redirects and body): READ_TIMEOUT alone lets a server that
# trickles one byte every few seconds hold the page forever. 60 s downloads 25 MB at
# about 3.5 Mbit/s.
TOTAL_TIMEOUT = 60.0
MAX_REDIRECTS = 3

_CHUNK_SIZE = 64 * 1024
_ALLOWED_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HEADERS = {
    "User-Agent": "image-tagging-dashboard/1.0 (+python-requests)",
    "Accept": "image/webp,image/png,image/jpeg,image/gif,image/*;q=0.8,*/*;q=0.5",
    # Images are already compressed; refusing gzip also keeps a compressed trickle
    # from looping inside urllib3's decoder, out of reach of the total deadline.
    "Accept-Encoding": "identity",
}
_HOST_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

Resolver = Callable[..., Sequence[tuple[Any, ...]]]


def is_public_address(address: str) -> bool:
    """Return True if ``address`` (an IP literal) is globally routable unicast.

    Loopback, private, link-local, multicast, reserved, unspecified, CGNAT
    (100.64.0.0/10) and IPv6 forms that embed such an IPv4 address are not public.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        translated = ip.ipv4_mapped
        if translated is None and ip in _NAT64:
            translated = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if translated is not None:
            # ::ffff:a.b.c.d and DNS64's 64:ff9b::a.b.c.d reach a.b.c.d, so only the
            # IPv4 part counts (ipaddress calls both prefixes non-global as a whole).
            return is_public_address(str(translated))
        if ip.sixtofour is not None and not is_public_address(str(ip.sixtofour)):
            return False
        if ip.is_site_local:
            return False
    elif ip in _CGNAT:
        return False
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def check_url(
    url: str,
    *,
    resolver: Resolver = socket.getaddrinfo,
    allow_private: bool = False,
    resolve: bool = True,
) -> str:
    """Validate a pasted image URL and return it normalised.

    Raises URLRejectedError if the scheme is not http(s), there is no host, the URL
    carries credentials, or the host is (or resolves to) a non-public address.
    Raises FetchError if the host name does not resolve. ``allow_private`` skips the
    address check and exists only for tests against a loopback server. ``resolve=False``
    checks the form only (scheme, host, no credentials), for a URL that a remote service
    such as Imagga fetches itself, so our network's addresses are not at stake.
    """
    return _check_url(url, resolver=resolver, allow_private=allow_private, subject="The link", resolve=resolve)


def _check_url(url: str, *, resolver: Resolver, allow_private: bool, subject: str, resolve: bool = True) -> str:
    text = url.strip() if isinstance(url, str) else ""
    if not text:
        raise URLRejectedError(f"{subject} is empty. Paste the full address of an image, starting with https://.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise URLRejectedError(
            f"{subject} contains control characters (such as a line break). "
            "Copy the address again from the browser's address bar."
        )
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:  # "http://[::1/x", "http://[abc]/x": brackets that hold no IP address
        raise URLRejectedError(
            f"{subject} is not a valid web address (its server name is malformed, for example an unclosed "
            "“[”). Copy the address again from the browser's address bar."
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in _ALLOWED_SCHEMES:
        if not scheme or (not parts.netloc and "." in scheme):
            raise URLRejectedError(
                f"{subject} has no http:// or https:// at the start. Paste the full "
                "address, for example https://example.com/photo.jpg."
            )
        raise URLRejectedError(f"{subject} uses “{scheme}:”; only http:// and https:// addresses can be fetched.")
    if "@" in parts.netloc:
        # Never echo the URL here: the part before "@" is a password.
        raise URLRejectedError(
            f"{subject} contains a user name or password (the part before “@”). Remove it; "
            "only publicly accessible images can be fetched."
        )
    if not host:
        raise URLRejectedError(
            f"{subject} has no server name. Paste the full address, for example https://example.com/photo.jpg."
        )
    try:
        port = parts.port
    except ValueError:
        raise URLRejectedError(f"{subject} has an invalid port number.") from None
    literal = _ip_literal(host)
    if literal is None:
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            ascii_host = ""
        if not _HOST_NAME.fullmatch(ascii_host):
            raise URLRejectedError(
                f"{subject} is not a valid web address: “{host}” is not a server name. "
                "Copy the address again from the browser's address bar."
            ) from None
    if literal is None and _looks_numeric(host):
        # "127.1", "2130706433", "0x7f.0.0.1": legacy spellings of IP addresses
        # that resolvers accept but people never type on purpose.
        raise URLRejectedError(
            f"{subject} uses an unusual numeric server address “{host}”. Use the image's normal web address."
        )
    if not resolve:
        addresses = []
    elif literal is not None:
        addresses = [literal]
    else:
        addresses = _resolve(host, port or _DEFAULT_PORTS[scheme], resolver)
    if not allow_private:
        for address in addresses:
            if not is_public_address(address):
                shown = host if address == host else f"{host} ({address})"
                raise URLRejectedError(
                    f"{subject} points to {shown}, which is a private, local or reserved "
                    "network address. Only images on the public internet can be fetched."
                )

    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    # The fragment is never sent to the server, so it is dropped.
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return None


def _looks_numeric(host: str) -> bool:
    # As in the WHATWG URL standard: a host whose last label is a number is an IPv4
    # address, not a name (no top-level domain is numeric).
    last = host.rsplit(".", 1)[-1].lower()
    return last.isdigit() or (last.startswith("0x") and all(c in "0123456789abcdef" for c in last[2:]))


def _resolve(host: str, port: int, resolver: Resolver) -> list[str]:
    try:
        infos = resolver(host, port)
    except (OSError, UnicodeError):
        infos = []
    addresses = sorted({str(info[4][0]) for info in infos})
    if not addresses:
        raise FetchError(
            f"Could not find the server “{host}”. Check the link for typos; if it is "
            "right, the site may be down or this computer may be offline."
        )
    return addresses


# --- connection-time guard against DNS rebinding -----------------------------------
def _check_peer(sock: socket.socket, host: str) -> None:
    peer = sock.getpeername()[0]
    if not is_public_address(peer):
        sock.close()
        raise URLRejectedError(
            f"The server name {host} led to {peer}, which is a private, local or "
            "reserved network address. Only images on the public internet can be fetched."
        )


class _PublicHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(sock, self.host)
        return sock


class _PublicHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(sock, self.host)
        return sock


class _PublicHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class _PublicOnlyAdapter(HTTPAdapter):
    """Transport adapter whose direct connections must reach a public address."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PublicHTTPConnectionPool,
            "https": _PublicHTTPSConnectionPool,
        }


def make_session(*, allow_private: bool = False) -> requests.Session:
    """Return a requests session for :func:`fetch_image`.

    Unless ``allow_private``, every direct connection is checked after connecting and
    before sending: if it reached a non-public address, URLRejectedError is raised.
    """
    session = requests.Session()
    if not allow_private:
        adapter = _PublicOnlyAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    return session


# --- fetching ----------------------------------------------------------------------
def fetch_image(
    url: str,
    *,
    session: requests.Session | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float | tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
    total_timeout: float = TOTAL_TIMEOUT,
    allow_private: bool = False,
    resolver: Resolver = socket.getaddrinfo,
) -> bytes:
    """Download the image at ``url`` and return its bytes (not yet validated as an image).

    Raises URLRejectedError when the URL or any redirect target is not allowed (see
    :func:`check_url`), FetchError on DNS failure, timeout, connection failure,
    HTTP status >= 400, more than ``MAX_REDIRECTS`` redirects, an HTML page instead
    of an image, or a body larger than ``max_bytes``. Pass the bytes to
    :func:`tagging.images.load_image`. ``allow_private`` is for tests only.
    """
    deadline = time.monotonic() + total_timeout
    current = check_url(url, resolver=resolver, allow_private=allow_private)
    own_session = session is None
    http = make_session(allow_private=allow_private) if session is None else session
    try:
        for hop in range(MAX_REDIRECTS + 1):
            host = urlsplit(current).hostname or current
            response = _get(http, current, host, timeout)
            try:
                target = http.get_redirect_target(response)
                if target is None:
                    _raise_for_status(response, host)
                    return _read_body(response, host, max_bytes, timeout, deadline, total_timeout)
                if hop == MAX_REDIRECTS:
                    raise FetchError(
                        f"The link redirected more than {MAX_REDIRECTS} times, so it was "
                        "not followed further. Open it in a browser and copy the address "
                        "of the image itself."
                    )
                current = _check_url(
                    _join(current, target),
                    resolver=resolver,
                    allow_private=allow_private,
                    subject="The link redirects to an address that",
                )
                if time.monotonic() > deadline:
                    raise _too_slow(host, total_timeout)
            finally:
                response.close()
    finally:
        if own_session:
            http.close()
    raise AssertionError("unreachable")  # pragma: no cover - the loop always returns


def _join(base: str, target: str) -> str:
    """The absolute redirect target; a malformed one is returned as is for ``_check_url`` to refuse."""
    try:
        return urljoin(base, target)
    except ValueError:
        return target


def _get(http: requests.Session, url: str, host: str, timeout: float | tuple[float, float]) -> requests.Response:
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    try:
        return http.get(url, headers=_HEADERS, stream=True, allow_redirects=False, timeout=timeout)
    except requests.exceptions.ConnectTimeout:
        raise FetchError(
            f"Could not connect to {host} within {_seconds(connect)}. The site may be "
            "down or unreachable from here; try again later."
        ) from None
    except requests.exceptions.ReadTimeout:
        raise FetchError(
            f"{host} did not answer within {_seconds(read)}. The site may be overloaded; try again later."
        ) from None
    except requests.exceptions.SSLError:
        raise FetchError(
            f"Could not open a secure (HTTPS) connection to {host}: its certificate was "
            "not accepted. Check the address, or download the image and upload it instead."
        ) from None
    except requests.exceptions.ConnectionError:
        raise FetchError(
            f"Could not connect to {host}. Check the link; the site may be down or refusing connections."
        ) from None
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
        raise _broke_off(host) from None
    except requests.exceptions.RequestException as exc:
        raise FetchError(f"Could not fetch the image from {host} ({type(exc).__name__}).") from None
    except ValueError:
        # requests parses a redirect's Location even when it does not follow it; a malformed
        # one ("http://[::1/x") raises here, before get_redirect_target could see it.
        raise URLRejectedError(
            "The link redirects to an address that is not a valid web address, so it was not followed."
        ) from None


_STATUS_ADVICE = {
    401: "the image needs a login, so it cannot be fetched from here",
    403: "access is forbidden; the image may be private or the site may block downloads",
    404: "the image does not exist there; check the link",
    410: "the image has been removed",
    429: "too many requests were made; wait a minute and try again",
}


def _raise_for_status(response: requests.Response, host: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    reason = f"HTTP {status} {response.reason}".rstrip() if response.reason else f"HTTP {status}"
    if status >= 500:
        advice = "the site has a problem; try again later"
    elif status >= 400:
        advice = _STATUS_ADVICE.get(status, "the request was refused")
    else:
        advice = "it did not send an image"
    raise FetchError(f"{host} answered {reason}: {advice}.")


def _read_body(
    response: requests.Response,
    host: str,
    max_bytes: int,
    timeout: float | tuple[float, float],
    deadline: float,
    total_timeout: float,
) -> bytes:
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        size, limit = format_sizes(int(declared), max_bytes)
        raise FetchError(
            f"The image at this link is {size}; the limit is {limit}. Download it, shrink it and upload it instead."
        )
    content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if content_type in ("text/html", "application/xhtml+xml"):
        raise FetchError(
            "The link leads to a web page, not to an image. Open it in a browser, "
            "right-click the image and choose “Copy image address”, then paste that."
        )

    # read1() returns whatever one socket read delivers, so the deadline is checked
    # after every packet; iter_content() would block until a whole chunk arrived.
    raw = response.raw
    body = bytearray()
    try:
        while chunk := raw.read1(_CHUNK_SIZE, decode_content=True):
            body += chunk
            if len(body) > max_bytes:
                raise FetchError(
                    f"The image at this link is larger than {format_size(max_bytes)}, "
                    "the limit. Download it, shrink it and upload it instead."
                )
            if time.monotonic() > deadline:
                raise _too_slow(host, total_timeout)
    except ReadTimeoutError:
        read = timeout[1] if isinstance(timeout, tuple) else timeout
        raise FetchError(
            f"{host} stopped sending the image (nothing received for {_seconds(read)}). Try again later."
        ) from None
    except (HTTPError, OSError):
        # ProtocolError (connection reset, body shorter than Content-Length),
        # DecodeError (bad gzip) and raw socket errors.
        raise _broke_off(host) from None
    return bytes(body)


def _broke_off(host: str) -> FetchError:
    return FetchError(f"The download from {host} broke off or arrived garbled. Try again.")


def _too_slow(host: str, total_timeout: float) -> FetchError:
    return FetchError(
        f"Downloading from {host} took longer than {_seconds(total_timeout)}. The site is "
        "very slow; download the image yourself and upload it instead."
    )


def _seconds(value: float) -> str:
    return f"{value:g} s"


def filename_from_url(url: str) -> str:
    """Return a display name for a fetched image: the URL's last path segment or host (never raises)."""
    try:
        parts = urlsplit(url)
        path, host = parts.path, parts.hostname
    except ValueError:  # a malformed host: the name is still the last segment of the path
        rest = url.split("://", 1)[-1]
        path, host = ("/" + rest.split("/", 1)[1]) if "/" in rest else "", None
    name = unquote(path.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1])
    return name or host or "image"
