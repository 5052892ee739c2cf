"""Imagga's analysis endpoints beside tagging: faces, colours, text and smart crops.

Each is asked like ``/v2/tags``: ``POST`` with the image bytes in the multipart field ``image``, or ``GET`` with
``image_url`` (or ``image_upload_id``), through the same ``ImaggaClient._request`` (retries, 429, 401, timeouts,
secrets scrubbed from every message). An answer is checked against the endpoint's shape
(``tagging.analysis.check``) before it is returned, so a malformed one is never cached::

    GET /v2/faces/detections  -> {"result": {"faces": [{"confidence", "coordinates": {xmin, ymin, xmax, ymax,
                                  width, height}, "face_id"}]}}
    GET /v2/colors            -> {"result": {"colors": {"background_colors", "foreground_colors", "image_colors":
                                  [{r, g, b, html_code, percent, closest_palette_color, ..._parent, ..._distance}],
                                  "object_percentage", ...}}}
    GET /v2/text              -> {"result": {"text": [{"data", "coordinates"}]}}
    GET /v2/croppings?resolution=1080x1080,1920x1080
                              -> {"result": {"croppings": [{target_width, target_height, x1, y1, x2, y2}]}}

The query parameters Imagga documents for colours (``extract_overall_colors``, ``extract_object_colors``,
``overall_count``, ``separated_count``) and crops (``no_scaling``) are passed through ``params``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tagging.analysis import CROPPINGS, ENDPOINTS, PATHS, ShapeError, check

DEFAULT_PARAMS: dict[str, dict[str, str]] = {
    "colors": {"extract_overall_colors": "1", "extract_object_colors": "1", "overall_count": "5",
               "separated_count": "3"},
    "croppings": {"no_scaling": "1"},
}
"""Sent unless ``params`` overrides them: every colour list, and crops at the image's own scale."""


@dataclass(frozen=True)
class AnalysisResponse:
    """A successful answer of one analysis endpoint (``raw`` is the whole JSON body, shape-checked)."""

    endpoint: str
    raw: dict[str, Any] = field(repr=False)


def analysis_query(
    endpoint: str, resolutions: Sequence[tuple[int, int]] = (), params: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The query string of an endpoint. Raises ValueError for an unknown endpoint or crops without resolutions."""
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown analysis endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}")
    query = {**DEFAULT_PARAMS.get(endpoint, {}), **(params or {})}
    if endpoint == CROPPINGS:
        if not resolutions:
            raise ValueError("croppings need at least one resolution (width, height)")
        query["resolution"] = ",".join(f"{int(w)}x{int(h)}" for w, h in resolutions)
    return query


def checked(endpoint: str, body: dict[str, Any]) -> AnalysisResponse:
    """``body`` as an ``AnalysisResponse``, or ``ShapeError`` (the client turns it into MalformedResponseError)."""
    check(endpoint, body)
    return AnalysisResponse(endpoint, body)


__all__ = ["DEFAULT_PARAMS", "PATHS", "AnalysisResponse", "ShapeError", "analysis_query", "checked"]
