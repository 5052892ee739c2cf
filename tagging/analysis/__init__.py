"""Image analysis beyond tags, in the shapes of Imagga's v2 endpoints: faces, colours, text and crops.

``OfflineAnalyzer`` answers all four without a network (BlazeFace, k-means in CIELAB with the CSS palette,
RapidOCR, saliency-placed crops); Imagga's answers come from ``tagging.imagga.ImaggaClient.analyse``. Both are
checked by ``check`` and summarised for tables by ``summarise``.
"""

from tagging.analysis._colors import COLOR_SIDE, colors_response, dominant_colors, kmeans, srgb_to_lab
from tagging.analysis._crops import COMMON_RESOLUTIONS, best_crop, croppings_response, parse_resolution
from tagging.analysis._offline import OfflineAnalyzer
from tagging.analysis._overlay import crop_jpeg, draw_overlay, swatches
from tagging.analysis._palette import PARENTS, Palette, css_palette, html_code
from tagging.analysis._saliency import foreground_mask, saliency
from tagging.analysis._shapes import (
    COLORS,
    CROPPINGS,
    ENDPOINTS,
    FACES,
    PATHS,
    TEXT,
    TITLES,
    ShapeError,
    Summary,
    check,
    rescale,
    summarise,
)

__all__ = [
    "COLORS", "COLOR_SIDE", "COMMON_RESOLUTIONS", "CROPPINGS", "ENDPOINTS", "FACES", "PARENTS", "PATHS", "TEXT",
    "TITLES", "OfflineAnalyzer", "Palette", "ShapeError", "Summary", "best_crop", "check", "colors_response",
    "crop_jpeg", "croppings_response", "css_palette", "dominant_colors", "draw_overlay", "foreground_mask",
    "html_code", "kmeans", "parse_resolution", "rescale", "saliency", "srgb_to_lab", "summarise", "swatches",
]
