"""Smart crops offline, in Imagga's ``/v2/croppings`` shape: the largest crop of each requested aspect ratio,
placed where the photo's importance is.

Importance is the saliency map (``_saliency``) plus every face box (carrying ``FACE_WEIGHT`` times the map's
whole energy, so a crop keeps faces whenever its size allows) and every object box (a share of it, times the
detector's confidence). The crop spans the
whole image along one axis; along the other it slides to the offset whose window holds the most importance
(ties: the more central one). Coordinates are pixels of the EXIF-oriented, full-size image, ``x2``/``y2``
inclusive as Imagga sends them::

    {"result": {"croppings": [{"target_width": 1080, "target_height": 1080,
                               "x1": 120, "y1": 0, "x2": 719, "y2": 599}]}, "status": {...}}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from tagging.analysis._colors import srgb_to_lab
from tagging.analysis._saliency import saliency, small_rgb

ENERGY_SIDE = 64
FACE_WEIGHT = 2.0
"""A face box carries this many times the whole saliency map's energy: keeping a face beats any background."""
OBJECT_WEIGHT = 0.5
"""An object box (times its confidence) carries this share of the map's energy."""
OFFSETS = 129  # candidate positions along the free axis
COMMON_RESOLUTIONS: dict[str, tuple[int, int]] = {"square": (1080, 1080), "16:9": (1920, 1080), "4:5": (1080, 1350)}
"""The crops the Tag page offers: Instagram's square and portrait, and a 16:9 banner."""


def parse_resolution(text: str) -> tuple[int, int]:
    """``"1920x1080"`` -> (1920, 1080). Raises ValueError for anything else."""
    width, sep, height = text.strip().lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or int(width) < 1 or int(height) < 1:
        raise ValueError(f"a resolution is WIDTHxHEIGHT in pixels, e.g. 1080x1080, not {text!r}")
    return int(width), int(height)


def importance_map(image: Image.Image, boxes: Iterable[tuple[tuple[int, int, int, int], float]] = ()) -> np.ndarray:
    """(h, w) importance on a small grid: saliency plus boxes (full-image pixels) carrying ``weight`` times the
    saliency's total, spread over the box."""
    pixels = small_rgb(image, ENERGY_SIDE)
    energy = saliency(srgb_to_lab(pixels))
    total = max(float(energy.sum()), 1.0)
    gh, gw = energy.shape
    width, height = image.size
    for (xmin, ymin, xmax, ymax), weight in boxes:
        x0, x1 = int(np.floor(xmin * gw / width)), int(np.ceil(xmax * gw / width))
        y0, y1 = int(np.floor(ymin * gh / height)), int(np.ceil(ymax * gh / height))
        cells = energy[max(0, y0):max(0, y1), max(0, x0):max(0, x1)]
        if cells.size:
            cells += weight * total / cells.size
    return energy


def best_crop(size: tuple[int, int], target: tuple[int, int], energy: np.ndarray) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2), inclusive pixels: the largest ``target``-shaped crop holding the most ``energy``."""
    width, height = size
    aspect = target[0] / target[1]
    crop_w, crop_h = min(width, max(1, round(height * aspect))), min(height, max(1, round(width / aspect)))
    gh, gw = energy.shape
    if crop_w < width:  # slide horizontally
        offset = _best_offset(energy.sum(axis=0), crop_w / width * gw)
        x1 = min(width - crop_w, max(0, round(offset * width / gw)))
        return x1, 0, x1 + crop_w - 1, crop_h - 1
    offset = _best_offset(energy.sum(axis=1), crop_h / height * gh)
    y1 = min(height - crop_h, max(0, round(offset * height / gh)))
    return 0, y1, crop_w - 1, y1 + crop_h - 1


def _best_offset(profile: np.ndarray, window: float) -> float:
    """Where a window of ``window`` cells (fractional) over ``profile`` holds the most; ties go to the centre."""
    room = len(profile) - window
    if room <= 0:
        return 0.0
    edges = np.arange(len(profile) + 1, dtype=np.float64)
    total = np.concatenate([[0.0], np.cumsum(profile)])
    starts = np.linspace(0.0, room, OFFSETS)
    held = np.interp(starts + window, edges, total) - np.interp(starts, edges, total)
    off_centre = np.abs(starts - room / 2) / max(room, 1e-9)
    return float(starts[np.argmax(held - 1e-6 * held.max() * off_centre)])


def _box(item: Mapping[str, Any]) -> tuple[int, int, int, int]:
    c = item["coordinates"]
    return int(c["xmin"]), int(c["ymin"]), int(c["xmax"]), int(c["ymax"])


def croppings_response(
    image: Image.Image,
    resolutions: Sequence[tuple[int, int]],
    *,
    faces: Sequence[Mapping[str, Any]] = (),
    objects: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Crops for each resolution as an Imagga ``/v2/croppings``-shaped answer (faces/objects in the shared shape)."""
    boxes = [(_box(f), FACE_WEIGHT) for f in faces]
    boxes += [(_box(o), OBJECT_WEIGHT * float(o.get("confidence", 100.0)) / 100.0) for o in objects]
    energy = importance_map(image, boxes)
    croppings = []
    for width, height in resolutions:
        x1, y1, x2, y2 = best_crop(image.size, (width, height), energy)
        croppings.append({"target_width": int(width), "target_height": int(height),
                          "x1": x1, "y1": y1, "x2": x2, "y2": y2})
    return {"result": {"croppings": croppings}, "status": {"text": "", "type": "success"}}
