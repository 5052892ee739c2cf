"""HTTP client for Imagga's v2 REST API (tags, uploads, categories, usage, feedback).

What is known of the API is in the project's Imagga contract notes; points that are
not published (429 behaviour, the feedback body) are kept in one place each here.

Every exception raised on purpose is a :mod:`tagging.errors` class whose message is
shown to the analyst as it is: it says what happened and what to do, and it never
contains the API key, the secret or the ``Authorization`` header.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter

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
from tagging.imagga._analysis import PATHS, AnalysisResponse, ShapeError, analysis_query, checked
from tagging.imagga._retry import (
    DEFAULT_BACKOFF_FACTOR,
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_RETRIES,
    RETRY_METHODS,
    RETRY_STATUSES,
    BudgetRetry,
    never_connected,
    retry_after_seconds,
)
from tagging.imagga._values import (
    Categorizer,
    Category,
    ImaggaCredentials,
    TagParams,
    TagsResponse,
    Usage,
    as_float,
)

__all__ = ["CONNECT_TIMEOUT", "DEFAULT_BASE_URL", "READ_TIMEOUT", "UPLOAD_READ_TIMEOUT", "ImaggaClient"]

log = logging.getLogger("tagging.imagga")

DEFAULT_BASE_URL = "https://api.imagga.com/v2"

# Opening a TCP/TLS connection takes well under a second anywhere reachable; a few
# seconds without one means the host is unreachable, so fail fast.
CONNECT_TIMEOUT = 3.05
# Imagga's processing endpoints give up server-side after about 5 s (mostly spent
# downloading an image_url). Waiting a little longer lets us see Imagga's own error
# instead of guessing; waiting much longer only keeps the analyst staring at a spinner.
READ_TIMEOUT = 10.0
# Requests that carry the image bytes (POST /tags, POST /uploads) take longer on slow
# links: the socket timeout also applies while the body is being sent.
UPLOAD_READ_TIMEOUT = 30.0

_MAX_TEXT = 300  # longest piece of Imagga's own text quoted in a message


# --- client -------------------------------------------------------------------------
class ImaggaClient:
    """Imagga v2 client: HTTP Basic auth, bounded retries, typed results.

    ``session`` may be injected (tests, connection reuse); the client mounts its
    retrying adapter on the session for the base URL's origin only and passes the
    credentials per request, so the session's other settings are left alone.

    Every method raises one of these (all :class:`tagging.errors.TaggingError`):

    - :class:`AuthError` — HTTP 401/403: wrong key/secret or no access.
    - :class:`RateLimitError` — HTTP 429 after the retries, or at once when
      ``Retry-After`` asks for more than the wait budget; ``retry_after`` holds the
      seconds Imagga asked for (None if it did not say).
    - :class:`ServerError` — HTTP 5xx after the retries.
    - :class:`BackendTimeoutError` — no answer within the read timeout (not retried:
      Imagga itself gives up after ~5 s, so a repeat would likely time out again).
    - :class:`BackendConnectionError` — host unreachable (refused, DNS, connect
      timeout) after the retries, or a connection dropped mid-answer.
    - :class:`ApiError` — any other 4xx, or ``status.type == "error"`` even with
      HTTP 200; the message carries Imagga's own text.
    - :class:`MalformedResponseError` — a 2xx body that is not JSON (e.g. a proxy's
      HTML page) or lacks ``result``.

    Args:
        credentials: the API key and secret, sent as HTTP Basic auth on every request.
        base_url: the API root, ``.../v2`` (tests point it at a loopback stand-in).
        session: an existing ``requests.Session`` to use; a new one by default.
        retries: retries of 429/500/502/503/504 and refused connections (0 = none).
        backoff_factor: exponential backoff between retries without ``Retry-After``:
            0 s before the first retry, then ``backoff_factor * 2**(n-1)`` s.
        max_retry_after: the budget, in seconds, for all the sleeps of one call. A
            ``Retry-After`` (or backoff) that would overrun it ends the retries at once
            and the last answer is raised (RateLimitError for 429), so a long
            ``Retry-After`` never makes the page hang. Worst case per call: this many
            seconds of sleeping plus (retries + 1) request round trips.
        connect_timeout, read_timeout, upload_read_timeout: see the module constants.
    """

    def __init__(
        self,
        credentials: ImaggaCredentials,
        base_url: str = DEFAULT_BASE_URL,
        session: requests.Session | None = None,
        retries: int = DEFAULT_RETRIES,
        backoff_factor: float = DEFAULT_BACKOFF_FACTOR,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        upload_read_timeout: float = UPLOAD_READ_TIMEOUT,
    ) -> None:
        self._credentials = credentials
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http(s) URL such as " + DEFAULT_BASE_URL)
        self._host = parts.hostname + (f":{parts.port}" if parts.port else "")
        self._timeout = (connect_timeout, read_timeout)
        self._upload_timeout = (connect_timeout, upload_read_timeout)
        self._retry = BudgetRetry(
            total=retries,
            connect=retries,
            read=False,  # re-raise read timeouts at once (see BackendTimeoutError above)
            status=retries,
            other=0,
            allowed_methods=RETRY_METHODS,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_factor,
            backoff_max=max_retry_after,
            respect_retry_after_header=True,
            raise_on_status=False,  # hand back the last 429/5xx so _check maps it
            max_wait=max_retry_after,
        )
        self._session = session if session is not None else requests.Session()
        # the trailing slash keeps http://host:80 from also matching http://host:8080
        self._session.mount(f"{parts.scheme}://{parts.netloc}/", HTTPAdapter(max_retries=self._retry))

    def __repr__(self) -> str:
        return f"ImaggaClient(base_url={self.base_url!r})"

    # --- tagging ----------------------------------------------------------------------
    def tag_image(
        self, data: bytes, filename: str = "image.jpg", *, params: TagParams | None = None
    ) -> TagsResponse:
        """Upload the bytes and tag them in one request (``POST /v2/tags``, field ``image``).

        Raises: see the class docstring.
        """
        params = params or TagParams()
        body = self._request(
            "POST", params.path, params=params.to_query(),
            files={"image": (filename, data)}, timeout=self._upload_timeout,
        )
        return self._tags_response(body)

    def tag_url(self, image_url: str, *, params: TagParams | None = None) -> TagsResponse:
        """Tag an image Imagga downloads itself (``GET /v2/tags?image_url=``).

        Raises: see the class docstring; Imagga failing to download the URL is an ApiError.
        """
        params = params or TagParams()
        body = self._request("GET", params.path, params={"image_url": image_url, **params.to_query()})
        return self._tags_response(body)

    def tag_upload_id(self, upload_id: str, *, params: TagParams | None = None) -> TagsResponse:
        """Tag an image uploaded before (``GET /v2/tags?image_upload_id=``).

        Raises: see the class docstring.
        """
        params = params or TagParams()
        query = {"image_upload_id": upload_id, **params.to_query()}
        return self._tags_response(self._request("GET", params.path, params=query))

    def tag_two_step(
        self, data: bytes, filename: str = "image.jpg", *, params: TagParams | None = None
    ) -> TagsResponse:
        """Upload, tag by upload id, then delete the upload — the delete is always tried.

        A failed delete is only logged (Imagga drops uploads within 24 h anyway): it
        never hides the tags, nor replaces the error of a failed tagging.

        Raises: see the class docstring (from the upload or the tagging).
        """
        upload_id = self.upload(data, filename)
        try:
            return self.tag_upload_id(upload_id, params=params)
        finally:
            self._delete_quietly(upload_id)

    # --- uploads ----------------------------------------------------------------------
    def upload(self, data: bytes, filename: str = "image.jpg") -> str:
        """Upload the bytes (``POST /v2/uploads``) and return the ``upload_id``.

        Raises: see the class docstring; MalformedResponseError without an upload_id.
        """
        body = self._request("POST", "/uploads", files={"image": (filename, data)},
                             timeout=self._upload_timeout)
        upload_id = body["result"].get("upload_id")
        if not isinstance(upload_id, str) or not upload_id:
            raise MalformedResponseError(
                "Imagga accepted the upload but sent no upload id; try again, or tag the "
                "image in one request instead."
            )
        return upload_id

    def delete_upload(self, upload_id: str) -> None:
        """Delete an upload at once (``DELETE /v2/uploads/{upload_id}``).

        Raises: see the class docstring.
        """
        self._request("DELETE", f"/uploads/{quote(upload_id, safe='')}", require_result=False)

    # --- categories -------------------------------------------------------------------
    def list_categorizers(self) -> list[Categorizer]:
        """The categorizers available to the account (``GET /v2/categorizers``).

        Raises: see the class docstring; MalformedResponseError without a list.
        """
        body = self._request("GET", "/categorizers")
        items = body["result"].get("categorizers")
        if not isinstance(items, list):
            raise MalformedResponseError(
                "Imagga's list of categorizers came back in an unexpected shape; try again later."
            )
        found = []
        for item in items:
            if not isinstance(item, Mapping) or not item.get("id"):
                continue
            labels = item.get("labels")
            labels = tuple(str(x) for x in labels) if isinstance(labels, list) else ()
            found.append(Categorizer(id=str(item["id"]), title=str(item.get("title") or item["id"]),
                                     labels=labels))
        return found

    def categorize(
        self,
        categorizer_id: str,
        *,
        image_url: str | None = None,
        upload_id: str | None = None,
        language: str = "en",
    ) -> list[Category]:
        """Categories of one image (``GET /v2/categories/{categorizer_id}``), best first.

        Pass exactly one of ``image_url`` and ``upload_id``.

        Raises:
            ValueError: without exactly one image reference.
            TaggingError: see the class docstring.
        """
        if (image_url is None) == (upload_id is None):
            raise ValueError("categorize() needs exactly one of image_url and upload_id")
        query = {"language": language}
        if image_url is not None:
            query["image_url"] = image_url
        else:
            query["image_upload_id"] = str(upload_id)
        body = self._request("GET", f"/categories/{quote(categorizer_id, safe='')}", params=query)
        items = body["result"].get("categories")
        if not isinstance(items, list):
            raise MalformedResponseError(
                "Imagga's categories came back in an unexpected shape; try again later."
            )
        categories = []
        for item in items:
            if not isinstance(item, Mapping):
                continue
            names = item.get("name")
            if isinstance(names, str):
                names = {language: names}
            if not isinstance(names, Mapping) or not names:
                continue
            names = {str(k): str(v) for k, v in names.items()}
            name = names.get(language) or next(iter(names.values()))
            confidence = as_float(item.get("confidence"))
            categories.append(Category(name=name, confidence=confidence or 0.0, names=names))
        categories.sort(key=lambda c: c.confidence, reverse=True)
        return categories

    def categorize_image(
        self, categorizer_id: str, data: bytes, filename: str = "image.jpg", *, language: str = "en"
    ) -> list[Category]:
        """Upload, categorize, then delete the upload (always tried, as in ``tag_two_step``).

        Raises: see ``categorize``.
        """
        upload_id = self.upload(data, filename)
        try:
            return self.categorize(categorizer_id, upload_id=upload_id, language=language)
        finally:
            self._delete_quietly(upload_id)

    # --- analysis (faces, colours, text, crops) -----------------------------------------
    def analyse(
        self,
        endpoint: str,
        *,
        data: bytes | None = None,
        filename: str = "image.jpg",
        image_url: str | None = None,
        resolutions: Sequence[tuple[int, int]] = (),
        params: Mapping[str, str] | None = None,
    ) -> AnalysisResponse:
        """One analysis endpoint (``faces``, ``colors``, ``text``, ``croppings``; see ``_analysis``) on uploaded
        bytes (``POST``) or an ``image_url`` Imagga downloads (``GET``): exactly one of the two.

        Raises:
            ValueError: without exactly one image, for an unknown endpoint, or crops without resolutions.
            TaggingError: see the class docstring; MalformedResponseError for an answer of another shape.
        """
        if (data is None) == (image_url is None):
            raise ValueError("analyse() needs exactly one of data and image_url")
        query = analysis_query(endpoint, resolutions, params)
        if data is not None:
            body = self._request("POST", PATHS[endpoint], params=query, files={"image": (filename, data)},
                                 timeout=self._upload_timeout)
        else:
            body = self._request("GET", PATHS[endpoint], params={"image_url": str(image_url), **query})
        try:
            return checked(endpoint, body)
        except ShapeError as exc:
            raise self._error(
                MalformedResponseError,
                f"Imagga's {endpoint} answer came back in an unexpected shape ({exc}); try again, and report it "
                "if it persists.",
            ) from exc

    # --- account ----------------------------------------------------------------------
    def usage(self) -> Usage:
        """The account's usage and limits (``GET /v2/usage``).

        Raises: see the class docstring.
        """
        body = self._request("GET", "/usage")
        return Usage.from_result(body["result"], body)

    def send_feedback(self, payload: Mapping[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        """POST a feedback body (see ``build_feedback_payload``) to ``/v2/tags/feedback``.

        ``idempotency_key`` goes in the ``Idempotency-Key`` header so a retried POST is
        not counted twice (if Imagga honours it; unconfirmed). Returns the whole JSON
        answer, whose ``result`` (if any) is not documented.

        Raises:
            ValueError: for an empty idempotency key.
            TaggingError: see the class docstring.
        """
        if not idempotency_key or not idempotency_key.strip():
            raise ValueError("send_feedback() needs a non-empty idempotency_key")
        return self._request(
            "POST", "/tags/feedback", json=dict(payload),
            headers={"Idempotency-Key": idempotency_key.strip()}, require_result=False,
        )

    # --- plumbing ---------------------------------------------------------------------
    def _tags_response(self, body: dict[str, Any]) -> TagsResponse:
        tags = body["result"].get("tags")
        if not isinstance(tags, list):
            raise MalformedResponseError(
                "Imagga's answer has no list of tags; try again, and report it if it persists."
            )
        return TagsResponse(tags=tags, raw=body)

    def _delete_quietly(self, upload_id: str) -> None:
        """Delete an upload; a failure is logged, never raised (it runs in a ``finally``).

        A documented failure (``TaggingError``) is a warning. Anything else is a bug: it is
        logged with its traceback, and still not raised, because raising here would replace
        the caller's tags or the error that explains why tagging failed.
        """
        try:
            self.delete_upload(upload_id)
        except TaggingError as exc:
            log.warning("Imagga DELETE /uploads failed (%s); Imagga drops uploads within 24 h",
                        type(exc).__name__)
        except Exception:  # logged with the traceback, not hidden; see the docstring
            log.exception("Imagga DELETE /uploads raised an unexpected error; the upload may remain until "
                          "Imagga drops it (within 24 h)")

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        files: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: tuple[float, float] | None = None,
        require_result: bool = True,
    ) -> dict[str, Any]:
        """Send one request (retries happen in the adapter) and return the checked JSON."""
        url = self.base_url + path
        try:
            response = self._session.request(
                method, url, params=params, files=files, json=json,
                headers={"Accept": "application/json", **(headers or {})},
                auth=(self._credentials.api_key, self._credentials.api_secret),
                timeout=timeout or self._timeout,
                allow_redirects=False,
            )
        except requests.exceptions.ConnectTimeout as exc:
            raise self._error(
                BackendUnreachableError,
                f"Could not connect to Imagga at {self._host} within {self._timeout[0]:g} s — "
                "check the network connection and IMAGGA_API_URL, then try again.",
            ) from exc
        except requests.exceptions.Timeout as exc:
            if params and "image_url" in params:
                advice = ("It may not manage to download the image from that URL: upload the file "
                          "instead, or try again.")
            elif files:
                advice = "Try again, or with a smaller image (downscale it before sending)."
            else:
                advice = "It may be busy; try again in a moment."
            raise self._error(
                BackendTimeoutError,
                f"Imagga did not answer within {(timeout or self._timeout)[1]:g} s. {advice}",
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise self._error(
                BackendUnreachableError if never_connected(exc) else BackendConnectionError,
                f"Could not reach Imagga at {self._host} — check the network connection and "
                "IMAGGA_API_URL, then try again.",
            ) from exc
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
            # The connection broke (or the body arrived garbled) in the middle of the answer.
            raise self._error(
                MalformedResponseError,
                f"Imagga's answer broke off before it was complete (the connection to {self._host} was cut); "
                "try again.",
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise self._error(
                BackendConnectionError,
                f"The request to Imagga at {self._host} failed ({type(exc).__name__}); "
                "try again, and check IMAGGA_API_URL if it persists.",
            ) from exc
        except ValueError as exc:
            # requests parses a redirect's Location even though it is not followed; a malformed one raises.
            raise self._error(
                ApiError,
                f"Imagga answered with a redirect to a malformed address instead of a result — check that "
                f"IMAGGA_API_URL is the API's address, e.g. {DEFAULT_BASE_URL}.",
            ) from exc
        log.info("Imagga %s %s -> %s", method, path, response.status_code)
        return self._check(response, require_result=require_result)

    def _check(self, response: requests.Response, *, require_result: bool = True) -> dict[str, Any]:
        """Map one final HTTP response to its JSON body or to the matching exception."""
        code = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        text = _status_text(body)
        said = f" Imagga said: {text}" if text else ""

        if code in (401, 403):
            raise self._error(
                AuthError,
                f"Imagga rejected the API key/secret (HTTP {code}) — check IMAGGA_API_KEY and "
                "IMAGGA_API_SECRET.",
            )
        if code == 429:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > self._retry.max_wait:
                advice = (f"It asks to wait {_about(retry_after)}, longer than this "
                          "app waits: try again after that")
            else:
                when = f"in {_about(retry_after)}" if retry_after else "in a minute"
                advice = f"Retrying did not help: try again {when}"
            raise self._error(
                RateLimitError,
                "Imagga is limiting requests (HTTP 429: too many requests, or the plan's "
                f"concurrency or monthly limit is reached). {advice}; the usage page shows the "
                "plan's limits.",
                retry_after=retry_after,
            )
        if code >= 500:
            raise self._error(
                ServerError,
                f"Imagga had a server error (HTTP {code}) and retrying did not help; try again "
                f"in a few minutes.{said}",
            )
        if 300 <= code < 400:
            raise self._error(
                ApiError,
                f"Imagga answered with a redirect (HTTP {code}) instead of a result — check "
                f"that IMAGGA_API_URL is the API's address, e.g. {DEFAULT_BASE_URL}.",
            )
        if code >= 400:
            raise self._error(
                ApiError,
                f"Imagga refused the request (HTTP {code}).{said or ' It gave no reason.'} "
                "Check the image and the settings (tagger, categorizer, language), then try again.",
            )
        if not isinstance(body, dict):
            kind = response.headers.get("Content-Type", "unknown type").split(";")[0]
            raise self._error(
                MalformedResponseError,
                f"Imagga answered with something that is not JSON (HTTP {code}, {kind}) — the "
                "service or a proxy in between may be failing; try again later.",
            )
        status = body.get("status")
        if isinstance(status, Mapping) and status.get("type") == "error":
            raise self._error(ApiError, f"Imagga could not process the request: "
                                        f"{text or 'no reason given'}.")
        if require_result and not isinstance(body.get("result"), dict):
            raise self._error(
                MalformedResponseError,
                f"Imagga's answer (HTTP {code}) has no result; try again, and report it if it "
                "persists.",
            )
        return body

    def _error(self, cls: type[TaggingError], message: str, **kwargs: Any) -> TaggingError:
        """Build an exception whose message can never carry the key or the secret."""
        key, secret = self._credentials.api_key, self._credentials.api_secret
        token = base64.b64encode(f"{key}:{secret}".encode()).decode()
        for value in (token, key, secret):
            if len(value) >= 4:  # scrubbing "k" would garble the message; real keys are long
                message = message.replace(value, "***")
        return cls(message, **kwargs)


# --- helpers ------------------------------------------------------------------------
def _status_text(body: Any) -> str:
    if not isinstance(body, Mapping):
        return ""
    status = body.get("status")
    if not isinstance(status, Mapping):
        return ""
    text = " ".join(str(status.get("text") or "").split())
    if len(text) > _MAX_TEXT:
        text = text[: _MAX_TEXT - 1] + "…"
    return text.rstrip(".")


def _about(seconds: float) -> str:
    """``"about 5 s"``, ``"about 10 min"``, ``"about 3 h"``, ``"about 4 days"``; a date decades away
    (a misconfigured server) is ``"more than two months"``, not a count of hours."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 3570:
        return f"about {round(seconds / 60)} min"
    if seconds < 47.5 * 3600:
        return f"about {round(seconds / 3600)} h"
    if seconds < 59.5 * 86400:
        return f"about {round(seconds / 86400)} days"
    return "more than two months"
