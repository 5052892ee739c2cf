"""Tagging backends behind one small interface that returns Imagga-shaped JSON.

- ``EmbeddedBackend``: the offline tagger shipped with the project (EfficientNet-Lite0 on ONNX Runtime, or
  another model described by a manifest).
- ``ImaggaBackend``: Imagga's v2 API through ``tagging.imagga.ImaggaClient``.

Both return the body of a v2 ``/tags`` response (a dict), so every view works the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tagging.errors import ApiError, AuthError, BackendUnreachableError, RateLimitError, ServerError, StoreError
from tagging.images import LoadedImage, downscale, encode_jpeg

log = logging.getLogger(__name__)

EMBEDDED = "embedded"
IMAGGA = "imagga"
LABELS = {EMBEDDED: "Embedded tagger (offline)", IMAGGA: "Imagga API"}

# Languages Imagga's tagger answers in (its documented list, most used first).
IMAGGA_LANGUAGES: tuple[str, ...] = (
    "en", "de", "fr", "es", "it", "pt", "nl", "pl", "ru", "uk", "bg", "cs", "sk", "sl", "hr",
    "sr_latn", "sr_cyrl", "bs", "ro", "hu", "el", "tr", "sv", "no", "da", "fi", "et", "lv", "lt",
    "ca", "cy", "mt", "ar", "he", "fa", "ur", "hi", "th", "vi", "id", "ms", "ja", "ko",
    "zh_chs", "zh_cht",
)

ANALYSIS_SIDE = 2048
"""Long side of what Imagga's analysis endpoints are sent when the request does not downscale."""


def analysis_request_key(endpoint: str, request: TagRequest, resolutions: Sequence[tuple[int, int]] = ()) -> str:
    """The result-cache request key of one analysis endpoint (beside the tags' ``TagRequest.cache_key``)."""
    sizes = ",".join(f"{w}x{h}" for w, h in resolutions)
    return f"analysis:{endpoint}:{sizes}:{request.downscale_to or ''}"


# How Imagga is asked to tag uploaded bytes.
MODE_UPLOAD = "upload"  # POST /v2/tags with the bytes: one request
MODE_TWO_STEP = "two_step"  # POST /v2/uploads, GET /v2/tags?image_upload_id=, DELETE the upload
IMAGGA_MODES = {
    MODE_UPLOAD: "Upload and tag in one request",
    MODE_TWO_STEP: "Upload, tag, delete (two steps)",
}


@dataclass(frozen=True)
class TagRequest:
    """What the analyst asked for; part of the cache key of every result."""

    language: str = "en"
    mode: str = MODE_UPLOAD
    downscale_to: int | None = None  # long side in pixels before upload, None = send as is
    limit: int | None = None
    threshold: float | None = None
    decrease_parents: bool | None = None
    verbose: bool | None = None
    tagger_id: str | None = None
    extra_languages: tuple[str, ...] = field(default_factory=tuple)

    def cache_key(self) -> str:
        return repr(self)


def backend_id(name: str, imagga_url: str, manifest_id: str | None = None) -> str:
    """The cache-key name of a backend: Imagga's answers differ per base URL, embedded ones per model manifest.

    Every caller (pages, the command line, cluster workers) must use this one function so an
    answer paid for by one is found by the others.
    """
    return embedded_backend_id(manifest_id) if name == EMBEDDED else f"{name}:{imagga_url}"


class Backend(Protocol):
    """What a page needs from a backend."""

    name: str
    languages: tuple[str, ...]

    def tag_image(self, image: LoadedImage, request: TagRequest) -> dict[str, Any]: ...


def embedded_backend_id(manifest_id: str | None = None) -> str:
    """The cache-key name of an embedded model: ``embedded`` for the shipped one, else ``embedded:<id>``."""
    from tagging.embedded import DEFAULT_MANIFEST_ID

    return EMBEDDED if manifest_id in (None, DEFAULT_MANIFEST_ID) else f"{EMBEDDED}:{manifest_id}"


class EmbeddedBackend:
    """The offline tagger; the model is loaded on first use and kept for the process.

    ``manifest`` picks the model: None for the shipped one, a manifest id (``tagging.embedded.list_manifests``),
    a path to a ``.manifest.json`` or a ``Manifest``. ``backend_id`` tells results of different models apart.
    """

    name = EMBEDDED
    languages: tuple[str, ...] = ("en",)

    def __init__(self, tagger: Any | None = None, *, manifest: Any = None) -> None:
        self._tagger = tagger
        self.manifest = manifest
        self._analyzer: Any | None = None

    @property
    def manifest_id(self) -> str | None:
        """The id of the chosen manifest (None for the shipped model); reads a manifest file if given one."""
        from tagging.embedded import DEFAULT_MANIFEST_ID, Manifest, load_manifest

        manifest = self.manifest
        if manifest is None:
            return None
        if isinstance(manifest, Manifest):
            manifest_id = manifest.id
        elif isinstance(manifest, Path) or str(manifest).endswith(".manifest.json"):
            manifest_id = load_manifest(Path(manifest)).id
        else:
            manifest_id = str(manifest)
        return None if manifest_id == DEFAULT_MANIFEST_ID else manifest_id

    @property
    def backend_id(self) -> str:
        """``embedded`` for the shipped model, ``embedded:<manifest id>`` for another one."""
        return embedded_backend_id(self.manifest_id)

    @property
    def tagger(self) -> Any:
        if self._tagger is None:
            from tagging.embedded import EmbeddedTagger  # loads ONNX Runtime and the models: on first use

            self._tagger = EmbeddedTagger(self.manifest)
        return self._tagger

    def tag_image(self, image: LoadedImage, request: TagRequest) -> dict[str, Any]:
        """Tag a decoded image offline; ``request`` options other than language are ignored."""
        return self.tagger.tag(image.image)

    @property
    def analyzer(self) -> Any:
        """The offline analyser (faces, colours, text, crops), sharing the tagger's face detector."""
        if self._analyzer is None:
            from tagging.analysis import OfflineAnalyzer

            self._analyzer = OfflineAnalyzer(face_detector=getattr(self.tagger, "faces", None))
        return self._analyzer

    def analyse(
        self, endpoint: str, image: LoadedImage, request: TagRequest, *,
        resolutions: Sequence[tuple[int, int]] = (), objects: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        """One analysis endpoint's answer (Imagga's shape) computed offline, in pixels of the oriented image."""
        return self.analyzer.answer(endpoint, image.image, resolutions=resolutions, objects=objects)


@dataclass(frozen=True)
class UploadPlan:
    """The bytes that will be sent for an image, and how many were saved by downscaling."""

    data: bytes
    filename: str
    original_bytes: int

    @property
    def saved_bytes(self) -> int:
        return max(0, self.original_bytes - len(self.data))


def plan_upload(image: LoadedImage, downscale_to: int | None) -> UploadPlan:
    """The original bytes, or a JPEG re-encoding with the long side at most ``downscale_to``.

    The original is kept when it is already small enough or when re-encoding would not
    make it smaller.
    """
    original = len(image.data)
    if downscale_to and max(image.width, image.height) > downscale_to:
        data = encode_jpeg(downscale(image.image, downscale_to))
        if len(data) < original:
            stem = image.filename.rsplit(".", 1)[0] or "image"
            return UploadPlan(data=data, filename=f"{stem}.jpg", original_bytes=original)
    return UploadPlan(data=image.data, filename=image.filename, original_bytes=original)


# Imagga answered with an error, or the request never left: nothing was processed, so a charge for it is
# given back. A timeout, a broken connection or a 200 that is not a result stays charged: Imagga may have
# processed (and billed) the image, and the daily cap is there to never spend more than allowed.
NOT_PROCESSED = (ApiError, AuthError, BackendUnreachableError, RateLimitError, ServerError)


def paid_call(meter: Callable[[int], None] | None, call: Callable[[], Any]) -> Any:
    """Charge one call to ``meter`` (if any), make it, and give the charge back if Imagga cannot have processed it.

    Raises what the meter raises (SpendCapError, PermissionDeniedError) before anything is sent, and what
    ``call`` raises.
    """
    if meter is not None:
        meter(1)
    try:
        return call()
    except NOT_PROCESSED:
        if meter is not None:
            try:
                meter(-1)
            except StoreError as exc:  # the charge stays (the cap errs towards spending less); Imagga's error shows
                log.warning("could not give back the charge of a call Imagga refused (%s)", type(exc).__name__)
        raise


class ImaggaBackend:
    """Imagga's v2 API. Every call can raise the client's BackendError subclasses."""

    name = IMAGGA
    languages = IMAGGA_LANGUAGES

    def __init__(self, client: Any, meter: Callable[[int], None] | None = None) -> None:
        self.client = client
        # Charged before each paid request (``tagging.auth.SpendMeter``): raises SpendCapError or
        # PermissionDeniedError instead of sending, on whatever server or Dask worker the call runs.
        # ``meter(-1)`` gives a charge back (see NOT_PROCESSED).
        self.meter = meter

    def _paid(self, call: Callable[[], Any]) -> Any:
        return paid_call(self.meter, call)

    def _params(self, request: TagRequest) -> Any:
        from tagging.imagga import TagParams

        extra = [lang for lang in request.extra_languages if lang != request.language]
        languages = (request.language, *extra)
        return TagParams(
            languages=languages,
            limit=request.limit,
            threshold=request.threshold,
            decrease_parents=request.decrease_parents,
            verbose=request.verbose,
            tagger_id=request.tagger_id,
        )

    def tag_image(self, image: LoadedImage, request: TagRequest) -> dict[str, Any]:
        """Send the image's bytes (downscaled if asked) and return the response body."""
        plan = plan_upload(image, request.downscale_to)
        params = self._params(request)
        if request.mode == MODE_TWO_STEP:
            return self._paid(lambda: self.client.tag_two_step(plan.data, plan.filename, params=params).raw)
        return self._paid(lambda: self.client.tag_image(plan.data, plan.filename, params=params).raw)

    def tag_url(self, url: str, request: TagRequest) -> dict[str, Any]:
        """Let Imagga fetch ``url`` itself and return the response body."""
        return self._paid(lambda: self.client.tag_url(url, params=self._params(request)).raw)

    def analyse(
        self, endpoint: str, image: LoadedImage | None, request: TagRequest, *,
        resolutions: Sequence[tuple[int, int]] = (), objects: Sequence[Mapping[str, Any]] = (),
        image_url: str | None = None,
    ) -> dict[str, Any]:
        """One analysis endpoint's answer from Imagga, boxes in pixels of the EXIF-oriented full-size image.

        The bytes sent are always the oriented pixels as JPEG (downscaled to the request's long side), never
        the original file: whether Imagga applies an EXIF orientation is not documented, and the answer is
        about the pixels it saw, mapped back here by ``tagging.analysis.rescale``. Without an image, Imagga
        fetches ``image_url`` and its coordinates are kept as sent.
        """
        from tagging.analysis import rescale

        if image is None:  # one paid call, like a tag request
            return self._paid(lambda: self.client.analyse(endpoint, image_url=image_url,
                                                          resolutions=resolutions).raw)
        sent = downscale(image.image, request.downscale_to or ANALYSIS_SIDE)
        stem = image.filename.rsplit(".", 1)[0] or "image"
        body = self._paid(lambda: self.client.analyse(endpoint, data=encode_jpeg(sent), filename=f"{stem}.jpg",
                                                      resolutions=resolutions).raw)
        return rescale(endpoint, body, sent.size, image.image.size)
