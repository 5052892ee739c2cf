"""The embedded offline tagger that ships with the project (no key, no network).

An ONNX classifier described by a manifest (the shipped EfficientNet-Lite0, or a model a user adds to
``models/``), a vocabulary that turns classes into words, BlazeFace for faces and people, offline
categorizers in Imagga's categorizer JSON shape, and RapidOCR for text (``_ocr``). Runs on ONNX Runtime;
torch is only used once, by ``scripts/export_onnx.py``.
"""

from tagging.embedded._categorizers import (
    CATEGORIZERS,
    NSFW_ID,
    PERSONAL_PHOTOS_ID,
    NsfwModel,
    OfflineCategorizer,
    categorize,
    parse_categories,
)
from tagging.embedded._manifest import (
    DEFAULT_MANIFEST_ID,
    Manifest,
    ManifestError,
    list_manifests,
    load_manifest,
)
from tagging.embedded._ocr import TextReader, TextRegion, box_coordinates, text_response
from tagging.embedded._people import Face, FaceDetector, faces_json
from tagging.embedded._tagger import MAX_TAGS, MIN_CONFIDENCE, EmbeddedTagger, face_confidence

__all__ = [
    "CATEGORIZERS", "DEFAULT_MANIFEST_ID", "MAX_TAGS", "MIN_CONFIDENCE", "NSFW_ID", "PERSONAL_PHOTOS_ID",
    "EmbeddedTagger", "Face", "FaceDetector", "Manifest", "ManifestError", "NsfwModel", "OfflineCategorizer",
    "TextReader", "TextRegion", "box_coordinates", "categorize", "face_confidence", "faces_json", "list_manifests",
    "load_manifest", "parse_categories", "text_response",
]
