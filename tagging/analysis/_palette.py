"""The named colour palette: CSS Color Module Level 4's named colours, each under a parent colour.

The names and their sRGB values come from Pillow's ``ImageColor.colormap`` (the CSS/SVG named colours; Pillow is
HPND-licensed, the list itself is the W3C's CSS Color Module Level 4, W3C Document License), read in place: no
copy to keep in step. Spelling variants with the same value (``grey``/``gray``, ``aqua``/``cyan``,
``fuchsia``/``magenta``) keep the first name in ``PREFERRED``'s order or alphabetically.

The parents are the eleven basic colour terms (Berlin and Kay) plus cyan, and the grouping follows the usual
grouping of the CSS names by hue family (pinks, purples, reds, oranges, yellows, greens, cyans, blues, browns,
whites, greys), written here; ``black`` is its own parent, as in Imagga's palette.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import ImageColor

PARENTS: dict[str, tuple[str, ...]] = {
    "pink": ("pink", "lightpink", "hotpink", "deeppink", "palevioletred", "mediumvioletred"),
    "purple": ("lavender", "thistle", "plum", "orchid", "violet", "fuchsia", "magenta", "mediumorchid",
               "darkorchid", "darkviolet", "blueviolet", "darkmagenta", "purple", "mediumpurple",
               "mediumslateblue", "slateblue", "darkslateblue", "rebeccapurple", "indigo"),
    "red": ("lightsalmon", "salmon", "darksalmon", "lightcoral", "indianred", "crimson", "red", "firebrick",
            "darkred"),
    "orange": ("orange", "darkorange", "coral", "tomato", "orangered"),
    "yellow": ("gold", "yellow", "lightyellow", "lemonchiffon", "lightgoldenrodyellow", "papayawhip", "moccasin",
               "peachpuff", "palegoldenrod", "khaki", "darkkhaki"),
    "green": ("greenyellow", "chartreuse", "lawngreen", "lime", "limegreen", "palegreen", "lightgreen",
              "mediumspringgreen", "springgreen", "mediumseagreen", "seagreen", "forestgreen", "green",
              "darkgreen", "yellowgreen", "olivedrab", "olive", "darkolivegreen", "mediumaquamarine",
              "darkseagreen", "lightseagreen", "darkcyan", "teal"),
    "cyan": ("aqua", "cyan", "lightcyan", "paleturquoise", "aquamarine", "turquoise", "mediumturquoise",
             "darkturquoise"),
    "blue": ("cadetblue", "steelblue", "lightsteelblue", "powderblue", "lightblue", "skyblue", "lightskyblue",
             "deepskyblue", "dodgerblue", "cornflowerblue", "royalblue", "blue", "mediumblue", "darkblue", "navy",
             "midnightblue"),
    "brown": ("cornsilk", "blanchedalmond", "bisque", "navajowhite", "wheat", "burlywood", "tan", "rosybrown",
              "sandybrown", "goldenrod", "darkgoldenrod", "peru", "chocolate", "saddlebrown", "sienna", "brown",
              "maroon"),
    "white": ("white", "snow", "honeydew", "mintcream", "azure", "aliceblue", "ghostwhite", "whitesmoke",
              "seashell", "beige", "oldlace", "floralwhite", "ivory", "antiquewhite", "linen", "lavenderblush",
              "mistyrose"),
    "gray": ("gainsboro", "lightgray", "lightgrey", "silver", "darkgray", "darkgrey", "gray", "grey", "dimgray",
             "dimgrey", "lightslategray", "lightslategrey", "slategray", "slategrey", "darkslategray",
             "darkslategrey"),
    "black": ("black",),
}
PREFERRED = ("gray", "cyan", "magenta")  # of two names for one value, keep this one


@dataclass(frozen=True)
class Palette:
    """Named colours: ``names[i]`` has sRGB ``rgb[i]``, CIELAB ``lab[i]`` and parent ``parents[i]``."""

    names: tuple[str, ...]
    parents: tuple[str, ...]
    rgb: np.ndarray  # (N, 3) uint8
    lab: np.ndarray  # (N, 3) float64

    def html(self, index: int) -> str:
        return html_code(self.rgb[index])

    def nearest(self, lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each CIELAB row: the index of the nearest palette colour and its distance (CIE94 ΔE)."""
        lab = np.atleast_2d(lab)
        distances = delta_e94(lab[:, None, :], self.lab[None, :, :])
        index = distances.argmin(axis=1)
        return index, distances[np.arange(len(lab)), index]


def delta_e94(sample: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """CIE94 colour difference (graphic arts weights) of ``sample`` from ``reference``, broadcast over rows.

    Plain Euclidean CIELAB distance (CIE76) over-weights chroma: it names a dark red "orangered" because a
    difference in saturation counts as much as one in hue. CIE94 scales chroma and hue differences by the
    reference's chroma, as perceived.
    """
    dl = sample[..., 0] - reference[..., 0]
    c1 = np.hypot(reference[..., 1], reference[..., 2])
    c2 = np.hypot(sample[..., 1], sample[..., 2])
    dc = c1 - c2
    da = sample[..., 1] - reference[..., 1]
    db = sample[..., 2] - reference[..., 2]
    dh_squared = np.maximum(da**2 + db**2 - dc**2, 0.0)
    return np.sqrt(dl**2 + (dc / (1 + 0.045 * c1)) ** 2 + dh_squared / (1 + 0.015 * c1) ** 2)


def html_code(rgb: np.ndarray | tuple[int, int, int]) -> str:
    r, g, b = (int(v) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


@cache
def css_palette() -> Palette:
    """The CSS named colours with their parents, one entry per distinct value."""
    from tagging.analysis._colors import srgb_to_lab

    parent_of = {name: parent for parent, names in PARENTS.items() for name in names}
    by_value: dict[tuple[int, int, int], str] = {}
    for name in sorted(ImageColor.colormap, key=lambda n: (n not in PREFERRED, n)):
        value = ImageColor.getrgb(name)[:3]
        by_value.setdefault(value, name)
    names = tuple(sorted(by_value.values()))
    missing = [n for n in names if n not in parent_of]
    if missing:  # a newer Pillow with more names: fail loudly here, not with a nameless colour later
        raise RuntimeError(f"palette colours without a parent: {', '.join(missing)}")
    rgb = np.array([ImageColor.getrgb(n)[:3] for n in names], dtype=np.uint8)
    return Palette(names, tuple(parent_of[n] for n in names), rgb, srgb_to_lab(rgb.astype(np.float64)))
