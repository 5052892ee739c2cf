"""Whole-picture words that need no model: black and white, dominant colours, colourful.

Computed from the classifier's own input (the central crop, 224 px), so they cost about a millisecond. Each
word's confidence is capped by how often it was right on the calibration half of the evaluation set
(``bench/bench_tagger.py``): a word kept at 60 or more only if its precision there was 90% or more; the others
stay below the default threshold, as suggestions (``CAPS``).
"""

from __future__ import annotations

import numpy as np

GREY_SATURATION = 0.12
"""Pixels less saturated than this count as grey (HSV saturation, 0-1)."""
MONOCHROME_SHARE = 0.985
"""A picture whose share of grey pixels is at least this is black and white."""
MIN_SHARE = 0.12
"""A colour must cover at least this share of the picture to be named."""
HUES: tuple[tuple[str, float, float], ...] = (
    ("red", 0.0, 0.04), ("brownish", 0.04, 0.11), ("yellow", 0.11, 0.19), ("green", 0.19, 0.45),
    ("blue", 0.45, 0.72), ("purple", 0.72, 0.86), ("pink", 0.86, 0.95), ("red", 0.95, 1.01),
)
"""Hue ranges (HSV hue, 0-1) of the colour names, for saturated pixels that are neither too dark nor grey.
Orange hues are counted but not named: in photos they are mostly browns (wood, fur, skin, autumn leaves), and
"orange" was wrong on 12 of 14 calibration photos (it is also the fruit)."""
UNNAMED = frozenset({"brownish"})
CAPS: dict[str, float] = {"black and white": 50.0, "monochrome": 40.0, "colorful": 40.0}
"""Highest confidence per word (see the module docstring); colour names are capped at ``COLOUR_CAP``.

Measured on the calibration half (photos where the word came out: accepted / all): black and white 2/7,
monochrome 1/7, colourful 1/2, green 9/11, blue 5/16, red 2/4, yellow 1/9; "dark" was accepted on 0 of 4 and
is not emitted. None reached 90%, so none goes to 60 or more: they are suggestions. Colour names stay under
the classifier's weaker words (the rocket's "missile 22" must still outrank the sky's "blue")."""
COLOUR_CAP = 15.0


def rgb_to_hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue, saturation and value (each 0-1) of an (..., 3) float array of RGB in 0-1."""
    maximum = rgb.max(axis=-1)
    minimum = rgb.min(axis=-1)
    delta = maximum - minimum
    safe = np.where(delta > 0, delta, 1.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    hue = np.where(maximum == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
    hue = np.where(maximum == r, ((g - b) / safe) % 6.0, hue)
    hue = np.where(delta > 0, hue / 6.0, 0.0)
    saturation = np.where(maximum > 0, delta / np.where(maximum > 0, maximum, 1.0), 0.0)
    return hue, saturation, maximum


def picture_words(rgb: np.ndarray) -> dict[str, float]:
    """Words for the picture as a whole, with confidences 0-100, from an (H, W, 3) RGB array in 0-255."""
    pixels = np.asarray(rgb, dtype=np.float32).reshape(-1, 3) / 255.0
    if pixels.size == 0:
        return {}
    hue, saturation, value = rgb_to_hsv(pixels)
    words: dict[str, float] = {}
    grey = (saturation < GREY_SATURATION) | (value < 0.08)
    grey_share = float(grey.mean())
    if grey_share >= MONOCHROME_SHARE:
        words["black and white"] = 100.0 * grey_share
        words["monochrome"] = 100.0 * grey_share
    coloured = ~grey & (value >= 0.2)
    shares: dict[str, float] = {}
    for name, low, high in HUES:
        shares[name] = shares.get(name, 0.0) + float((coloured & (hue >= low) & (hue < high)).mean())
    named = [name for name, share in shares.items() if share >= MIN_SHARE and name not in UNNAMED]
    for name in named:
        words[name] = 100.0 * min(1.0, shares[name] / 0.5)
    if sum(share >= 0.05 for share in shares.values()) >= 4:
        words["colorful"] = 100.0 * min(1.0, sum(share for share in shares.values() if share >= 0.05))
    return {word: min(confidence, CAPS.get(word, COLOUR_CAP)) for word, confidence in words.items()}
