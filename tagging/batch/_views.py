"""Views of a batch's results: the rule's selection, tables, exports and saving to the store."""

from __future__ import annotations

import csv
import io
import json
import textwrap
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, Any

import pandas as pd

from tagging.analysis import Summary
from tagging.backends import TagRequest
from tagging.batch._analysis import SUMMARY_COLUMNS, summary_columns
from tagging.batch._items import BatchItem, ItemResult
from tagging.errors import BadImageError, StoreError
from tagging.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, load_image
from tagging.rules import auto_select
from tagging.store import AUTOMATIC, FeedbackItem, Store


# --- views of the results ----------------------------------------------------------------
def select(
    result: ItemResult, threshold: float, min_tags: int, overrides: Mapping[str, float] | None = None
) -> list[str]:
    """The tags of one result the auto-select rule picks (none for failed/skipped)."""
    if not result.tagged:
        return []
    return auto_select(result.tags, threshold, min_tags, overrides)


def results_frame(
    results: Sequence[ItemResult], threshold: float, min_tags: int, overrides: Mapping[str, float] | None = None,
    analysis: Mapping[str, Summary] | None = None,
) -> pd.DataFrame:
    """One row per image: status, reason, the selected tags at this threshold and floor; with ``analysis``
    (image key -> summary, ``analyse_batch``) also faces, dominant colour and text found."""
    rows = []
    for r in results:
        selected = select(r, threshold, min_tags, overrides)
        top = r.tags[0] if r.tags else None
        rows.append({
            "image": r.name,
            "status": r.status,
            "selected tags": ", ".join(selected),
            "selected": len(selected),
            "suggested": len(r.tags),
            "top tag": top.name if top else None,
            "top confidence": round(top.confidence, 2) if top else None,
            "note": r.reason,
            "sha256": r.image_key,
            **(summary_columns(analysis.get(r.image_key)) if analysis is not None else {}),
        })
    columns = ["image", "status", "selected tags", "selected", "suggested", "top tag", "top confidence", "note",
               "sha256", *(SUMMARY_COLUMNS if analysis is not None else ())]
    frame = pd.DataFrame(rows, columns=columns)
    if analysis is not None:
        frame = frame.astype({"faces": "Int64", "text found": "boolean"})
    return frame.astype({"selected": "int64", "suggested": "int64"})


def tag_frequency(
    results: Sequence[ItemResult], threshold: float, min_tags: int, overrides: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """How many tagged images each tag is selected on, most frequent first (ties by name)."""
    counts: Counter[str] = Counter()
    tagged = 0
    for r in results:
        if r.tagged:
            tagged += 1
            counts.update(set(select(r, threshold, min_tags, overrides)))
    frame = pd.DataFrame(
        sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])), columns=["tag", "images"]
    ).astype({"images": "int64"})
    frame["share"] = (frame["images"] / tagged).round(4) if tagged else 0.0
    return frame


def export_csv(
    results: Sequence[ItemResult], threshold: float, min_tags: int, overrides: Mapping[str, float] | None = None,
    analysis: Mapping[str, Summary] | None = None,
) -> str:
    """The results table as CSV; selected tags separated by ``; ``; the analysis columns with ``analysis``."""
    frame = results_frame(results, threshold, min_tags, overrides, analysis)
    frame["selected tags"] = frame["selected tags"].str.replace(", ", "; ", regex=False)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    return buffer.getvalue()


def json_image(
    result: ItemResult, threshold: float, min_tags: int, overrides: Mapping[str, float] | None = None,
    analysis: Mapping[str, Summary] | None = None,
) -> dict[str, Any]:
    """One image of the JSON export: all its tags (confidence, selected or not); with ``analysis`` also
    ``face_count``, ``dominant_color``, ``dominant_color_parent`` and ``text_found`` (null: not analysed)."""
    chosen = set(select(result, threshold, min_tags, overrides))
    extra: dict[str, Any] = {}
    if analysis is not None:
        found = analysis.get(result.image_key) or Summary()
        extra = {"face_count": found.face_count, "dominant_color": found.dominant_color,
                 "dominant_color_parent": found.dominant_parent, "text_found": found.text_found}
    return {
        "image": result.name,
        "sha256": result.image_key,
        "status": result.status,
        "reason": result.reason or None,
        "selected": [t.name for t in result.tags if t.name in chosen],
        "tags": [
            {"tag": t.name, "confidence": round(t.confidence, 4), "selected": t.name in chosen,
             **({"parent": t.parent} if t.parent else {})}
            for t in result.tags
        ],
        **extra,
    }


def _json_document(
    images: list[dict[str, Any]], threshold: float, min_tags: int, overrides: Mapping[str, float] | None,
    backend: str, request: TagRequest | None,
) -> dict[str, Any]:
    return {
        "backend": backend,
        "request": asdict(request) if request is not None else None,
        "threshold": threshold,
        "min_tags": min_tags,
        "overrides": dict(overrides or {}),
        "images": images,
    }


def export_json(
    results: Sequence[ItemResult],
    threshold: float,
    min_tags: int,
    overrides: Mapping[str, float] | None = None,
    *,
    backend: str = "",
    request: TagRequest | None = None,
    analysis: Mapping[str, Summary] | None = None,
) -> str:
    """Every image with all its tags (confidence, selected or not) and the rule used (and the analysis columns)."""
    images = [json_image(r, threshold, min_tags, overrides, analysis) for r in results]
    return json.dumps(_json_document(images, threshold, min_tags, overrides, backend, request), indent=2,
                      ensure_ascii=False)


class ExportWriter:
    """``export_csv``/``export_json``'s text written piece by piece, so a batch of any size holds no results.

    ``write(results)`` appends results (in the order they should appear); ``close()`` ends
    the document. The text written is exactly what the export function gives for all the
    results at once.
    """

    def __init__(
        self, out: IO[str], fmt: str, threshold: float, min_tags: int,
        overrides: Mapping[str, float] | None = None, *, backend: str = "", request: TagRequest | None = None,
    ) -> None:
        if fmt not in ("csv", "json"):
            raise ValueError("fmt is csv or json")
        self.out, self.fmt = out, fmt
        self.rule = (threshold, min_tags, dict(overrides or {}))
        self.written = 0
        self._document = _json_document([], threshold, min_tags, overrides, backend, request)

    def write(self, results: Sequence[ItemResult]) -> None:
        if not results:
            return
        if self.fmt == "csv":
            text = export_csv(results, *self.rule)
            self.out.write(text if self.written == 0 else text.split("\n", 1)[1])
        else:
            if self.written == 0:
                head = json.dumps(self._document, indent=2, ensure_ascii=False)
                self.out.write(head[:head.rindex("[]")] + "[\n")
            for r in results:
                body = json.dumps(json_image(r, *self.rule), indent=2, ensure_ascii=False)
                self.out.write(("" if self.written == 0 else ",\n") + textwrap.indent(body, "    "))
                self.written += 1
            return
        self.written += len(results)

    def close(self) -> None:
        """End the document (an empty batch gives the header only, or ``"images": []``)."""
        if self.fmt == "csv":
            if self.written == 0:
                self.out.write(export_csv([], *self.rule))
        elif self.written == 0:
            self.out.write(json.dumps(self._document, indent=2, ensure_ascii=False))
        else:
            self.out.write("\n  ]\n}")


# --- saving into the library and feedback store --------------------------------------------
@dataclass
class SaveSummary:
    """What ``save_batch`` did: images saved (``replaced`` of them had feedback before).

    ``kept`` counts images left alone because an analyst had reviewed them already.
    """

    saved: int = 0
    replaced: int = 0
    accepted: int = 0
    failed: list[str] = field(default_factory=list)
    kept: int = 0


def save_batch(
    store: Store,
    results: Sequence[ItemResult],
    items_by_key: Mapping[str, BatchItem],
    *,
    backend: str,
    language: str,
    threshold: float,
    min_tags: int,
    overrides: Mapping[str, float] | None = None,
    source: str = "batch",
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    saved_by: str | None = None,
    batch: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    analysis: Mapping[str, Summary] | None = None,
) -> SaveSummary:
    """Save every tagged image's verdicts (selected = accepted) with a thumbnail and a preview, as automatic verdicts.

    The rule's selection was not reviewed, so the store keeps it apart from reviewed
    verdicts (and never lets it replace them). ``items_by_key`` maps image keys to the
    batch's items, read one at a time for the thumbnail, the review preview and the size; an
    image that cannot be read or decoded is saved without them. ``batch`` labels the sets, so
    the review queue can show one batch. A database error for one image is reported in
    ``failed`` and the others are still saved. ``progress(done, total)`` is called after each image.
    ``analysis`` (image key -> summary) is kept for the Library's columns and filters.
    """
    summary = SaveSummary()
    todo = list({r.image_key: r for r in reversed(results) if r.tagged}.values())[::-1]  # the first of each image
    for done, r in enumerate(todo):
        if progress is not None:
            progress(done, len(todo))
        chosen = set(select(r, threshold, min_tags, overrides))
        width, height, thumbnail, preview = r.width, r.height, None, None
        item = items_by_key.get(r.image_key)
        if item is not None:
            try:
                image = load_image(item.read(), r.name, max_bytes=max_bytes, max_pixels=max_pixels)
            except BadImageError:
                pass
            else:
                width, height = image.width, image.height
                thumbnail, preview = image.thumbnail_bytes(), image.preview_bytes()
        try:
            saved = store.save_feedback(
                image_key=r.image_key, filename=r.name, source=source, backend=backend, language=language,
                threshold=float(threshold), min_tags=int(min_tags),
                items=[FeedbackItem(t.name, t.confidence, t.name in chosen, t.parent) for t in r.tags],
                width=width, height=height, thumbnail=thumbnail, preview=preview, provenance=AUTOMATIC,
                saved_by=saved_by, batch=batch,
            )
            if analysis is not None and r.image_key in analysis:
                store.save_analysis(r.image_key, backend, analysis[r.image_key])
        except StoreError as exc:
            summary.failed.append(f"{r.name}: {exc}")
            continue
        if saved.kept:
            summary.kept += 1
            continue
        summary.saved += 1
        summary.replaced += int(saved.replaced)
        summary.accepted += saved.accepted
    if progress is not None and todo:
        progress(len(todo), len(todo))
    return summary
