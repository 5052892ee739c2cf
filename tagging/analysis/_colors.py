"""Dominant colours offline, in Imagga's ``/v2/colors`` shape: k-means in CIELAB, named from the CSS palette.

The photo is shrunk to ``COLOR_SIDE`` pixels on its long side (colour shares do not need more), converted to
CIELAB (D65), where Euclidean distance follows perceived difference far better than in RGB, and clustered with
k-means (k-means++ seeded with a fixed seed, so one photo always gives one answer). Clusters closer than
``MERGE_DELTA_E`` are merged and those under ``PERCENT_THRESHOLD`` percent dropped, as Imagga's
``color_percent_threshold`` does. Each colour is the mean sRGB of its pixels, named by the nearest palette colour
by CIE94 ΔE (``closest_palette_distance``) and that colour's parent.

Foreground and background split the pixels by ``_saliency.foreground_mask`` (colour contrast with the border,
weighted to the centre); ``object_percentage`` is the foreground's share.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from tagging.analysis._palette import Palette, css_palette, html_code
from tagging.analysis._saliency import foreground_mask, small_rgb

COLOR_SIDE = 80
IMAGE_COLORS = 5
SEPARATED_COLORS = 3
PERCENT_THRESHOLD = 1.75
MERGE_DELTA_E = 8.0
ITERATIONS = 12
SEED = 0
# sRGB (D65) to XYZ, and the D65 white point.
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_WHITE = np.array([0.95047, 1.0, 1.08883])


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB values 0-255 (any shape ending in 3) to CIELAB (D65), float64."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def kmeans(points: np.ndarray, k: int, *, iterations: int = ITERATIONS, seed: int = SEED) -> np.ndarray:
    """Cluster labels of ``points`` (N, D) into at most ``k`` clusters: k-means++ seeding, Lloyd iterations."""
    n = len(points)
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    centres = [points[rng.integers(n)]]
    nearest = np.sum((points - centres[0]) ** 2, axis=1)
    for _ in range(1, k):
        total = nearest.sum()
        if total <= 0:
            break
        centres.append(points[rng.choice(n, p=nearest / total)])
        nearest = np.minimum(nearest, np.sum((points - centres[-1]) ** 2, axis=1))
    centre_array = np.array(centres)
    squared = np.einsum("ij,ij->i", points, points)
    labels = np.zeros(n, dtype=np.int64)
    for step in range(iterations):
        # |p - c|^2 = |p|^2 - 2 p.c + |c|^2: one matrix product instead of an (N, k, D) array.
        distances = squared[:, None] - 2.0 * points @ centre_array.T + np.einsum("ij,ij->i", centre_array,
                                                                              centre_array)[None, :]
        new = distances.argmin(axis=1)
        if step and np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=len(centre_array))
        for d in range(points.shape[1]):
            sums = np.bincount(labels, weights=points[:, d], minlength=len(centre_array))
            centre_array[:, d] = np.where(counts > 0, sums / np.maximum(counts, 1), centre_array[:, d])
    return labels


def dominant_colors(
    rgb: np.ndarray, lab: np.ndarray, k: int, palette: Palette, *, threshold: float = PERCENT_THRESHOLD
) -> list[dict[str, Any]]:
    """The main colours of some pixels (rows of ``rgb``/``lab``), most common first, in Imagga's item shape."""
    if len(rgb) == 0:
        return []
    labels = kmeans(lab, k)
    groups = [np.flatnonzero(labels == j) for j in range(labels.max() + 1)]
    groups = [g for g in groups if len(g)]
    # Merge clusters a person would call the same colour (k-means splits big areas of one colour).
    merged = True
    while merged and len(groups) > 1:
        merged = False
        centres = np.array([lab[g].mean(axis=0) for g in groups])
        gaps = np.linalg.norm(centres[:, None] - centres[None, :], axis=2) + np.eye(len(groups)) * 1e9
        i, j = np.unravel_index(gaps.argmin(), gaps.shape)
        if gaps[i, j] < MERGE_DELTA_E:
            groups[i] = np.concatenate([groups[i], groups[j]])
            del groups[j]
            merged = True
    colors = []
    total = len(rgb)
    for group in sorted(groups, key=len, reverse=True):
        percent = 100.0 * len(group) / total
        if percent < threshold:
            continue
        mean_rgb = np.clip(np.rint(rgb[group].mean(axis=0)), 0, 255).astype(int)
        index, distance = palette.nearest(srgb_to_lab(mean_rgb.astype(np.float64)))
        colors.append({
            "r": int(mean_rgb[0]), "g": int(mean_rgb[1]), "b": int(mean_rgb[2]),
            "html_code": html_code(mean_rgb),
            "percent": round(percent, 2),
            "closest_palette_color": palette.names[int(index[0])],
            "closest_palette_color_html_code": palette.html(int(index[0])),
            "closest_palette_color_parent": palette.parents[int(index[0])],
            "closest_palette_distance": round(float(distance[0]), 2),
        })
    return colors


def colors_response(image: Image.Image, *, palette: Palette | None = None) -> dict[str, Any]:
    """Image, foreground and background colours of a photo, as an Imagga ``/v2/colors``-shaped answer."""
    palette = palette or css_palette()
    pixels = small_rgb(image, COLOR_SIDE)
    lab_grid = srgb_to_lab(pixels)
    mask = foreground_mask(lab_grid)
    rgb, lab, flat_mask = pixels.reshape(-1, 3), lab_grid.reshape(-1, 3), mask.reshape(-1)
    result = {
        "background_colors": dominant_colors(rgb[~flat_mask], lab[~flat_mask], SEPARATED_COLORS, palette),
        "foreground_colors": dominant_colors(rgb[flat_mask], lab[flat_mask], SEPARATED_COLORS, palette),
        "image_colors": dominant_colors(rgb, lab, IMAGE_COLORS, palette),
        "color_percent_threshold": PERCENT_THRESHOLD,
        "color_variance": int(round(float(np.sqrt(lab.var(axis=0).sum())))),
        "object_percentage": round(100.0 * float(flat_mask.mean()), 2),
    }
    return {"result": {"colors": result}, "status": {"text": "", "type": "success"}}
