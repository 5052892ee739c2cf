"""Analysis answers drawn on the photo, and crops cut from it (Pillow only; the Tag page shows the results).

Every answer's coordinates are pixels of the EXIF-oriented, full-size image; the overlay is drawn on a copy
scaled to ``max_side``, each box scaled by the same factor, so it stays on its object whatever the display size.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image, ImageDraw

FACE_COLOUR = (255, 214, 0)
OBJECT_COLOUR = (0, 200, 255)
TEXT_COLOUR = (255, 0, 200)
CROP_COLOURS = ((255, 64, 64), (64, 255, 96), (160, 120, 255), (255, 160, 0))


def _scaled(image: Image.Image, max_side: int) -> tuple[Image.Image, float]:
    scale = min(1.0, max_side / max(image.size))
    if scale >= 1.0:
        return image.convert("RGB").copy(), 1.0
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.convert("RGB").resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0), scale


def _rect(box: Mapping[str, Any], scale: float) -> tuple[int, int, int, int]:
    return (round(box["xmin"] * scale), round(box["ymin"] * scale),
            round(box["xmax"] * scale), round(box["ymax"] * scale))


def draw_overlay(
    image: Image.Image,
    *,
    faces: Sequence[Mapping[str, Any]] = (),
    objects: Sequence[Mapping[str, Any]] = (),
    text: Sequence[Mapping[str, Any]] = (),
    crops: Sequence[Mapping[str, Any]] = (),
    max_side: int = 1024,
) -> Image.Image:
    """A copy of ``image`` at most ``max_side`` long with the boxes drawn (faces, objects, text, crops)."""
    canvas, scale = _scaled(image, max_side)
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(max(canvas.size) / 300))
    for i, crop in enumerate(crops):
        rect = (round(crop["x1"] * scale), round(crop["y1"] * scale),
                round((crop["x2"] + 1) * scale) - 1, round((crop["y2"] + 1) * scale) - 1)
        draw.rectangle(rect, outline=CROP_COLOURS[i % len(CROP_COLOURS)], width=width)
    for item in text:
        if "coordinates" in item:
            draw.rectangle(_rect(item["coordinates"], scale), outline=TEXT_COLOUR, width=width)
    for item in objects:
        rect = _rect(item["coordinates"], scale)
        draw.rectangle(rect, outline=OBJECT_COLOUR, width=width)
        name = (item.get("tag") or {}).get("en")
        if name:
            draw.text((rect[0] + width + 1, rect[1] + width + 1), str(name)[:40], fill=OBJECT_COLOUR)
    for face in faces:
        draw.rectangle(_rect(face["coordinates"], scale), outline=FACE_COLOUR, width=width)
    return canvas


def crop_jpeg(image: Image.Image, crop: Mapping[str, Any], quality: int = 90) -> bytes:
    """The crop (``x2``/``y2`` inclusive, full-size pixels) of ``image`` as JPEG bytes."""
    box = (int(crop["x1"]), int(crop["y1"]), int(crop["x2"]) + 1, int(crop["y2"]) + 1)
    out = io.BytesIO()
    image.convert("RGB").crop(box).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def swatches(colors: Sequence[Mapping[str, Any]], size: tuple[int, int] = (480, 40)) -> Image.Image:
    """A strip of the colours, each as wide as its percent (an empty list gives a grey strip)."""
    strip = Image.new("RGB", size, (230, 230, 230))
    draw = ImageDraw.Draw(strip)
    total = sum(float(c["percent"]) for c in colors) or 1.0
    x = 0.0
    for colour in colors:
        step = size[0] * float(colour["percent"]) / total
        draw.rectangle((round(x), 0, round(x + step), size[1]), fill=(int(colour["r"]), int(colour["g"]),
                                                                     int(colour["b"])))
        x += step
    return strip
