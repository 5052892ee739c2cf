"""The offline answers of the four analysis endpoints, in Imagga's shapes (see ``_shapes``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image

from tagging.analysis._colors import colors_response
from tagging.analysis._crops import croppings_response
from tagging.analysis._shapes import COLORS, CROPPINGS, FACES, TEXT


class OfflineAnalyzer:
    """Faces (BlazeFace), colours, text (RapidOCR) and crops without a network; models load on first use.

    ``face_detector`` and ``text_reader`` may be injected (shared with the tagger, or fakes in tests of other
    layers); otherwise they are made when first needed.
    """

    def __init__(self, face_detector: Any | None = None, text_reader: Any | None = None) -> None:
        self._faces = face_detector
        self._text = text_reader

    @property
    def face_detector(self) -> Any:
        if self._faces is None:
            from tagging.embedded import FaceDetector

            self._faces = FaceDetector()
        return self._faces

    @property
    def text_reader(self) -> Any:
        if self._text is None:
            from tagging.embedded import TextReader

            self._text = TextReader()
        return self._text

    def faces(self, image: Image.Image) -> dict[str, Any]:
        """``/v2/faces/detections``: every face with its pixel box, best first."""
        from tagging.embedded import faces_json

        found = self.face_detector.detect(image)
        return {"result": {"faces": faces_json(found, image.size)}, "status": {"text": "", "type": "success"}}

    def colors(self, image: Image.Image) -> dict[str, Any]:
        """``/v2/colors``: image, foreground and background colours."""
        return colors_response(image)

    def text(self, image: Image.Image) -> dict[str, Any]:
        """``/v2/text``: every line of text with its box."""
        return self.text_reader.response(image)

    def croppings(
        self,
        image: Image.Image,
        resolutions: Sequence[tuple[int, int]],
        *,
        faces: Sequence[Mapping[str, Any]] | None = None,
        objects: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        """``/v2/croppings``: one crop per resolution, keeping faces (found here unless given) and objects."""
        if faces is None:
            faces = self.faces(image)["result"]["faces"]
        return croppings_response(image, resolutions, faces=faces, objects=objects)

    def answer(
        self, endpoint: str, image: Image.Image, *, resolutions: Sequence[tuple[int, int]] = (),
        faces: Sequence[Mapping[str, Any]] | None = None, objects: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        """One endpoint's answer by name (``faces``, ``colors``, ``text``, ``croppings``)."""
        if endpoint == FACES:
            return self.faces(image)
        if endpoint == COLORS:
            return self.colors(image)
        if endpoint == TEXT:
            return self.text(image)
        if endpoint == CROPPINGS:
            return self.croppings(image, resolutions, faces=faces, objects=objects)
        raise ValueError(f"unknown analysis endpoint {endpoint!r}")
