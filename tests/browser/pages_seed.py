"""A database for looking at the Review, Tune, Library and Compare pages: the samples and crops of them, tagged
by the embedded tagger; some reviewed (pre-filled or blind, with missing-tags notes), the rest waiting for review,
and one set without any tag. Used by the browser tests of issue 18, scripts/screenshot_pages.py and
bench/bench_pages.py."""

from __future__ import annotations

import inspect
import io
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CROPS = ((0.0, 0.0, 1.0, 1.0), (0.1, 0.1, 0.9, 0.9), (0.0, 0.2, 0.8, 1.0))  # whole, centre, lower left
MISSING = {"cat.jpg": ["blanket"], "coffee.jpg": ["saucer", "table"], "rocket.jpg": ["smoke"]}


def _variants() -> list[tuple[str, bytes]]:
    """The samples and two crops of each: twelve different images from the four shipped photos."""
    from PIL import Image

    found = []
    for path in sorted((ROOT / "samples").glob("*.jpg")):
        with Image.open(path) as im:
            im = im.convert("RGB")
            for n, (x0, y0, x1, y1) in enumerate(CROPS):
                w, h = im.size
                part = im.crop((int(x0 * w), int(y0 * h), int(x1 * w), int(y1 * h)))
                buffer = io.BytesIO()
                part.save(buffer, "JPEG", quality=88)
                found.append((path.name if n == 0 else f"{path.stem}-crop{n}.jpg", buffer.getvalue()))
    return found


def seed(db_path: Path) -> None:
    """Fill ``db_path``: reviewed sets (pre-filled and blind, with notes), a queue, and a set without tags."""
    from tagging.backends import EmbeddedBackend, TagRequest
    from tagging.images import load_image
    from tagging.parse import parse_tags
    from tagging.rules import auto_select
    from tagging.store import AUTOMATIC, REVIEWED, FeedbackItem, Store

    store = Store(db_path)
    # bench/bench_pages.py seeds an older checkout's database with that checkout's code: no review modes there.
    modes = "review_mode" in inspect.signature(Store.save_feedback).parameters
    backend = EmbeddedBackend()
    for n, (name, data) in enumerate(_variants()):
        image = load_image(data, name)
        tags = parse_tags(backend.tag_image(image, TagRequest(language="en")), "en")
        picked = set(auto_select(tags, 60, 3))
        reviewed = n % 3 != 2
        # A reviewer accepts what the tagger got right: here, the rule's picks less the weakest when it is under 40.
        accepted = {t.name for t in tags if t.name in picked and (t.confidence >= 40 or not reviewed)}
        store.save_feedback(
            image_key=image.sha256, filename=name, source="Upload" if reviewed else "batch", backend="embedded",
            language="en", threshold=60, min_tags=3,
            items=[FeedbackItem(t.name, t.confidence, t.name in accepted, t.parent) for t in tags],
            width=image.width, height=image.height, thumbnail=image.thumbnail_bytes(), preview=image.preview_bytes(),
            provenance=REVIEWED if reviewed else AUTOMATIC, saved_by="ana" if reviewed else None,
            batch=None if reviewed else "2026-12-02 09:00:00 UTC · 4 images",
            **({"review_mode": ("blind" if n % 2 else "prefilled") if reviewed else None,
                "missing_tags": MISSING.get(name, []) if reviewed else []} if modes else {}),
        )
    blank = load_image(_variants()[0][1], "blank.jpg")
    store.save_feedback(image_key="no-tags-" + blank.sha256[:16], filename="no-tags.jpg", source="batch",
                        backend="embedded", language="en", threshold=60, min_tags=3, items=[],
                        preview=blank.preview_bytes(), thumbnail=blank.thumbnail_bytes(), provenance=AUTOMATIC,
                        batch="2026-12-02 09:00:00 UTC · 4 images")
    store.close()
