"""Bytes sent to Imagga for a 12-megapixel photo, with and without downscaling.

Run: .venv/bin/python bench/bench_upload.py

The photo is made here (the cat sample upscaled to 4000x3000 with sensor-like noise, saved
as a quality-92 JPEG, like a phone photo), since the repository ships no 12 MP file. For each
long-side limit it prints the bytes sent, the time to re-encode, and how far the embedded
tagger's tags move (top-10 overlap with the full-size image), measured side by side.
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tagging.backends import plan_upload  # noqa: E402
from tagging.embedded import EmbeddedTagger  # noqa: E402
from tagging.images import load_image  # noqa: E402


def twelve_megapixel_photo() -> bytes:
    base = Image.open(ROOT / "samples" / "cat.jpg").convert("RGB").resize((4000, 3000), Image.Resampling.LANCZOS)
    noise = Image.effect_noise((4000, 3000), 24).convert("RGB")
    photo = Image.blend(base, noise, 0.12)
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def top(payload: dict, n: int = 10) -> list[str]:
    return [t["tag"]["en"] for t in payload["result"]["tags"][:n]]


def main() -> None:
    data = twelve_megapixel_photo()
    image = load_image(data, "phone.jpg")
    tagger = EmbeddedTagger()
    reference = top(tagger.tag(image.image))
    print(f"photo: {image.width}x{image.height} = {image.width * image.height / 1e6:.1f} MP, {len(data):,} bytes")
    header = ("long side", "bytes sent", "share", "encode ms", "top-10 overlap", "top-1 same")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (10, 12, 7, 10, 15, 10), strict=True)))
    for limit in (None, 2048, 1600, 1024, 800, 512):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            plan = plan_upload(image, limit)
            times.append((time.perf_counter() - start) * 1000)
        sent = load_image(plan.data, plan.filename)
        tags = top(tagger.tag(sent.image))
        overlap = len(set(tags) & set(reference))
        label = "original" if limit is None else str(limit)
        print(
            f"{label:>10} {len(plan.data):>12,} {len(plan.data) / len(data):>6.1%} {statistics.median(times):>10.0f}"
            f" {overlap:>12}/10 {str(tags[0] == reference[0]):>10}"
        )


if __name__ == "__main__":
    main()
