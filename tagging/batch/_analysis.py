"""The Batch table's analysis columns: face count, dominant colour, text found, per image of a batch.

Faces come from the tags answer when the backend detects them (the embedded tagger's ``result.faces``: absent
means none); the dominant colour from the offline colour analysis of the image (about 20 ms); text only when a
``TextReader`` is given (offline OCR takes a fraction of a second per photo, so the page asks first). Nothing
here calls a paid endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image

from tagging.analysis import COLORS, FACES, TEXT, Summary, colors_response, summarise
from tagging.batch._items import BatchItem, ItemResult
from tagging.errors import BackendError, BadImageError
from tagging.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, load_image, make_thumbnail

SUMMARY_COLUMNS = ("faces", "dominant colour", "text found")
THUMBNAIL_SIDE = 96  # px: the Batch table's thumbnails (a 64 px row shows them whole)
THUMBNAILS_KEPT = 200  # images given a thumbnail per batch: bounded memory, and the table's first rows


def summary_of(payload: Mapping[str, Any] | None, image: Image.Image | None, *, faces_known: bool,
               text_reader: Any | None = None) -> Summary:
    """One image's summary from its tags answer and (when given) its pixels."""
    answers: dict[str, Any] = {}
    result = (payload or {}).get("result") or {}
    if "faces" in result or faces_known:
        answers[FACES] = {"result": {"faces": list(result.get("faces") or [])}}
    if image is not None:
        answers[COLORS] = colors_response(image)
        if text_reader is not None:
            answers[TEXT] = text_reader.response(image)
    return summarise(answers)


def analyse_batch(
    results: Sequence[ItemResult], items_by_key: Mapping[str, BatchItem], *, faces_known: bool,
    text_reader: Any | None = None, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS,
    thumbnails: dict[str, bytes] | None = None,
) -> dict[str, Summary]:
    """Image key -> summary for every tagged image (each image read once; one that cannot be read keeps what
    its answer says). With ``thumbnails`` also fills it, image key -> a small JPEG, for the first
    ``THUMBNAILS_KEPT`` images read (from the same read)."""
    found: dict[str, Summary] = {}
    for r in results:
        if not r.tagged or r.image_key in found:
            continue
        image = None
        item = items_by_key.get(r.image_key)
        if item is not None:
            try:
                image = load_image(item.read(), r.name, max_bytes=max_bytes, max_pixels=max_pixels).image
            except BadImageError:
                image = None
        if image is not None and thumbnails is not None and len(thumbnails) < THUMBNAILS_KEPT:
            thumbnails[r.image_key] = make_thumbnail(image, THUMBNAIL_SIDE)
        try:
            found[r.image_key] = summary_of(r.payload, image, faces_known=faces_known, text_reader=text_reader)
        except (BadImageError, BackendError):
            found[r.image_key] = summary_of(r.payload, None, faces_known=faces_known)
    return found


def summary_columns(summary: Summary | None) -> dict[str, Any]:
    """The table cells of one image (None: not analysed)."""
    summary = summary or Summary()
    return {"faces": summary.face_count, "dominant colour": summary.dominant_color, "text found": summary.text_found}
