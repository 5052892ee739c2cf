"""Image intake against a corpus of bad and odd files built here with Pillow."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from tagging.errors import BadImageError, DecompressionBombError, ImageTooLargeError
from tagging.images import (
    ALLOWED_FORMATS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    PREVIEW_SIDE,
    LoadedImage,
    downscale,
    encode_jpeg,
    format_size,
    format_sizes,
    load_image,
    make_thumbnail,
)

SAMPLES = sorted((Path(__file__).resolve().parent.parent / "samples").glob("*.jpg"))
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_with_declared_size(width: int, height: int) -> bytes:
    """A tiny valid 10x10 PNG whose IHDR is rewritten to claim ``width`` x ``height``."""
    png = encode(Image.new("L", (10, 10)), "PNG")
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return png[:8] + chunk + png[33:]  # signature (8) + IHDR chunk (25)


def assert_close(pixel: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 8) -> None:
    assert all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True)), (pixel, expected)


# --- real photos ---------------------------------------------------------------------
def test_samples_exist() -> None:
    assert len(SAMPLES) >= 4


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_photos_load(path: Path) -> None:
    data = path.read_bytes()
    with Image.open(path) as reference:
        expected_size = reference.size

    loaded = load_image(data, path.name)

    assert isinstance(loaded, LoadedImage)
    assert loaded.image.mode == "RGB"
    assert loaded.format == "JPEG"
    assert (loaded.width, loaded.height) == expected_size == loaded.image.size
    assert loaded.filename == path.name
    assert loaded.data == data
    assert loaded.sha256 == hashlib.sha256(data).hexdigest()


def test_sha256_is_of_the_original_bytes_not_the_pixels() -> None:
    data = encode(Image.new("RGB", (4, 4), RED), "PNG")
    same_pixels_other_file = encode(Image.new("RGB", (4, 4), RED), "BMP")

    a = load_image(data)
    b = load_image(same_pixels_other_file)

    assert a.sha256 == hashlib.sha256(data).hexdigest()
    assert a.sha256 != b.sha256
    assert a == load_image(data)
    assert "data=" not in repr(a)  # 25 MB of bytes must not end up in a log line


# --- rejected files ----------------------------------------------------------------
def test_text_renamed_to_jpg_is_rejected() -> None:
    with pytest.raises(BadImageError, match=r"“notes\.jpg” is not an image.*JPEG, PNG, WebP"):
        load_image(b"Meeting notes, definitely not a JPEG.\n" * 20, "notes.jpg")


def test_zero_bytes_is_rejected() -> None:
    with pytest.raises(BadImageError, match="empty"):
        load_image(b"", "empty.png")


def test_truncated_jpeg_is_rejected() -> None:
    data = SAMPLES[0].read_bytes()
    with pytest.raises(BadImageError, match="damaged or incomplete"):
        load_image(data[: len(data) // 2], "half.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_png_is_rejected() -> None:
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "PNG")
    with pytest.raises(BadImageError, match="damaged or incomplete"):
        load_image(data[: len(data) * 2 // 3], "cut.png")


def test_png_cut_after_the_pixel_data_is_rejected() -> None:
    # Decoding alone accepts this file; only verify() notices the missing IEND chunk.
    data = encode(Image.new("RGB", (8, 8), RED), "PNG")
    with pytest.raises(BadImageError, match="damaged or incomplete"):
        load_image(data[:-12], "no-end.png")


def test_png_with_corrupt_chunk_crc_is_rejected() -> None:
    data = bytearray(encode(Image.new("RGB", (8, 8), RED), "PNG"))
    data[-20] ^= 0xFF  # inside the IDAT chunk, so its CRC no longer matches
    with pytest.raises(BadImageError):
        load_image(bytes(data), "crc.png")


def test_over_the_byte_limit_is_rejected_before_decoding() -> None:
    data = encode(Image.new("RGB", (64, 64), RED), "BMP")
    with pytest.raises(ImageTooLargeError, match=r"is 12.1 KB; the limit is 10 KB"):
        load_image(data, "big.bmp", max_bytes=10 * 1024)
    # Not even parsed: garbage over the limit is "too large", not "not an image".
    with pytest.raises(ImageTooLargeError):
        load_image(b"x" * 101, max_bytes=100)
    assert load_image(data, max_bytes=len(data)).width == 64


def test_default_byte_limit_message_is_human() -> None:
    assert DEFAULT_MAX_BYTES == 25 * 1024 * 1024
    with pytest.raises(ImageTooLargeError, match=r"is 26 MB; the limit is 25 MB"):
        load_image(b"\0" * 26 * 1024 * 1024, max_bytes=DEFAULT_MAX_BYTES)


def test_one_byte_over_the_limit_says_so_in_bytes() -> None:
    # "is 25 MB; the limit is 25 MB" told the analyst nothing (issue 10, defect 5)
    limit = 1024 * 1024
    with pytest.raises(ImageTooLargeError) as info:
        load_image(b"\0" * (limit + 1), "edge.png", max_bytes=limit)
    assert "is 1,048,577 bytes; the limit is 1,048,576 bytes (1 MB)" in str(info.value)


@pytest.mark.parametrize(
    ("actual", "limit", "expected"),
    [(26 * 2**20, 25 * 2**20, ("26 MB", "25 MB")),
     (25 * 2**20 + 1, 25 * 2**20, ("26,214,401 bytes", "26,214,400 bytes (25 MB)")),
     (12_390, 10_240, ("12.1 KB", "10 KB")), (101, 100, ("101 bytes", "100 bytes"))],
)
def test_format_sizes_tells_two_sizes_apart(actual: int, limit: int, expected: tuple[str, str]) -> None:
    assert format_sizes(actual, limit) == expected


def test_a_damaged_png_header_is_named_as_a_png_not_as_a_image() -> None:
    data = bytearray(encode(Image.new("RGB", (8, 8), RED), "PNG"))
    data[8:12] = (0xD4).to_bytes(4, "big")  # the IHDR chunk's length: Pillow raises while opening
    with pytest.raises(BadImageError) as info:
        load_image(bytes(data), "broken.png")
    message = str(info.value)
    assert "a image" not in message
    assert "looks like a PNG image but is damaged" in message


@pytest.mark.parametrize(("fmt", "data"), [
    ("PNG", png_with_declared_size(0, 0)),
    ("PNG", png_with_declared_size(0, 10)),
    ("GIF", b"GIF89a" + struct.pack("<HH", 0, 0) + b"\x00\x00\x00;"),
])
def test_an_image_of_zero_pixels_is_not_called_an_unsupported_format(fmt: str, data: bytes) -> None:
    with pytest.raises(BadImageError) as info:
        load_image(data, "empty-canvas")
    message = str(info.value)
    assert "not an image that can be read" not in message and "Supported formats" not in message
    assert f"is a {fmt} image of" in message and "no pixels" in message


def test_declared_dimensions_bomb_is_rejected_without_decoding() -> None:
    data = png_with_declared_size(20_000, 20_000)
    assert len(data) < 200
    with pytest.raises(DecompressionBombError, match="limit is 50 megapixels"):
        load_image(data, "bomb.png")


def test_declared_dimensions_bomb_below_pillows_own_limit_uses_ours() -> None:
    # 60 MP is under Pillow's global hard limit (~179 MP): only our check stops it.
    data = png_with_declared_size(10_000, 6_000)
    with pytest.raises(DecompressionBombError, match=r"10000 × 6000 pixels \(60 megapixels\)"):
        load_image(data, "bomb.png")


def test_highly_compressible_large_png_is_rejected() -> None:
    data = encode(Image.new("1", (10_000, 6_000)), "PNG")  # 60 MP in ~7 KB
    assert len(data) < 20_000
    with pytest.raises(DecompressionBombError, match="60 megapixels"):
        load_image(data, "flat.png")


def test_pixel_limit_is_configurable() -> None:
    data = encode(Image.new("RGB", (100, 100), RED), "PNG")
    with pytest.raises(DecompressionBombError, match=r"10,000 pixels.*limit is 9,999 pixels"):
        load_image(data, max_pixels=9_999)
    assert load_image(data, max_pixels=10_000).width == 100
    assert DEFAULT_MAX_PIXELS == 50_000_000


def test_pillow_global_limit_is_left_alone() -> None:
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(DecompressionBombError):
        load_image(png_with_declared_size(20_000, 20_000))
    load_image(encode(Image.new("RGB", (8, 8)), "PNG"))
    assert Image.MAX_IMAGE_PIXELS == before


@pytest.mark.parametrize(
    ("fmt", "kind"),
    [("ICO", "icon"), ("PDF", "PDF document"), ("PPM", None), ("TGA", None)],
)
def test_formats_outside_the_allow_list_are_rejected(fmt: str, kind: str | None) -> None:
    data = encode(Image.new("RGB", (16, 16), RED), fmt)
    with pytest.raises(BadImageError, match="Supported formats: JPEG, PNG") as excinfo:
        load_image(data, f"file.{fmt.lower()}")
    if kind:
        assert kind in str(excinfo.value)


def test_heic_is_named_in_the_message() -> None:
    fake_heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\0" * 64
    with pytest.raises(BadImageError, match="HEIC"):
        load_image(fake_heic, "IMG_0001.HEIC")


# --- odd but valid files -----------------------------------------------------------
def test_animated_gif_gives_the_first_frame() -> None:
    frames = [Image.new("RGB", (10, 10), colour) for colour in (RED, GREEN, BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)

    loaded = load_image(data, "anim.gif")

    assert loaded.format == "GIF"
    assert loaded.image.mode == "RGB"
    assert loaded.image.getpixel((5, 5)) == RED


def test_animated_webp_gives_the_first_frame() -> None:
    frames = [Image.new("RGB", (10, 10), colour) for colour in (GREEN, RED)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)

    loaded = load_image(data, "anim.webp")

    assert loaded.format == "WEBP"
    assert loaded.image.getpixel((5, 5)) == GREEN


def test_cmyk_jpeg_becomes_rgb() -> None:
    data = encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=95)  # pure red ink mix

    loaded = load_image(data, "print.jpg")

    assert loaded.image.mode == "RGB"
    assert_close(loaded.image.getpixel((4, 4)), RED)


def test_cmyk_jpeg_with_unusable_icc_profile_falls_back() -> None:
    data = encode(Image.new("CMYK", (8, 8), (255, 0, 255, 0)), "JPEG", quality=95, icc_profile=b"not a profile")
    assert_close(load_image(data).image.getpixel((4, 4)), GREEN)


def test_16_bit_png_is_scaled_not_clipped() -> None:
    values = np.array([[0, 32896, 65535, 4112]], dtype=np.uint16)  # 0, 128, 255, 16 in 8 bits
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    data = encode(image, "PNG")

    loaded = load_image(data, "scan.png")

    assert loaded.image.mode == "RGB"
    assert [loaded.image.getpixel((x, 0)) for x in range(4)] == [
        (0, 0, 0),
        (128, 128, 128),
        (255, 255, 255),
        (16, 16, 16),
    ]


def test_exif_orientation_6_is_applied() -> None:
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)  # 40 wide, 20 high
    pixels[:5, :5] = RED  # mark the stored top-left corner
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    data = encode(image, "JPEG", quality=95, exif=exif.tobytes())

    loaded = load_image(data, "phone.jpg")

    assert (loaded.width, loaded.height) == (20, 40) == loaded.image.size
    # Rotating clockwise moves the top-left corner to the top-right.
    assert_close(loaded.image.getpixel((17, 2)), RED, tolerance=40)
    assert_close(loaded.image.getpixel((2, 2)), (0, 0, 0), tolerance=40)
    assert loaded.data == data  # the original bytes are kept untouched


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("WEBP", {"lossless": True}), ("BMP", {}), ("TIFF", {}), ("TIFF", {"compression": "tiff_lzw"})],
)
def test_other_allowed_formats_load(fmt: str, options: dict[str, object]) -> None:
    data = encode(Image.new("RGB", (12, 7), BLUE), fmt, **options)

    loaded = load_image(data, f"x.{fmt.lower()}")

    assert loaded.format == fmt
    assert (loaded.width, loaded.height) == (12, 7)
    assert loaded.image.getpixel((3, 3)) == BLUE


def test_png_alpha_is_composited_on_white() -> None:
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))  # fully transparent black
    image.paste((255, 0, 0, 255), (0, 0, 5, 10))  # opaque red left half
    image.putpixel((9, 9), (0, 0, 255, 128))  # half-transparent blue

    loaded = load_image(encode(image, "PNG"))

    assert loaded.image.mode == "RGB"
    assert loaded.image.getpixel((2, 2)) == RED
    assert loaded.image.getpixel((7, 2)) == (255, 255, 255)  # white, not black
    assert_close(loaded.image.getpixel((9, 9)), (127, 127, 255), tolerance=2)


def test_grey_with_alpha_is_composited_on_white() -> None:
    loaded = load_image(encode(Image.new("LA", (4, 4), (0, 0)), "PNG"))
    assert loaded.image.getpixel((1, 1)) == (255, 255, 255)


def test_palette_with_transparency_is_composited_on_white() -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 255, 0, 0])
    image.putpixel((0, 0), 1)
    loaded = load_image(encode(image, "PNG", transparency=0))
    assert loaded.image.getpixel((0, 0)) == RED
    assert loaded.image.getpixel((3, 3)) == (255, 255, 255)


def test_one_bit_image_becomes_black_and_white_rgb() -> None:
    image = Image.new("1", (8, 8), 0)
    image.putpixel((1, 1), 1)
    loaded = load_image(encode(image, "PNG"))
    assert loaded.image.getpixel((1, 1)) == (255, 255, 255)
    assert loaded.image.getpixel((0, 0)) == (0, 0, 0)


def test_allowed_formats() -> None:
    assert ALLOWED_FORMATS == {"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"}


# --- helpers for thumbnails and uploads ----------------------------------------------
def test_downscale_keeps_aspect_and_leaves_small_images_alone() -> None:
    image = Image.new("RGB", (1000, 400), RED)

    small = downscale(image, 250)

    assert small.size == (250, 100)
    assert downscale(small, 250) is small
    assert downscale(Image.new("RGB", (3, 1000)), 10).size == (1, 10)
    with pytest.raises(ValueError):
        downscale(image, 0)


def test_encode_jpeg_and_thumbnail_round_trip() -> None:
    image = Image.new("RGB", (600, 300), BLUE)

    jpeg = encode_jpeg(image, quality=80)
    thumb = make_thumbnail(image, max_side=128)

    with Image.open(io.BytesIO(jpeg)) as decoded:
        assert (decoded.format, decoded.size) == ("JPEG", (600, 300))
        assert_close(decoded.getpixel((10, 10)), BLUE)
    with Image.open(io.BytesIO(thumb)) as decoded:
        assert (decoded.format, decoded.size) == ("JPEG", (128, 64))
    loaded = load_image(encode(image, "PNG"))
    with Image.open(io.BytesIO(loaded.thumbnail_bytes(100))) as decoded:
        assert decoded.size == (100, 50)


def test_review_preview_is_bounded_and_small_images_keep_their_size() -> None:
    big = load_image(encode(Image.new("RGB", (2000, 1500), GREEN), "PNG"))
    with Image.open(io.BytesIO(big.preview_bytes())) as decoded:
        assert (decoded.format, decoded.size) == ("JPEG", (PREVIEW_SIDE, 576))
    tall = load_image(encode(Image.new("RGB", (300, 1200), GREEN), "PNG"))
    with Image.open(io.BytesIO(tall.preview_bytes())) as decoded:
        assert decoded.size == (192, PREVIEW_SIDE)
    small = load_image(encode(Image.new("RGB", (200, 100), GREEN), "PNG"))
    with Image.open(io.BytesIO(small.preview_bytes())) as decoded:
        assert decoded.size == (200, 100)


def test_encode_jpeg_converts_non_rgb_modes() -> None:
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    with Image.open(io.BytesIO(encode_jpeg(rgba))) as decoded:
        assert decoded.mode == "RGB"
        assert_close(decoded.getpixel((1, 1)), (255, 255, 255))


def test_format_size() -> None:
    assert format_size(31.2 * 1024 * 1024) == "31.2 MB"
    assert format_size(25 * 1024 * 1024) == "25 MB"
    assert format_size(2048) == "2 KB"
    assert format_size(80) == "80 bytes"
