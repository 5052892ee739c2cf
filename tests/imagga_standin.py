"""A loopback stand-in for Imagga's v2 API, following the project's Imagga contract.

Three ways to use it:

1. With pytest-httpserver::

       standin = ImaggaStandin()
       base_url = standin.install(httpserver)        # -> "http://localhost:PORT/v2"

2. In a thread of the test process (e.g. for Streamlit's AppTest)::

       with serve() as (standin, base_url):
           ...

3. As a process, for ``streamlit run`` with ``IMAGGA_API_URL`` pointing at it::

       python tests/imagga_standin.py --port 8765 [--fail rate_limit --retry-after 1]

   and drive it over HTTP (no auth needed under ``/__standin__/``)::

       POST /__standin__/fail   {"mode": "rate_limit", "retry_after": 1, "times": 2,
                                 "path": "/v2/tags", "method": "GET"}
       POST /__standin__/reset
       GET  /__standin__/stats  -> {"total": 3, "counts": {"GET /v2/tags": 2, ...}, ...}
       GET  /__standin__/health -> {"ok": true}

Credentials: HTTP Basic with TEST_API_KEY / TEST_API_SECRET (constructor/CLI can change
them). Answers are deterministic: tags depend only on the image bytes (or the URL, or
the tagger id) and the query; see :func:`standin_tags`.

Failure modes (``fail()`` or ``/__standin__/fail``; rules are checked in order, each
for ``times`` requests or forever when ``times`` is None, optionally only for one
``method`` and ``path`` prefix):

- ``auth``          401 (or ``status`` 403) with a JSON error, whatever the credentials;
- ``rate_limit``    429 with a JSON error and ``Retry-After: <retry_after>`` if given;
- ``server_error``  ``status`` (default 500) with a JSON error; 502 answers an HTML page;
- ``slow``          sleeps ``delay`` seconds (default 2), then answers normally; with a
                    ``gate`` (a ``threading.Event``) it answers as soon as the gate is set,
                    at most ``delay`` seconds later (so a test decides when, not the clock);
- ``html``          an HTML page with ``status`` (default 200);
- ``no_result``     200 JSON ``{"status": {"type": "success"}}`` without ``result``;
- ``api_error``     ``status`` (default 200) JSON ``status.type == "error"`` with ``text``.

A rule with ``image_sha256`` only matches requests that upload those exact bytes (the
``image`` field of ``POST /v2/tags`` or ``/v2/uploads``), so one image of a batch can fail.

Analysis endpoints (``/v2/faces/detections``, ``/v2/colors``, ``/v2/text``, ``/v2/croppings?resolution=``) answer
deterministic results in Imagga's shapes (see :func:`standin_analysis`), in pixels of the uploaded image.

Concurrency and latency: ``latency`` (constructor, attribute or ``--latency``) adds that
many seconds to every API request, inside the in-flight window; ``in_flight`` counts the
requests being answered and ``max_in_flight`` the most seen at once since ``reset()``
(also in ``stats()``). Use ``serve()`` (threaded) for these, not pytest-httpserver.

An ``image_url`` on a host ending in ``.invalid`` gets Imagga's "could not download"
kind of answer (400, ``status.type == "error"``) without any switch.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import io
import json
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

TEST_API_KEY = "acc_standin0123456789"
TEST_API_SECRET = "standin-secret-never-shown-9f8e7d"
API_PREFIX = "/v2"
CONTROL_PREFIX = "/__standin__"
MODES = ("auth", "rate_limit", "server_error", "slow", "html", "no_result", "api_error")

# English, German, French, Spanish names; other languages fall back to English.
VOCABULARY: tuple[dict[str, str], ...] = (
    {"en": "mountain", "de": "Berg", "fr": "montagne", "es": "montaña"},
    {"en": "landscape", "de": "Landschaft", "fr": "paysage", "es": "paisaje"},
    {"en": "sky", "de": "Himmel", "fr": "ciel", "es": "cielo"},
    {"en": "cat", "de": "Katze", "fr": "chat", "es": "gato"},
    {"en": "animal", "de": "Tier", "fr": "animal", "es": "animal"},
    {"en": "pet", "de": "Haustier", "fr": "animal de compagnie", "es": "mascota"},
    {"en": "coffee", "de": "Kaffee", "fr": "café", "es": "café"},
    {"en": "cup", "de": "Tasse", "fr": "tasse", "es": "taza"},
    {"en": "drink", "de": "Getränk", "fr": "boisson", "es": "bebida"},
    {"en": "rocket", "de": "Rakete", "fr": "fusée", "es": "cohete"},
    {"en": "space", "de": "Weltraum", "fr": "espace", "es": "espacio"},
    {"en": "astronaut", "de": "Astronaut", "fr": "astronaute", "es": "astronauta"},
    {"en": "person", "de": "Person", "fr": "personne", "es": "persona"},
    {"en": "portrait", "de": "Porträt", "fr": "portrait", "es": "retrato"},
    {"en": "water", "de": "Wasser", "fr": "eau", "es": "agua"},
    {"en": "tree", "de": "Baum", "fr": "arbre", "es": "árbol"},
    {"en": "city", "de": "Stadt", "fr": "ville", "es": "ciudad"},
    {"en": "building", "de": "Gebäude", "fr": "bâtiment", "es": "edificio"},
    {"en": "food", "de": "Essen", "fr": "nourriture", "es": "comida"},
    {"en": "table", "de": "Tisch", "fr": "table", "es": "mesa"},
    {"en": "light", "de": "Licht", "fr": "lumière", "es": "luz"},
    {"en": "travel", "de": "Reise", "fr": "voyage", "es": "viaje"},
    {"en": "outdoors", "de": "im Freien", "fr": "plein air", "es": "al aire libre"},
    {"en": "night", "de": "Nacht", "fr": "nuit", "es": "noche"},
)
# Confidences of the 1st, 2nd ... tag: some above the widget's 60, most below.
CONFIDENCES = (
    88.7313461303711, 76.4135513305664, 69.7975997924805, 61.2771263122559,
    54.8374099731445, 54.5085144042969, 45.1220397949219, 38.0158271789551,
    33.4038124084473, 27.9512329101562, 21.6324825286865, 17.0805721282959,
    12.5438461303711, 9.31040287017822, 7.66128635406494,
)
CATEGORIZERS = (
    {"id": "personal_photos", "title": "Personal Photos",
     "labels": ["beaches seaside", "events parties", "food drinks", "interior objects",
                "nature landscape", "paintings art", "people portraits", "pets animals",
                "streetview architecture", "sunrises sunsets"]},
    {"id": "nsfw_beta", "title": "NSFW Beta", "labels": ["nsfw", "safe", "underwear"]},
)
BILLING_PERIOD = ("2026-11-01 00:00:00", "2026-12-01 00:00:00")


def _seed(key: bytes | str, salt: str = "") -> bytes:
    data = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(salt.encode() + b"\0" + data).digest()


def standin_tags(
    key: bytes | str,
    languages: tuple[str, ...] = ("en",),
    *,
    limit: int | None = None,
    threshold: float | None = None,
    verbose: bool = False,
    tagger_id: str | None = None,
) -> list[dict[str, Any]]:
    """The tags the stand-in answers for these image bytes (or URL), best first.

    Always ``len(CONFIDENCES)`` tags before ``threshold``/``limit``; the order of the
    vocabulary is a permutation picked by the SHA-256 of ``key`` (and the tagger id).
    """
    seed = _seed(key, tagger_id or "")
    order = sorted(range(len(VOCABULARY)), key=lambda i: (seed[i % len(seed)], i))
    tags = []
    for rank, (index, confidence) in enumerate(zip(order, CONFIDENCES, strict=False)):
        if threshold is not None and confidence < threshold:
            break
        words = VOCABULARY[index]
        tag: dict[str, Any] = {
            "confidence": confidence,
            "tag": {lang: words.get(lang, words["en"]) for lang in languages},
        }
        if verbose:
            tag["origin"] = "trained" if rank % 3 else "additional"
            tag["synset_id"] = f"n{int.from_bytes(_seed(words['en'])[:3], 'big'):08d}"
        tags.append(tag)
    if limit is not None and limit >= 0:
        tags = tags[:limit]
    return tags


def standin_categories(key: bytes | str, categorizer_id: str, language: str = "en") -> list[dict]:
    """The categories the stand-in answers for an image, best first (sum about 100)."""
    labels = next(c["labels"] for c in CATEGORIZERS if c["id"] == categorizer_id)
    seed = _seed(key, categorizer_id)
    weights = [seed[i] + 1 for i in range(len(labels))]
    total = sum(weights)
    cats = [
        {"confidence": round(100 * w / total, 4), "name": {language: label}}
        for w, label in zip(weights, labels, strict=True)
    ]
    return sorted(cats, key=lambda c: c["confidence"], reverse=True)


ANALYSIS_ROUTES = {("faces", ("detections",)): "faces", ("colors", ()): "colors", ("text", ()): "text",
                   ("croppings", ()): "croppings"}
DEFAULT_SIZE = (640, 480)  # what the stand-in assumes of bytes it cannot decode, and of URLs
STANDIN_PARENTS = ("red", "green", "blue", "gray")


def image_size(key: bytes | str) -> tuple[int, int]:
    """The pixel size of uploaded image bytes, or ``DEFAULT_SIZE`` when they are no image (or a URL)."""
    if isinstance(key, bytes):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(key)) as image:
                return image.size
        except (UnidentifiedImageError, OSError):
            pass
    return DEFAULT_SIZE


def _seed_box(seed: bytes, size: tuple[int, int], at: int) -> dict[str, int]:
    width, height = size
    xmin, ymin = seed[at] * width // 512, seed[at + 1] * height // 512  # in the left/top half
    xmax, ymax = xmin + max(1, width // 4), ymin + max(1, height // 4)
    return {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax, "width": xmax - xmin, "height": ymax - ymin}


def _seed_colors(seed: bytes, at: int, count: int) -> list[dict[str, Any]]:
    colors = []
    for i in range(count):
        r, g, b = seed[at + 3 * i: at + 3 * i + 3]
        html = f"#{r:02x}{g:02x}{b:02x}"
        colors.append({"r": r, "g": g, "b": b, "html_code": html, "percent": round(100 / 2 ** (i + 1), 2),
                       "closest_palette_color": f"standin {html}", "closest_palette_color_html_code": html,
                       "closest_palette_color_parent": STANDIN_PARENTS[seed[at + i] % len(STANDIN_PARENTS)],
                       "closest_palette_distance": round(seed[at + i] / 25.5, 2)})
    return colors


def standin_analysis(endpoint: str, key: bytes | str, resolution: str | None = None) -> dict[str, Any]:
    """The ``result`` the stand-in answers for an analysis endpoint, in pixels of the image sent.

    Faces: one or two boxes a quarter of the image wide; colours: three image colours and two each for
    foreground and background; text: one line ``STANDIN <6 hex digits>``; crops: the largest centred crop of each
    resolution (x2/y2 inclusive). Raises ValueError for crops without a well-formed ``resolution``.
    """
    seed = _seed(key, endpoint)
    size = image_size(key)
    if endpoint == "faces":
        return {"faces": [{"confidence": round(90 + seed[10 + i] / 51, 4), "coordinates": _seed_box(seed, size, 2 * i),
                           "face_id": seed[:8].hex() + str(i)} for i in range(1 + seed[0] % 2)]}
    if endpoint == "colors":
        return {"colors": {"image_colors": _seed_colors(seed, 0, 3), "foreground_colors": _seed_colors(seed, 9, 2),
                           "background_colors": _seed_colors(seed, 15, 2), "object_percentage": seed[21] / 2.56,
                           "color_percent_threshold": 1.75, "color_variance": seed[22] % 60}}
    if endpoint == "text":
        return {"text": [{"data": f"STANDIN {seed[:3].hex()}", "coordinates": _seed_box(seed, size, 4)}]}
    croppings = []
    for part in (resolution or "").split(","):
        w, sep, h = part.strip().partition("x")
        if not sep or not w.isdigit() or not h.isdigit() or not int(w) or not int(h):
            raise ValueError(f"resolution must be WxH[,WxH...], got {resolution!r}")
        width, height = size
        crop_w = min(width, round(height * int(w) / int(h)))
        crop_h = min(height, round(width * int(h) / int(w)))
        x1, y1 = (width - crop_w) // 2, (height - crop_h) // 2
        croppings.append({"target_width": int(w), "target_height": int(h), "x1": x1, "y1": y1,
                          "x2": x1 + crop_w - 1, "y2": y1 + crop_h - 1})
    return {"croppings": croppings}


@dataclass
class Rule:
    """One failure switch; ``times=None`` applies forever."""

    mode: str
    times: int | None = None
    path: str | None = None  # path prefix, e.g. "/v2/tags"
    method: str | None = None
    status: int | None = None
    retry_after: float | str | None = None
    delay: float = 2.0
    text: str | None = None
    image_sha256: str | None = None  # only requests uploading these bytes
    gate: threading.Event | None = field(default=None, repr=False, compare=False)  # "slow" answers once set

    def as_dict(self) -> dict[str, Any]:
        """The rule as JSON-able data (the gate, a live Event, is left out)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "gate"}

    def matches(self, request: Request, record: RecordedRequest | None = None) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method and request.method.upper() != self.method.upper():
            return False
        if self.image_sha256:
            upload = record.files.get("image") if record is not None else None
            if upload is None or hashlib.sha256(upload[1]).hexdigest() != self.image_sha256.lower():
                return False
        return not self.path or request.path.startswith(self.path)


@dataclass
class RecordedRequest:
    """What the stand-in saw of one API request (Authorization is not kept)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    authorized: bool
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    json: Any = None
    received: float = 0.0  # time.monotonic() when the request arrived (the test process's clock)


def _envelope(result: Any = None, text: str = "", kind: str = "success") -> dict[str, Any]:
    body: dict[str, Any] = {"status": {"text": text, "type": kind}}
    if result is not None:
        body["result"] = result
    return body


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers,
                    content_type="application/json")


def _error(text: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return _json(_envelope(text=text, kind="error"), status, headers)


HTML_PAGE = ("<!DOCTYPE html><html><head><title>{code} Error</title></head>"
             "<body><h1>{code} Error</h1><p>The upstream service is unavailable.</p>"
             "</body></html>")


class ImaggaStandin:
    """Deterministic Imagga v2 stand-in; thread-safe; see the module docstring."""

    def __init__(
        self,
        api_key: str = TEST_API_KEY,
        api_secret: str = TEST_API_SECRET,
        *,
        monthly_limit: int = 1000,
        monthly_processed: int = 250,
        concurrency_max: int = 3,
        latency: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.monthly_limit = monthly_limit
        self.monthly_processed_start = monthly_processed
        self.concurrency_max = concurrency_max
        self.latency = latency  # seconds added to every API request
        self._lock = threading.Lock()
        self.reset()

    # --- switches and counters --------------------------------------------------------
    def reset(self) -> None:
        """Forget rules, recorded requests, uploads and feedback."""
        with self._lock:
            self.rules: list[Rule] = []
            self.requests: list[RecordedRequest] = []
            self.counts: Counter[str] = Counter()
            self.uploads: dict[str, bytes] = {}
            self.deleted_uploads: list[str] = []
            self.feedback: list[dict[str, Any]] = []  # {"idempotency_key", "payload"}
            self.feedback_replays = 0
            self._feedback_answers: dict[str, dict[str, Any]] = {}
            self.processed = 0
            self.in_flight = 0
            self.max_in_flight = 0
            self._next_upload = 0

    def fail(self, mode: str, *, times: int | None = None, path: str | None = None,
             method: str | None = None, status: int | None = None,
             retry_after: float | str | None = None, delay: float = 2.0,
             text: str | None = None, image_sha256: str | None = None,
             gate: threading.Event | None = None) -> Rule:
        """Add a failure rule (see the module docstring) and return it."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        rule = Rule(mode, times, path, method, status, retry_after, delay, text, image_sha256, gate)
        with self._lock:
            self.rules.append(rule)
        return rule

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Number of API requests seen, optionally for one method and/or exact path."""
        with self._lock:
            return sum(
                1 for r in self.requests
                if (method is None or r.method == method.upper())
                and (path is None or r.path == path)
            )

    def stats(self) -> dict[str, Any]:
        """Counters as JSON-able data (what ``GET /__standin__/stats`` answers)."""
        with self._lock:
            return {
                "total": len(self.requests),
                "counts": dict(self.counts),
                "unauthorized": sum(1 for r in self.requests if not r.authorized),
                "live_uploads": sorted(self.uploads),
                "deleted_uploads": list(self.deleted_uploads),
                "feedback": list(self.feedback),
                "feedback_replays": self.feedback_replays,
                "processed": self.processed,
                "rules": [r.as_dict() for r in self.rules],
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
            }

    # --- wiring -------------------------------------------------------------------------
    def install(self, httpserver: Any) -> str:
        """Route every request of a pytest-httpserver to this stand-in; return the base URL."""
        httpserver.expect_request(re.compile(r"^/.*")).respond_with_handler(self.handle)
        return httpserver.url_for(API_PREFIX)

    def wsgi_app(self, environ: dict, start_response: Any) -> Any:
        """The stand-in as a WSGI application."""
        return self.handle(Request(environ))(environ, start_response)

    # --- dispatch -----------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        """Answer one request (pytest-httpserver handler signature)."""
        if request.path.startswith(CONTROL_PREFIX):
            return self._control(request)
        received = time.monotonic()
        authorized = self._authorized(request)
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.args.items()),
            headers={k: v for k, v in request.headers.items() if k.lower() != "authorization"},
            authorized=authorized,
            files={name: (f.filename or "", f.read()) for name, f in request.files.items()},
            json=request.get_json(silent=True),
            received=received,
        )
        with self._lock:
            self.requests.append(record)
            self.counts[f"{request.method} {request.path}"] += 1
            rule = next((r for r in self.rules if r.matches(request, record)), None)
            if rule is not None and rule.times is not None:
                rule.times -= 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency > 0:
                time.sleep(self.latency)
            if rule is not None:
                if rule.mode != "slow":
                    return self._failure(rule)
                if rule.gate is not None:
                    rule.gate.wait(rule.delay)
                else:
                    time.sleep(rule.delay)
            if not authorized:
                return _error("Invalid or missing API credentials.", 401,
                              {"WWW-Authenticate": 'Basic realm="Imagga API"'})
            return self._route(request, record)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        expected = base64.b64encode(f"{self.api_key}:{self.api_secret}".encode()).decode()
        return header == f"Basic {expected}"

    def _failure(self, rule: Rule) -> Response:
        if rule.mode == "auth":
            return _error(rule.text or "Invalid or missing API credentials.", rule.status or 401)
        if rule.mode == "rate_limit":
            headers = {} if rule.retry_after is None else {"Retry-After": str(rule.retry_after)}
            return _error(rule.text or "Too many requests; you have exceeded the concurrency "
                          "limit of your plan.", rule.status or 429, headers)
        if rule.mode == "server_error":
            code = rule.status or 500
            if code == 502:
                return Response(HTML_PAGE.format(code=code), 502, content_type="text/html")
            return _error(rule.text or "Internal server error.", code)
        if rule.mode == "html":
            code = rule.status or 200
            return Response(HTML_PAGE.format(code=code), code, content_type="text/html")
        if rule.mode == "no_result":
            return _json(_envelope(text="", kind="success"), rule.status or 200)
        # api_error
        return _error(rule.text or "Unsupported image type.", rule.status or 200)

    def _route(self, request: Request, record: RecordedRequest) -> Response:
        path, method = request.path, request.method
        if not path.startswith(API_PREFIX + "/"):
            return _error(f"Unknown endpoint {path}.", 404)
        parts = path[len(API_PREFIX) + 1:].rstrip("/").split("/")
        head, rest = parts[0], parts[1:]
        if head == "tags" and rest == ["feedback"] and method == "POST":
            return self._feedback(request, record)
        if head == "tags" and len(rest) <= 1 and method in ("GET", "POST"):
            return self._tags(request, record, rest[0] if rest else None)
        if head == "uploads" and not rest and method == "POST":
            return self._upload(record)
        if head == "uploads" and len(rest) == 1 and method == "DELETE":
            return self._delete(rest[0])
        if head == "categorizers" and not rest and method == "GET":
            return _json(_envelope({"categorizers": [dict(c) for c in CATEGORIZERS]}))
        if head == "categories" and len(rest) == 1 and method == "GET":
            return self._categories(request, rest[0])
        if head == "usage" and not rest and method == "GET":
            return self._usage()
        endpoint = ANALYSIS_ROUTES.get((head, tuple(rest)))
        if endpoint is not None and method in ("GET", "POST"):
            return self._analysis(endpoint, request, record)
        return _error(f"Unknown endpoint {method} {path}.", 404)

    # --- endpoints --------------------------------------------------------------------
    def _image_key(self, request: Request, record: RecordedRequest) -> bytes | Response:
        """The bytes (or URL) to derive answers from, or an error response."""
        if request.method == "POST":
            upload = record.files.get("image")
            if upload is None or not upload[1]:
                return _error("Please provide content for processing (multipart field "
                              "'image').", 400)
            return upload[1]
        url = request.args.get("image_url")
        upload_id = request.args.get("image_upload_id")
        if bool(url) == bool(upload_id):
            return _error("Please provide exactly one of image_url and image_upload_id.", 400)
        if upload_id:
            with self._lock:
                data = self.uploads.get(upload_id)
            if data is None:
                return _error(f"Upload {upload_id} was not found (deleted or expired).", 400)
            return data
        host = urlsplit(url).hostname or ""
        if not url.startswith(("http://", "https://")) or host.endswith(".invalid") or not host:
            return _error(f"Could not download the image from {url}.", 400)
        return url.encode()

    def _tags(self, request: Request, record: RecordedRequest, tagger_id: str | None) -> Response:
        key = self._image_key(request, record)
        if isinstance(key, Response):
            return key
        args = request.args
        try:
            limit = int(args["limit"]) if "limit" in args else None
            threshold = float(args["threshold"]) if "threshold" in args else None
        except ValueError:
            return _error("limit must be an integer and threshold a number.", 400)
        if threshold is not None and not 0 <= threshold <= 100:
            return _error("threshold must be between 0 and 100.", 400)
        for flag in ("verbose", "decrease_parents"):
            if args.get(flag, "0") not in ("0", "1"):
                return _error(f"{flag} must be 0 or 1.", 400)
        languages = tuple(x.strip() for x in args.get("language", "en").split(",") if x.strip())
        tags = standin_tags(key, languages or ("en",), limit=limit, threshold=threshold,
                            verbose=args.get("verbose") == "1", tagger_id=tagger_id)
        with self._lock:
            self.processed += 1
        return _json(_envelope({"tags": tags}))

    def _upload(self, record: RecordedRequest) -> Response:
        upload = record.files.get("image")
        if upload is None or not upload[1]:
            return _error("Please provide content for processing (multipart field 'image').", 400)
        with self._lock:
            self._next_upload += 1
            upload_id = "i" + hashlib.sha256(upload[1]).hexdigest()[:20] + f"{self._next_upload:06d}"
            self.uploads[upload_id] = upload[1]
        return _json(_envelope({"upload_id": upload_id}, text="Success"))

    def _delete(self, upload_id: str) -> Response:
        with self._lock:
            if self.uploads.pop(upload_id, None) is None:
                return _error(f"Upload {upload_id} was not found.", 404)
            self.deleted_uploads.append(upload_id)
        return _json(_envelope(text="Image deleted successfully."))

    def _categories(self, request: Request, categorizer_id: str) -> Response:
        if categorizer_id not in {c["id"] for c in CATEGORIZERS}:
            return _error(f"Categorizer {categorizer_id} does not exist.", 404)
        key = self._image_key(request, RecordedRequest("GET", "", {}, {}, True))
        if isinstance(key, Response):
            return key
        with self._lock:
            self.processed += 1
        language = request.args.get("language", "en").split(",")[0] or "en"
        return _json(_envelope({"categories": standin_categories(key, categorizer_id, language)}))

    def _analysis(self, endpoint: str, request: Request, record: RecordedRequest) -> Response:
        key = self._image_key(request, record)
        if isinstance(key, Response):
            return key
        try:
            result = standin_analysis(endpoint, key, request.args.get("resolution"))
        except ValueError as exc:
            return _error(str(exc), 400)
        with self._lock:
            self.processed += 1
        return _json(_envelope(result))

    def _usage(self) -> Response:
        with self._lock:
            processed = self.processed
            requests_seen = len(self.requests)
            now = self.in_flight
        result = {
            "billing_period_start": BILLING_PERIOD[0],
            "billing_period_end": BILLING_PERIOD[1],
            "concurrency": {"max": self.concurrency_max, "now": now},
            "daily_processed": processed,
            "daily_requests": requests_seen,
            "last_usage": 0,
            "monthly_limit": self.monthly_limit,
            "monthly_processed": self.monthly_processed_start + processed,
            "monthly_requests": self.monthly_processed_start + requests_seen,
            "total_processed": self.monthly_processed_start + processed,
            "total_requests": self.monthly_processed_start + requests_seen,
        }
        return _json(_envelope(result))

    def _feedback(self, request: Request, record: RecordedRequest) -> Response:
        payload = record.json
        if not isinstance(payload, dict):
            return _error("The feedback body must be a JSON object.", 400)
        key = request.headers.get("Idempotency-Key")
        with self._lock:
            if key and key in self._feedback_answers:
                self.feedback_replays += 1
                return _json(self._feedback_answers[key])
            self.feedback.append({"idempotency_key": key, "payload": payload})
            tags = payload.get("tags")
            answer = _envelope({"feedback_id": f"fb{len(self.feedback):06d}",
                                "received": len(tags) if isinstance(tags, list) else 0},
                               text="Thank you for the feedback.")
            if key:
                self._feedback_answers[key] = answer
        return _json(answer)

    # --- control --------------------------------------------------------------------------
    def _control(self, request: Request) -> Response:
        action = request.path[len(CONTROL_PREFIX):].strip("/")
        if action == "health":
            return _json({"ok": True})
        if action == "stats" and request.method == "GET":
            return _json(self.stats())
        if action == "reset" and request.method == "POST":
            self.reset()
            return _json({"ok": True})
        if action == "fail" and request.method == "POST":
            spec = request.get_json(silent=True)
            if not isinstance(spec, dict) or "mode" not in spec:
                return _json({"ok": False, "error": "JSON object with 'mode' expected"}, 400)
            try:
                rule = self.fail(**spec)
            except (TypeError, ValueError) as exc:
                return _json({"ok": False, "error": str(exc)}, 400)
            return _json({"ok": True, "rule": rule.as_dict()})
        return _json({"ok": False, "error": f"unknown control {request.method} {action}"}, 404)


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without the per-request access log line on stderr."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextlib.contextmanager
def serve(
    standin: ImaggaStandin | None = None, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True
) -> Iterator[tuple[ImaggaStandin, str]]:
    """Run a stand-in in a background thread; yield it and its base URL (``.../v2``)."""
    standin = standin or ImaggaStandin()
    handler = QuietRequestHandler if quiet else None
    server = make_server(host, port, standin.wsgi_app, threaded=True, request_handler=handler)
    thread = threading.Thread(target=server.serve_forever, name="imagga-standin", daemon=True)
    thread.start()
    try:
        yield standin, f"http://{host}:{server.server_port}{API_PREFIX}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    """Command line: serve the stand-in until interrupted."""
    parser = argparse.ArgumentParser(description="Loopback stand-in for Imagga's v2 API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default=TEST_API_KEY)
    parser.add_argument("--api-secret", default=TEST_API_SECRET)
    parser.add_argument("--monthly-limit", type=int, default=1000)
    parser.add_argument("--fail", choices=MODES, help="start with this failure rule (forever)")
    parser.add_argument("--status", type=int)
    parser.add_argument("--retry-after")
    parser.add_argument("--delay", type=float, default=2.0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every API request")
    parser.add_argument("--fail-path", help="only for paths starting with this, e.g. /v2/tags")
    parser.add_argument("--quiet", action="store_true", help="no access log on stderr")
    args = parser.parse_args(argv)

    standin = ImaggaStandin(args.api_key, args.api_secret, monthly_limit=args.monthly_limit,
                            latency=args.latency)
    if args.fail:
        standin.fail(args.fail, status=args.status, retry_after=args.retry_after,
                     delay=args.delay, path=args.fail_path)
    handler = QuietRequestHandler if args.quiet else None
    server = make_server(args.host, args.port, standin.wsgi_app, threaded=True, request_handler=handler)
    print(f"Imagga stand-in on http://{args.host}:{server.server_port}{API_PREFIX} "
          f"(control: {CONTROL_PREFIX}/stats, /fail, /reset)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
