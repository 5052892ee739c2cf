"""Turn a PIL image into a classifier's input array, as a manifest's ``input`` section says."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from tagging.errors import BadImageError

RESIZE_SHORT_SIDE_CROP = "short_side_center_crop"
"""Scale the short side to ``resize_short_side`` and keep the central ``size`` (ImageNet evaluation)."""
RESIZE_SQUASH = "squash"
"""Resize the whole image to ``size`` regardless of its aspect ratio (Places365-style models)."""
RESIZE_MODES = (RESIZE_SHORT_SIDE_CROP, RESIZE_SQUASH)


@dataclass(frozen=True)
class InputSpec:
    """How a model wants its pixels: size, crop, channel order, normalisation, layout."""

    width: int
    height: int
    resize: str = RESIZE_SHORT_SIDE_CROP
    resize_short_side: int | None = None
    channel_order: str = "RGB"
    layout: str = "NCHW"
    scale: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)


def preprocess(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """One image as a float32 array shaped for the model, without the batch axis.

    Raises ``BadImageError`` if the image cannot be decoded.
    """
    try:
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        if spec.resize == RESIZE_SHORT_SIDE_CROP:
            short = spec.resize_short_side or min(spec.width, spec.height)
            # The central region that becomes the crop once the short side is ``short``.
            crop_w = min(width, height) * spec.width / short
            crop_h = min(width, height) * spec.height / short
            left, top = (width - crop_w) / 2, (height - crop_h) / 2
            box: tuple[float, float, float, float] | None = (left, top, left + crop_w, top + crop_h)
        else:
            box = None
        resized = image.resize(
            (spec.width, spec.height),
            Image.Resampling.BILINEAR,
            box=box,
            reducing_gap=3.0,  # box-reduce huge photos first: nearly the same pixels, much faster
        )
    except (OSError, ValueError) as exc:
        raise BadImageError(f"The image could not be decoded: {exc}") from exc
    raw = np.asarray(resized)
    if spec.channel_order == "BGR":
        raw = raw[:, :, ::-1]
    if spec.layout == "NCHW":
        raw = raw.transpose(2, 0, 1)
    # One float copy in the model's layout, then in-place arithmetic: (x * scale - mean) / std per channel.
    pixels = np.array(raw, dtype=np.float32, order="C")
    shape = (3, 1, 1) if spec.layout == "NCHW" else (1, 1, 3)
    mean = np.asarray(spec.mean, dtype=np.float32).reshape(shape)
    inv_std = (np.float32(1.0) / np.asarray(spec.std, dtype=np.float32)).reshape(shape)
    if spec.scale != 1.0:
        pixels *= np.float32(spec.scale)
    pixels -= mean
    pixels *= inv_std
    return pixels
