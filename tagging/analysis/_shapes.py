"""The JSON shapes of Imagga's analysis endpoints, checked in one place for both backends.

``check`` is what the Imagga client runs on an answer before returning (and caching) it, and what the tests
run on the offline answers: one definition of "Imagga-shaped". ``rescale`` maps an answer computed on a resized
copy back onto the full-size image, so every box is in pixels of the EXIF-oriented original.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FACES, COLORS, TEXT, CROPPINGS = "faces", "colors", "text", "croppings"
ENDPOINTS = (FACES, COLORS, TEXT, CROPPINGS)
PATHS = {FACES: "/faces/detections", COLORS: "/colors", TEXT: "/text", CROPPINGS: "/croppings"}
"""Each endpoint's path under ``/v2``."""
TITLES = {FACES: "Faces", COLORS: "Colours", TEXT: "Text", CROPPINGS: "Crops"}
BOX_KEYS = ("xmin", "ymin", "xmax", "ymax", "width", "height")
COLOR_KEYS = ("r", "g", "b", "html_code", "percent", "closest_palette_color", "closest_palette_color_parent",
              "closest_palette_distance")
COLOR_LISTS = ("background_colors", "foreground_colors", "image_colors")
CROP_KEYS = ("target_width", "target_height", "x1", "y1", "x2", "y2")


class ShapeError(ValueError):
    """An answer does not have the endpoint's shape; the message says where."""


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ShapeError(f"{where} is not a number")
    return float(value)


def _box(value: Any, where: str) -> None:
    if not isinstance(value, Mapping):
        raise ShapeError(f"{where} is not an object")
    for key in BOX_KEYS:
        _number(value.get(key), f"{where}.{key}")
    if value["xmax"] < value["xmin"] or value["ymax"] < value["ymin"]:
        raise ShapeError(f"{where} has its corners swapped")


def _items(body: Mapping[str, Any], key: str) -> list[Any]:
    result = body.get("result")
    if not isinstance(result, Mapping):
        raise ShapeError("the answer has no result")
    items = result.get(key)
    if not isinstance(items, list):
        raise ShapeError(f"result.{key} is not a list")
    return items


def check(endpoint: str, body: Mapping[str, Any]) -> None:
    """Raise ``ShapeError`` unless ``body`` is a well-formed answer of ``endpoint`` (extra keys are fine)."""
    if endpoint == FACES:
        for i, face in enumerate(_items(body, "faces")):
            if not isinstance(face, Mapping):
                raise ShapeError(f"faces[{i}] is not an object")
            _number(face.get("confidence"), f"faces[{i}].confidence")
            _box(face.get("coordinates"), f"faces[{i}].coordinates")
            if not isinstance(face.get("face_id", ""), str):
                raise ShapeError(f"faces[{i}].face_id is not a string")
    elif endpoint == COLORS:
        result = body.get("result")
        colors = result.get("colors") if isinstance(result, Mapping) else None
        if not isinstance(colors, Mapping):
            raise ShapeError("result.colors is not an object")
        for name in COLOR_LISTS:
            items = colors.get(name, [])
            if not isinstance(items, list):
                raise ShapeError(f"colors.{name} is not a list")
            for i, item in enumerate(items):
                where = f"colors.{name}[{i}]"
                if not isinstance(item, Mapping):
                    raise ShapeError(f"{where} is not an object")
                for key in ("r", "g", "b", "percent", "closest_palette_distance"):
                    _number(item.get(key), f"{where}.{key}")
                for key in ("html_code", "closest_palette_color", "closest_palette_color_parent"):
                    if not isinstance(item.get(key), str):
                        raise ShapeError(f"{where}.{key} is not a string")
    elif endpoint == TEXT:
        for i, item in enumerate(_items(body, "text")):
            if not isinstance(item, Mapping) or not isinstance(item.get("data"), str):
                raise ShapeError(f"text[{i}].data is not a string")
            if "coordinates" in item:
                _box(item["coordinates"], f"text[{i}].coordinates")
    elif endpoint == CROPPINGS:
        for i, item in enumerate(_items(body, "croppings")):
            if not isinstance(item, Mapping):
                raise ShapeError(f"croppings[{i}] is not an object")
            for key in CROP_KEYS:
                _number(item.get(key), f"croppings[{i}].{key}")
    else:
        raise ValueError(f"unknown analysis endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}")


def _scale_box(box: dict[str, Any], sx: float, sy: float, size: tuple[int, int]) -> None:
    width, height = size
    box["xmin"] = min(width, max(0, round(box["xmin"] * sx)))
    box["xmax"] = min(width, max(0, round(box["xmax"] * sx)))
    box["ymin"] = min(height, max(0, round(box["ymin"] * sy)))
    box["ymax"] = min(height, max(0, round(box["ymax"] * sy)))
    box["width"], box["height"] = box["xmax"] - box["xmin"], box["ymax"] - box["ymin"]


def rescale(endpoint: str, body: Mapping[str, Any], sent: tuple[int, int], size: tuple[int, int]) -> dict[str, Any]:
    """A copy of an answer about an image ``sent`` (width, height) with its pixel coordinates mapped onto ``size``.

    Colours have no coordinates and come back unchanged (copied).
    """
    out = copy.deepcopy(dict(body))
    sx, sy = size[0] / sent[0], size[1] / sent[1]
    if (sx, sy) == (1.0, 1.0) or endpoint == COLORS:
        return out
    result = out.get("result", {})
    if endpoint in (FACES, TEXT):
        for item in result.get("faces" if endpoint == FACES else "text", []):
            if isinstance(item.get("coordinates"), dict):
                _scale_box(item["coordinates"], sx, sy, size)
            if isinstance(item.get("polygon"), list):
                item["polygon"] = [[round(x * sx), round(y * sy)] for x, y in item["polygon"]]
    elif endpoint == CROPPINGS:
        for item in result.get("croppings", []):
            item["x1"], item["x2"] = (min(size[0] - 1, max(0, round(item[k] * sx))) for k in ("x1", "x2"))
            item["y1"], item["y2"] = (min(size[1] - 1, max(0, round(item[k] * sy))) for k in ("y1", "y2"))
    return out


@dataclass(frozen=True)
class Summary:
    """What the Batch and Library tables show of an image's analysis (None: not analysed)."""

    face_count: int | None = None
    dominant_color: str | None = None  # the palette name of the image's most common colour
    dominant_parent: str | None = None  # and its parent (red, blue, ...), what the Library filters by
    text_found: bool | None = None


def summarise(answers: Mapping[str, Mapping[str, Any]]) -> Summary:
    """The table columns from whichever answers there are (endpoint -> answer body)."""
    faces = answers.get(FACES)
    colors = answers.get(COLORS)
    text = answers.get(TEXT)
    image_colors = colors["result"]["colors"].get("image_colors", []) if colors else []
    top = max(image_colors, key=lambda c: c["percent"]) if image_colors else None
    return Summary(
        face_count=len(faces["result"]["faces"]) if faces else None,
        dominant_color=top["closest_palette_color"] if top else None,
        dominant_parent=top["closest_palette_color_parent"] if top else None,
        text_found=any(t["data"].strip() for t in text["result"]["text"]) if text else None,
    )
