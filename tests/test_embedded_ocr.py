"""Offline text reading (tagging.embedded._ocr) on signs rendered with PIL."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw, ImageFont

from tagging.embedded import TextReader, TextRegion, box_coordinates, text_response

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"  # Debian's fonts-dejavu-core


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype(FONT, size)
    except OSError:
        return ImageFont.load_default(size=size)


def sign(text: str, at: tuple[int, int], size: tuple[int, int] = (640, 400)) -> Image.Image:
    """A grey wall with a white plate carrying ``text`` in red, its top-left corner at ``at``."""
    image = Image.new("RGB", size, (120, 130, 140))
    draw = ImageDraw.Draw(image)
    font = _font(48)
    left, top, right, bottom = draw.textbbox(at, text, font=font)
    draw.rectangle((left - 20, top - 20, right + 20, bottom + 20), fill=(250, 250, 250))
    draw.text(at, text, fill=(200, 0, 0), font=font)
    return image


@pytest.fixture(scope="module")
def reader() -> TextReader:
    return TextReader()


def test_reads_a_rendered_sign_where_it_is(reader: TextReader) -> None:
    image = sign("EXIT 24", (300, 250))
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((300, 250), "EXIT 24", font=_font(48))
    regions = reader.read(image)
    assert [r.text.replace(" ", "") for r in regions] == ["EXIT24"]
    xmin, ymin, xmax, ymax = regions[0].box
    # The box surrounds the glyphs, a few pixels of margin at most, in this image's pixels.
    assert abs(xmin - left) <= 12 and abs(xmax - right) <= 12
    assert abs(ymin - top) <= 12 and abs(ymax - bottom) <= 12
    assert 50 <= regions[0].confidence <= 100


def test_coordinates_follow_the_image_when_rotated(reader: TextReader) -> None:
    image = sign("OPEN", (60, 60)).transpose(Image.Transpose.ROTATE_180)  # now at the bottom right
    regions = reader.read(image)
    assert [r.text for r in regions] == ["OPEN"]
    xmin, ymin, _, _ = regions[0].box
    assert xmin > 640 / 2 and ymin > 400 / 2


def test_no_text_no_regions(reader: TextReader) -> None:
    assert reader.read(Image.new("RGB", (320, 240), (30, 90, 160))) == []
    assert text_response([])["result"]["text"] == []


def test_text_response_has_imagga_shape_in_reading_order() -> None:
    lower = TextRegion("second", 80.0, ((10, 100), (90, 100), (90, 120), (10, 120)))
    upper = TextRegion("first", 90.0, ((50, 10), (150, 10), (150, 30), (50, 30)))
    body = text_response([lower, upper])
    assert body["status"]["type"] == "success"
    assert [t["data"] for t in body["result"]["text"]] == ["first", "second"]
    assert body["result"]["text"][0]["coordinates"] == {
        "xmin": 50, "ymin": 10, "xmax": 150, "ymax": 30, "width": 100, "height": 20,
    }
    assert box_coordinates(1, 2, 4, 8) == {"xmin": 1, "ymin": 2, "xmax": 4, "ymax": 8, "width": 3, "height": 6}


def test_a_large_photo_is_read_from_a_copy_and_boxed_in_its_own_pixels(reader: TextReader) -> None:
    image = Image.new("RGB", (4000, 3000), (100, 120, 140))
    draw = ImageDraw.Draw(image)
    font = _font(200)
    draw.rectangle((2000, 2000, 3600, 2400), fill=(250, 250, 250))
    left, top, right, bottom = draw.textbbox((2100, 2080), "HELLO", font=font)
    draw.text((2100, 2080), "HELLO", fill=(0, 0, 0), font=font)
    (region,) = reader.read(image)
    assert region.text == "HELLO"
    xmin, ymin, xmax, ymax = region.box
    assert abs(xmin - left) <= 40 and abs(xmax - right) <= 40 and abs(ymin - top) <= 60 and abs(ymax - bottom) <= 60


def test_photos_without_text_have_none(reader: TextReader) -> None:
    from tests.conftest import SAMPLES

    for name in ("rocket.jpg", "coffee.jpg", "cat.jpg"):  # the rocket's fins and the cup's rim once read as text
        assert reader.read(Image.open(SAMPLES / name).convert("RGB")) == [], name


def test_text_share_is_the_part_the_text_covers(reader: TextReader) -> None:
    # The plate's text covers about a tenth of the small sign and a fortieth of the same plate on a wall four
    # times the area; a wall without text, nothing.
    small = sign("EXIT 24", (160, 170))
    large = Image.new("RGB", (1280, 800), (120, 130, 140))
    large.paste(small.crop((100, 100, 540, 300)), (420, 300))
    near, far = reader.text_share(small), reader.text_share(large)
    assert 0.03 < near < 0.3
    assert far < near / 2
    assert reader.text_share(Image.new("RGB", (640, 400), (120, 130, 140))) == 0.0


def test_read_from_a_smaller_copy_keeps_the_photo_pixels(reader: TextReader) -> None:
    image = sign("EXIT 24", (300, 250), size=(1280, 800))
    full, small = reader.read(image), reader.read(image, max_side=640)
    assert [r.text.replace(" ", "") for r in small] == ["EXIT24"]
    # Boxes in the photo's pixels either way (the copy's are mapped back), a few pixels apart.
    assert all(abs(a - b) <= 8 for a, b in zip(full[0].box, small[0].box, strict=True))


def test_the_tagger_tags_text_and_carries_the_lines() -> None:
    from tagging.embedded import EmbeddedTagger
    from tagging.embedded._tagger import TEXT_CONFIDENCE

    tagger = EmbeddedTagger()
    try:
        answer = tagger.tag(sign("OPEN 24", (100, 120), size=(480, 300)))["result"]
        tags = {item["tag"]["en"]: item["confidence"] for item in answer["tags"]}
        assert tags["text"] >= TEXT_CONFIDENCE
        assert [line["data"].replace(" ", "") for line in answer["text"]] == ["OPEN24"]
        assert set(answer["text"][0]["coordinates"]) == {"xmin", "ymin", "xmax", "ymax", "width", "height"}
        # A wall without text: no lines, and "text" is not raised (the classifier alone may still suggest it).
        answer = tagger.tag(Image.new("RGB", (640, 400), (120, 130, 140)))["result"]
        assert "text" not in answer
        assert all(item["confidence"] < TEXT_CONFIDENCE for item in answer["tags"] if item["tag"]["en"] == "text")
        off = EmbeddedTagger(read_text=False)
        try:
            assert "text" not in off.tag(sign("OPEN 24", (100, 120), size=(480, 300)))["result"]
        finally:
            off.close()
    finally:
        tagger.close()


def test_the_glance_waits_for_a_hint_of_text_from_the_classifier() -> None:
    import numpy as np

    from tagging.embedded import EmbeddedTagger
    from tagging.embedded._tagger import TEXT_CUE

    tagger = EmbeddedTagger(detect_faces=False)
    try:
        vocabulary, plate = tagger.vocabulary, sign("OPEN 24", (100, 120), size=(480, 300))
        text_class = min(vocabulary.classes_of("text"))
        cat = np.zeros(tagger.num_classes)
        cat[281] = 1.0  # tabby: nothing of "text" in it
        assert vocabulary.masses(cat)[vocabulary.index["text"]] < TEXT_CUE
        assert tagger.read_text(plate, cat) is None
        hint = np.zeros(tagger.num_classes)
        hint[text_class] = 1.0
        assert [line.text.replace(" ", "") for line in tagger.read_text(plate, hint)] == ["OPEN24"]
        assert tagger.read_text(plate) is not None  # no probabilities: the glance runs
    finally:
        tagger.close()


def test_without_the_ocr_package_the_tagger_still_tags(monkeypatch) -> None:
    import sys

    from tagging.embedded import EmbeddedTagger, _ocr
    from tagging.errors import BackendError

    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # as if it were not installed
    monkeypatch.setattr(_ocr, "_SHARED", None)
    tagger = EmbeddedTagger(detect_faces=False)
    try:
        assert tagger.text is None and "rapidocr-onnxruntime" in tagger.text_unavailable
        answer = tagger.tag(sign("OPEN 24", (100, 120), size=(480, 300)))["result"]
        assert answer["tags"] and "text" not in answer
    finally:
        tagger.close()
    with pytest.raises(BackendError, match="rapidocr-onnxruntime"):
        EmbeddedTagger(detect_faces=False, read_text=True)


def test_text_seen_lifts_the_words_drawn_with_it() -> None:
    import numpy as np

    from tagging.embedded import EmbeddedTagger
    from tagging.embedded._tagger import TEXT_CONFIDENCE, companions

    tagger = EmbeddedTagger(detect_faces=False, read_text=False)
    try:
        # The table's related words of "text" (scripts/build_vocabulary.py), not "menu" or "crossword puzzle",
        # which are drawn from one class each.
        assert set(companions(tagger.vocabulary, "text")) == {"letters", "words", "font", "print"}
        assert companions(tagger.vocabulary, "no such word") == {}
        flat = np.full(tagger.num_classes, 1.0 / tagger.num_classes)

        def tags(text):
            answer = tagger.response(flat, [], (100, 100), None, None, text)
            return {item["tag"]["en"]: item["confidence"] for item in answer["result"]["tags"]}

        before, after = tags(None), tags([])
        assert after["text"] == TEXT_CONFIDENCE
        assert before.get("letters", 0.0) < after["letters"] < after["text"]
        assert after["letters"] > after["words"] > after["font"]  # 0.6, 0.5 and 0.4 of "text"
    finally:
        tagger.close()
