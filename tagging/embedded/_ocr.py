"""Text in images offline: RapidOCR (PP-OCRv4 detection and recognition) on ONNX Runtime.

The three ONNX models (text detection, orientation, recognition; about 16 MB) ship inside the
``rapidocr-onnxruntime`` wheel (Apache-2.0) and are read from it in place: nothing is downloaded at run
time. The recogniser's alphabet is PP-OCR's Chinese + Latin one, so Latin signs read as typed.

``TextReader.read`` answers regions in pixel coordinates of the image it is given (the EXIF-oriented,
full-size image, as the shared box contract wants); ``text_response`` wraps them in Imagga's ``/v2/text``
shape::

    {"result": {"text": [{"data": "STOP", "confidence": 97.9,
                          "coordinates": {"xmin": 102, "ymin": 148, "xmax": 453, "ymax": 196,
                                          "width": 351, "height": 48},
                          "polygon": [[102, 148], [453, 148], [453, 196], [102, 196]]}]},
     "status": {"text": "", "type": "success"}}

``confidence`` and ``polygon`` are extras Imagga does not send (readers of either answer use ``data`` and
``coordinates``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from tagging.errors import BackendError, BadImageError

DETECT_SIDE = 960
"""The detector sees the image with its long side at most this (PP-OCR's default scales the SHORT side up to
736, which on a 4:3 photo means a 980x736 pass anyway, and several times that on a panorama)."""
READ_SIDE = 1600
"""Larger photos are read from a copy this long (boxes mapped back): a 12 MP photo read in place took 25 s, as
RapidOCR cuts and rescales each line from the full image; text a person would call legible survives 1600 px."""
MIN_TEXT_SCORE = 0.7
"""Recognised lines below this score (0-1) are dropped. RapidOCR's own default, 0.5, let texture through as
text on photos without any ("米*" at 0.51 on the rocket sample, "O" at 0.59 on the coffee one); rendered and
photographed signs read at 0.9 and more."""
OCR_THREADS = 1
"""Intra-op threads per model: the app serves several sessions on few cores."""
GLANCE_SIDE = 256
"""``glance`` runs the text detector on a copy this long: about 17 ms, against 0.1 to 1 s for a ``read``. On six
views of each calibration photo, text covering 5% of the copy was on a photo labelled "text" 34 times of 34 at
256 px (25 ms), 32 of 33 at 320 px and 31 of 31 at 224 px (13 ms)."""
GLANCE_LINES = 8
"""``glance`` reads at most this many lines, the largest first."""
GLANCE_LENGTH = 40.0
"""... and stops before their lengths (each line's width over its height, about its number of characters) pass
this: the recogniser's cost grows with a line's length (a 50-character line costs some 0.2 s here), and a page
of text would otherwise take a second."""
GLANCE_READ_SIDE = 640
"""``glance`` reads its lines from a copy this long (the detector ran on a smaller one)."""


@dataclass(frozen=True)
class TextRegion:
    """One line of text: what it says, how sure the recogniser is (0-100), and where (image pixels)."""

    text: str
    confidence: float
    polygon: tuple[tuple[int, int], ...]

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(xmin, ymin, xmax, ymax) around the polygon."""
        xs = [p[0] for p in self.polygon]
        ys = [p[1] for p in self.polygon]
        return min(xs), min(ys), max(xs), max(ys)

    def coordinates(self) -> dict[str, int]:
        """The box in the shared coordinates shape (Imagga's faces/text ``coordinates``)."""
        return box_coordinates(*self.box)

    def as_json(self) -> dict[str, Any]:
        return {
            "data": self.text,
            "confidence": round(self.confidence, 2),
            "coordinates": self.coordinates(),
            "polygon": [list(p) for p in self.polygon],
        }


def box_coordinates(xmin: int, ymin: int, xmax: int, ymax: int) -> dict[str, int]:
    """``{"xmin", "ymin", "xmax", "ymax", "width", "height"}`` (ints) for a pixel box."""
    xmin, ymin, xmax, ymax = int(xmin), int(ymin), int(xmax), int(ymax)
    return {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax, "width": xmax - xmin, "height": ymax - ymin}


def text_response(regions: list[TextRegion]) -> dict[str, Any]:
    """Regions as an Imagga ``/v2/text``-shaped answer, top to bottom, left to right."""
    ordered = sorted(regions, key=lambda r: (r.box[1], r.box[0]))
    return {"result": {"text": [r.as_json() for r in ordered]}, "status": {"text": "", "type": "success"}}


class TextReader:
    """RapidOCR loaded once (a second or two); ``read`` is thread-safe (calls are serialised)."""

    def __init__(self, *, detect_side: int = DETECT_SIDE, min_score: float = MIN_TEXT_SCORE,
                 threads: int = OCR_THREADS) -> None:
        """Load the three models from the wheel. Raises ``BackendError`` if the package or a model is missing."""
        started = time.perf_counter()
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:  # the package is a pinned requirement; its OpenCV also needs system libraries
            raise BackendError(
                f"Offline text reading is unavailable ({exc}). It needs the rapidocr-onnxruntime package "
                "(pip install -r requirements.txt) and, for its OpenCV, Debian's libgl1 and libglib2.0-0 "
                "(apt-get install libgl1 libglib2.0-0)."
            ) from exc
        try:
            self._engine = RapidOCR(
                text_score=min_score,
                det_limit_side_len=detect_side,
                det_limit_type="max",
                intra_op_num_threads=threads,
                inter_op_num_threads=1,
            )
        except Exception as exc:  # RapidOCR and ONNX Runtime raise their own untyped errors
            raise BackendError(f"The offline text reader could not be loaded: {exc}") from exc
        # RapidOCR keeps per-call state in its helpers; one call at a time is also all two cores can give.
        self._lock = threading.Lock()
        self.load_seconds = time.perf_counter() - started

    def text_share(self, image: Image.Image) -> float:
        """The share (0-1) of the picture the text detector marks as text, on a ``GLANCE_SIDE`` copy; nothing is
        read. A cheap look for whether a read is worth its cost.

        Raises ``BadImageError`` if the image cannot be decoded, ``BackendError`` if the model fails.
        """
        return self.glance(image, read_from=2.0)[0]

    def glance(self, image: Image.Image, read_from: float = 0.0) -> tuple[float, list[TextRegion]]:
        """A quick look: ``text_share``, and when it is at least ``read_from``, the largest ``GLANCE_LINES``
        lines the detector found there, read from a ``GLANCE_READ_SIDE`` copy (no second detection, no
        orientation step: about a tenth of a ``read``), in pixel coordinates of ``image``.

        Raises ``BadImageError`` if the image cannot be decoded, ``BackendError`` if the models fail.
        """
        small, scale = _bgr(image, GLANCE_SIDE)
        try:
            with self._lock:
                found, _ = self._engine.text_det(small)
        except Exception as exc:  # see __init__
            raise BackendError(f"The offline text reader failed: {exc}") from exc
        boxes = [np.asarray(box, dtype=np.float32) for box in (found if found is not None else [])]
        areas = [_polygon_area(box) for box in boxes]
        share = float(min(1.0, sum(areas) / (small.shape[0] * small.shape[1])))
        if not boxes or share < read_from:
            return share, []
        largest: list[np.ndarray] = []
        length = 0.0
        for i in np.argsort(areas)[::-1][:GLANCE_LINES]:
            length += _length(boxes[i])
            if largest and length > GLANCE_LENGTH:
                break
            largest.append(boxes[i])
        pixels, read_scale = _bgr(image, GLANCE_READ_SIDE)
        factor = read_scale / scale
        try:
            with self._lock:
                crops = self._engine.get_crop_img_list(pixels, [box * factor for box in largest])
                lines, _ = self._engine.text_rec(crops)
        except Exception as exc:  # see __init__
            raise BackendError(f"The offline text reader failed: {exc}") from exc
        width, height = image.size
        regions = []
        for box, (text, score) in zip(largest, lines, strict=True):
            text = str(text).strip()
            if score < self._engine.text_score or not any(ch.isalnum() for ch in text):
                continue
            polygon = tuple(
                (int(round(min(max(x / scale, 0), width))), int(round(min(max(y / scale, 0), height)))) for x, y in box
            )
            regions.append(TextRegion(text=text, confidence=float(score) * 100.0, polygon=polygon))
        return share, regions

    def read(self, image: Image.Image, max_side: int = READ_SIDE) -> list[TextRegion]:
        """Every line of text found, in pixel coordinates of ``image`` (empty when there is none), read from a
        copy at most ``max_side`` long.

        Raises ``BadImageError`` if the image cannot be decoded, ``BackendError`` if the models fail.
        """
        pixels, scale = _bgr(image, max_side)
        width, height = image.size
        try:
            with self._lock:
                found, _ = self._engine(pixels)
        except Exception as exc:  # see __init__
            raise BackendError(f"The offline text reader failed: {exc}") from exc
        regions = []
        for points, text, score in found or []:
            text = str(text).strip()
            if not any(ch.isalnum() for ch in text):
                continue
            polygon = tuple(
                (int(round(min(max(x / scale, 0), width))), int(round(min(max(y / scale, 0), height))))
                for x, y in points
            )
            regions.append(TextRegion(text=text, confidence=float(score) * 100.0, polygon=polygon))
        return regions

    def response(self, image: Image.Image) -> dict[str, Any]:
        """``read`` as an Imagga ``/v2/text``-shaped answer."""
        return text_response(self.read(image))


_SHARED: TextReader | None = None
_SHARED_LOCK = threading.Lock()


def shared_reader() -> TextReader:
    """One ``TextReader`` for the process, loaded on first use (the embedded tagger's text glance uses it: every
    tagger instance would otherwise load the three models again)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = TextReader()
        return _SHARED


def _bgr(image: Image.Image, max_side: int) -> tuple[np.ndarray, float]:
    """The image as RapidOCR takes it (OpenCV's BGR), at most ``max_side`` long, and the scale applied."""
    try:
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        width, height = rgb.size
        scale = min(1.0, max_side / max(width, height))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            rgb = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        return np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1]), scale
    except (OSError, ValueError) as exc:
        raise BadImageError(f"The image could not be decoded: {exc}") from exc


def _length(box: np.ndarray) -> float:
    """A text line's length in line heights (its box's long side over its short side)."""
    sides = np.linalg.norm(box - np.roll(box, -1, axis=0), axis=1)
    return float(max(sides[0], sides[1]) / max(1.0, min(sides[0], sides[1])))


def _polygon_area(points: np.ndarray) -> float:
    """Area of a polygon given as (N, 2) corner points (the shoelace formula)."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
