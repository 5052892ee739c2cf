"""Safe intake of untrusted image bytes: limits, validation, orientation, RGB.

Everything a tagging backend sees goes through :func:`load_image` first, so the rest of
the package can assume an RGB :class:`PIL.Image.Image` of bounded size.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np
from PIL import ExifTags, Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from tagging.errors import BadImageError, DecompressionBombError, ImageTooLargeError

DEFAULT_MAX_BYTES = 25 * 1024 * 1024

# 50 megapixels fits every common camera and phone (48 MP phone sensors are
# 8064 x 6048 = 48.8 MP) while keeping one decoded RGB frame near 150 MB; several
# analysts uploading at once must not exhaust the dashboard's memory. The byte limit
# alone cannot bound this: a 100 KB PNG can declare billions of pixels.
DEFAULT_MAX_PIXELS = 50_000_000

# The preview the store keeps of every saved image, for the Review page (no original is kept):
# 768 px shows what a tag refers to at a reviewer's screen size; at quality 80 a photo's preview
# weighs 40-80 KB (the samples upscaled 4x, a 12 MP photo), so 10,000 images take under 1 GB.
PREVIEW_SIDE = 768
PREVIEW_QUALITY = 80

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"})

# Pillow names the plugins it may try; keeping this list short means exotic decoders
# (EPS, PSD, ...) never see untrusted bytes at all.
_OPEN_FORMATS = tuple(sorted(ALLOWED_FORMATS))
_SUPPORTED_TEXT = "JPEG, PNG, WebP, GIF, BMP, TIFF"

# What a corrupt or hostile file can make Pillow's decoders raise.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    TypeError,
    KeyError,
    struct.error,
    zlib.error,
)

_WHITE = (255, 255, 255)


@dataclass(frozen=True)
class LoadedImage:
    """A validated image ready for tagging.

    ``image`` is RGB with the EXIF orientation applied (first frame of animations);
    ``data`` and ``sha256`` are the untouched original bytes and their digest.
    Two instances compare equal when their bytes, format and filename match.
    """

    image: Image.Image = field(compare=False)
    data: bytes = field(repr=False, compare=False)
    sha256: str
    format: str
    width: int
    height: int
    filename: str

    def thumbnail_bytes(self, max_side: int = 256) -> bytes:
        """Return a JPEG thumbnail whose longer side is at most ``max_side``."""
        return make_thumbnail(self.image, max_side)

    def preview_bytes(self) -> bytes:
        """Return the JPEG preview the store keeps for review (long side at most ``PREVIEW_SIDE``)."""
        return make_preview(self.image)


def format_size(n_bytes: float) -> str:
    """Return a short human size: ``"31.2 MB"``, ``"25 MB"``, ``"512 KB"``, ``"80 bytes"``."""
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if n_bytes >= scale:
            value = n_bytes / scale
            text = f"{value:.1f}".removesuffix(".0")
            return f"{text} {unit}"
    return f"{int(n_bytes)} bytes"


def format_sizes(actual: float, limit: float) -> tuple[str, str]:
    """``format_size`` of a size and of its limit, precise enough to tell them apart.

    ``(25 MB + 1 byte, 25 MB)`` would both read "25 MB"; they become
    ``("26,214,401 bytes", "26,214,400 bytes (25 MB)")``.
    """
    shown, cap = format_size(actual), format_size(limit)
    if shown != cap or int(actual) == int(limit):
        return shown, cap
    exact = f"{int(limit):,} bytes"
    return f"{int(actual):,} bytes", exact if exact == cap else f"{exact} ({cap})"


def _format_megapixels(pixels: int) -> str:
    if pixels < 1_000_000:
        return f"{pixels:,} pixels"
    return f"{pixels / 1_000_000:.1f}".removesuffix(".0") + " megapixels"


def load_image(
    data: bytes,
    filename: str = "image",
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> LoadedImage:
    """Validate and decode untrusted image bytes.

    Raises ImageTooLargeError (more than ``max_bytes``), DecompressionBombError (more
    than ``max_pixels`` declared) or BadImageError (empty, not an image, unsupported
    format, truncated or corrupt). The limits are checked before any pixel is decoded.
    """
    data = bytes(data)
    if len(data) > max_bytes:
        size, limit = format_sizes(len(data), max_bytes)
        raise ImageTooLargeError(
            f"“{filename}” is {size}; the limit is {limit}. "
            "Please use a smaller file, for example by exporting it at a lower resolution "
            "or higher JPEG compression."
        )
    if not data:
        raise BadImageError(
            f"“{filename}” is empty (0 bytes). The upload or download may have failed; "
            "please try again with the original file."
        )

    with _open(data, filename, max_pixels) as probe:
        image_format = probe.format
        try:
            # verify() checks structure (e.g. PNG chunk CRCs) without decoding pixels.
            probe.verify()
        except _DECODE_ERRORS as exc:
            raise _damaged(filename, image_format) from exc

    # verify() leaves the image unusable, so decode from a fresh handle.
    with _open(data, filename, max_pixels) as im:
        try:
            im.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DecompressionBombError(
                f"“{filename}” declares more pixels than is safe to decode. Please resize it and upload it again."
            ) from exc
        except _DECODE_ERRORS as exc:
            raise _damaged(filename, image_format) from exc
        try:
            rgb = _to_rgb(_apply_orientation(im))
        except _DECODE_ERRORS as exc:
            raise BadImageError(
                f"“{filename}” uses a colour mode ({im.mode}) that cannot be converted "
                "to RGB. Please re-save it as an ordinary RGB JPEG or PNG."
            ) from exc

    return LoadedImage(
        image=rgb,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        format=_canonical_format(image_format),
        width=rgb.width,
        height=rgb.height,
        filename=filename,
    )


def _open(data: bytes, filename: str, max_pixels: int) -> ImageFile.ImageFile:
    """Open lazily (header only) and enforce the format and pixel limits."""
    try:
        im = Image.open(io.BytesIO(data), formats=_OPEN_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own global limit (or a warnings filter set to "error") fired first.
        raise DecompressionBombError(
            f"“{filename}” declares an enormous number of pixels; the limit is "
            f"{_format_megapixels(max_pixels)}. It may be a decompression bomb. "
            "If it is a real photo, resize it and upload it again."
        ) from exc
    except UnidentifiedImageError as exc:
        kind = sniff_format(data)
        if kind is None:
            raise _not_an_image(data, filename) from exc
        raise _no_pixels(filename, kind) if _declares_no_pixels(data, kind) else _damaged(filename, kind) from exc
    except _DECODE_ERRORS as exc:
        raise _damaged(filename, sniff_format(data)) from exc

    if _canonical_format(im.format) not in ALLOWED_FORMATS:  # defensive: see _OPEN_FORMATS
        im.close()
        raise _not_an_image(data, filename)
    width, height = im.size
    if width <= 0 or height <= 0:
        im.close()
        raise _no_pixels(filename, _canonical_format(im.format))
    if width * height > max_pixels:
        im.close()
        raise DecompressionBombError(
            f"“{filename}” is {width} × {height} pixels "
            f"({_format_megapixels(width * height)}); the limit is "
            f"{_format_megapixels(max_pixels)}. Please resize it and upload it again."
        )
    return im


def _canonical_format(name: str | None) -> str:
    # Multi-picture JPEGs straight from many cameras and phones open as "MPO".
    return "JPEG" if name == "MPO" else (name or "unknown")


def _damaged(filename: str, image_format: str | None) -> BadImageError:
    kind = f"a {_canonical_format(image_format)} image" if image_format else "an image"
    return BadImageError(
        f"“{filename}” looks like {kind} but is damaged or incomplete (it may "
        "have been cut off during upload or download). Please try the original file again."
    )


def _no_pixels(filename: str, image_format: str) -> BadImageError:
    return BadImageError(
        f"“{filename}” is a {image_format} image of no pixels (its header says 0 pixels wide or high), so "
        "there is nothing to tag. Please export the picture again from the program that made it."
    )


# First bytes of the supported formats: a file that starts like one but that Pillow cannot open is
# a damaged image of that format, not "an unsupported format".
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def sniff_format(head: bytes) -> str | None:
    """The supported format the first bytes announce (``"PNG"``, ``"WEBP"`` ...), else None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)


def _declares_no_pixels(data: bytes, image_format: str) -> bool:
    """True when a PNG, GIF or BMP header declares a width or height of 0."""
    if image_format == "PNG" and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
    elif image_format == "GIF" and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
    elif image_format == "BMP" and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
    else:
        return False
    return width == 0 or height == 0


# Magic prefixes of files analysts commonly mistake for supported images, so the
# message can say what the file is instead of only what it is not.
_KNOWN_OTHER_KINDS: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"\x00\x00\x01\x00", "an icon (ICO) file"),
    (b"8BPS", "a Photoshop (PSD) file"),
    (b"PK\x03\x04", "a ZIP archive or Office document"),
    (b"<svg", "an SVG drawing"),
    (b"<!doctype html", "a web page (HTML)"),
    (b"<html", "a web page (HTML)"),
)


def _describe_other(data: bytes) -> str | None:
    head = data[:64].lstrip().lower()
    for magic, kind in _KNOWN_OTHER_KINDS:
        if head.startswith(magic.lower()):
            return kind
    if head.startswith(b"<?xml") and b"<svg" in data[:1024].lower():
        return "an SVG drawing"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "a HEIC/HEIF photo (the iPhone default)"
        if brand in (b"avif", b"avis"):
            return "an AVIF image"
        return "a video or other media container"
    return None


def _not_an_image(data: bytes, filename: str) -> BadImageError:
    kind = _describe_other(data)
    what = f"It looks like {kind}. " if kind else ""
    return BadImageError(
        f"“{filename}” is not an image that can be read here. {what}"
        f"Supported formats: {_SUPPORTED_TEXT}. Please convert it to JPEG or PNG and "
        "try again."
    )


def _apply_orientation(im: Image.Image) -> Image.Image:
    try:
        # Checked first because exif_transpose copies even upright images, doubling
        # peak memory for large photos.
        if im.getexif().get(ExifTags.Base.Orientation, 1) == 1:
            return im
        return ImageOps.exif_transpose(im)
    except _DECODE_ERRORS:
        # A broken EXIF block should not reject an otherwise good photo.
        return im


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert any decoded mode to 8-bit RGB without clipping or black backgrounds."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode.startswith("I"):
        return _high_bit_depth_to_rgb(im)
    if mode == "CMYK":
        return _cmyk_to_rgb(im)
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in im.info:
        return _flatten_on_white(im.convert("RGBA"))
    # "1", "L", "P" (opaque), "YCbCr", "F" ...
    return im.convert("RGB")


def _high_bit_depth_to_rgb(im: Image.Image) -> Image.Image:
    # Pillow's own convert("L") clips 16-bit values at 255, turning mid-grey into
    # white; scale the full 0..65535 range down instead. Mode "I" (32-bit) is what
    # some 16-bit TIFF/PNG variants decode to, so it gets the same 16-bit scaling.
    values = np.asarray(im).astype(np.float64)
    scaled = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled).convert("RGB")


_srgb_profile: ImageCms.ImageCmsProfile | None = None


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    # Print-shop CMYK JPEGs carry an ICC profile; converting through it gives far more
    # faithful colours than Pillow's naive formula, which stays as the fallback.
    global _srgb_profile
    icc = im.info.get("icc_profile")
    if icc:
        try:
            if _srgb_profile is None:
                _srgb_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(im, source, _srgb_profile, outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass
    return im.convert("RGB")


def _flatten_on_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGBA", rgba.size, (*_WHITE, 255))
    background.alpha_composite(rgba)
    return background.convert("RGB")


def downscale(image: Image.Image, max_side: int) -> Image.Image:
    """Return ``image`` shrunk so its longer side is at most ``max_side``.

    Aspect ratio is kept. An image that already fits is returned as is (same object).
    """
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    width, height = image.size
    longest = max(width, height)
    if longest <= max_side:
        return image
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # reducing_gap makes large reductions much faster with no visible loss.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def encode_jpeg(image: Image.Image, quality: int = 90) -> bytes:
    """Encode ``image`` as a baseline JPEG (converted to RGB first if needed)."""
    if image.mode != "RGB":
        image = _to_rgb(image)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def make_thumbnail(image: Image.Image, max_side: int = 256) -> bytes:
    """Return JPEG bytes of ``image`` downscaled to at most ``max_side`` pixels."""
    return encode_jpeg(downscale(image, max_side), quality=85)


def make_preview(image: Image.Image) -> bytes:
    """Return the bounded review preview of ``image``: JPEG, long side at most ``PREVIEW_SIDE``."""
    return encode_jpeg(downscale(image, PREVIEW_SIDE), quality=PREVIEW_QUALITY)
