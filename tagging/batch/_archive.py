"""Safe, in-memory reading of the images inside an uploaded zip archive.

Nothing is ever written to disk, so a hostile member name cannot escape anywhere; names
are still sanitised because they are shown on the page and exported. Defences:

- only image members are read: by extension (``.jpg`` ...), or by sniffing the first
  bytes of members without an extension; other members are skipped with a reason;
- nested archives are not opened; directories, symbolic links, encrypted members and
  macOS resource forks (``__MACOSX/``, ``._name``) are skipped;
- zip bombs: at most ``max_members`` images, each at most ``max_member_bytes`` and all
  together at most ``max_total_bytes`` uncompressed (the *declared* sizes are checked
  before anything is decompressed, and ``zipfile`` never decompresses more than a
  member declares: a lying header ends in a CRC error); a member that expands to more
  than ``RATIO_FLOOR_BYTES`` at more than ``max_ratio`` times its compressed size is
  refused (photos barely compress; a bomb compresses 1000:1);
- path traversal (``../../x.jpg``, ``/etc/x.jpg``, ``C:\\x.jpg``): the display name keeps
  only the ordinary parts of the path, so nested folders flatten to ``folder/sub/x.jpg``.
"""

from __future__ import annotations

import io
import re
import stat
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from tagging.errors import TaggingError
from tagging.images import DEFAULT_MAX_BYTES, format_size

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
ARCHIVE_EXTENSIONS = frozenset({".zip", ".jar", ".7z", ".rar", ".tar", ".gz", ".tgz", ".bz2", ".xz"})
DEFAULT_MAX_MEMBERS = 500
DEFAULT_MAX_TOTAL_BYTES = 500 * 1024 * 1024
DEFAULT_MAX_RATIO = 100.0
RATIO_FLOOR_BYTES = 1024 * 1024
"""The compression-ratio check only applies to members that expand to more than this."""
MAX_NAME_CHARS = 200
_SNIFF_BYTES = 16
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


class ArchiveError(TaggingError):
    """The upload is not a zip archive that can be read at all (per-member problems are skips)."""


@dataclass(frozen=True)
class Skipped:
    """A member that was not read, and why (written for the analyst)."""

    name: str
    reason: str


@dataclass
class ArchiveContents:
    """The images read from an archive, in archive order, and the members skipped."""

    images: list[tuple[str, bytes]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(len(data) for _, data in self.images)


def is_zip(data: bytes, filename: str = "") -> bool:
    """True when the bytes start like a zip archive (or are empty but named ``.zip``)."""
    return data[:4] in _ZIP_MAGIC or (not data and filename.lower().endswith(".zip"))


def sanitize_member_name(raw: str, fallback: str = "image") -> str:
    """A display name for a member: ordinary path parts only, joined with ``/``.

    Backslashes count as separators; empty, ``.`` and ``..`` parts, drive letters and
    leading slashes are dropped; control and format characters are removed; the result
    is at most ``MAX_NAME_CHARS`` long (the end, with the file name, is kept).
    """
    text = "".join(ch for ch in raw.replace("\\", "/") if unicodedata.category(ch)[0] != "C")
    parts = []
    for part in text.split("/"):
        part = part.strip()
        if not part or part in (".", "..") or re.fullmatch(r"[A-Za-z]:", part):
            continue
        parts.append(part)
    name = "/".join(parts) or fallback
    if len(name) > MAX_NAME_CHARS:
        name = "…" + name[-(MAX_NAME_CHARS - 1):]
    return name


def sniff_image(head: bytes) -> bool:
    """True when the first bytes are those of a JPEG, PNG, GIF, WebP, BMP or TIFF file."""
    return (
        head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*"))
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    )


def extract_images(
    data: bytes,
    archive_name: str = "archive.zip",
    *,
    max_members: int = DEFAULT_MAX_MEMBERS,
    max_member_bytes: int = DEFAULT_MAX_BYTES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> ArchiveContents:
    """Read the image members of a zip archive held in memory.

    Display names are sanitised and made unique. Raises ``ArchiveError`` when the bytes
    are not a readable zip archive at all; every per-member problem is a ``Skipped``.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ArchiveError(
            f"“{archive_name}” is not a zip archive that can be read ({exc}). Please re-create the "
            "zip (for example with your system's “Compress” command) and upload it again."
        ) from exc
    contents = ArchiveContents()
    used_names: set[str] = set()
    total = 0
    full = False  # the total size limit was reached: read nothing more
    with archive:
        for info in archive.infolist():
            name = sanitize_member_name(info.filename)
            reason = _refusal(info, name)
            if reason is None and len(contents.images) >= max_members:
                reason = f"the archive holds more than {max_members} images; only the first {max_members} are read"
            if reason is None and full:
                reason = f"the images together would exceed {format_size(max_total_bytes)}; not read"
            if reason is None:
                reason = _size_refusal(info, total, max_member_bytes, max_total_bytes, max_ratio)
                full = reason is not None and reason.startswith("the images together")
            if reason is None:
                try:
                    with archive.open(info) as member:
                        if not PurePosixPath(name).suffix:
                            head = member.read(_SNIFF_BYTES)
                            if not sniff_image(head):
                                reason = "not an image (no file extension, and the content is not an image)"
                                body = b""
                            else:
                                body = head + member.read(max_member_bytes + 1 - len(head))
                        else:
                            body = member.read(max_member_bytes + 1)
                except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
                        RuntimeError) as exc:
                    reason = f"could not be read from the archive ({_short(exc)}); it may be damaged"
                else:
                    if reason is None and len(body) > max_member_bytes:  # defensive: sizes were checked
                        reason = f"larger than the {format_size(max_member_bytes)} limit per image"
            if reason is not None:
                if reason:  # "" = skip silently (directories)
                    contents.skipped.append(Skipped(name, reason))
                continue
            total += len(body)
            contents.images.append((_unique(name, used_names), body))
    return contents


def _refusal(info: zipfile.ZipInfo, name: str) -> str | None:
    """Why a member is not an image we read, from its header alone ("" = skip silently)."""
    if info.is_dir():
        return ""
    mode = info.external_attr >> 16
    if mode and stat.S_ISLNK(mode):
        return "a symbolic link, not a file"
    parts = PurePosixPath(info.filename.replace("\\", "/")).parts
    base = parts[-1] if parts else ""
    if "__MACOSX" in parts or base.startswith("._") or base in (".DS_Store", "Thumbs.db", "desktop.ini"):
        return "system metadata, not a photo"
    if info.flag_bits & 0x1:
        return "encrypted; password-protected members are not read"
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in ARCHIVE_EXTENSIONS:
        return "a nested archive; archives inside archives are not opened (upload it separately)"
    if suffix and suffix not in IMAGE_EXTENSIONS:
        return f"not an image ({suffix} file)"
    return None


def _size_refusal(
    info: zipfile.ZipInfo, total: int, max_member: int, max_total: int, max_ratio: float
) -> str | None:
    """Why a member is too big to decompress, from its declared sizes (zip-bomb guard)."""
    size = info.file_size
    if size > max_member:
        return f"{format_size(size)} uncompressed, over the {format_size(max_member)} limit per image"
    if size > RATIO_FLOOR_BYTES and size > max_ratio * max(info.compress_size, 1):
        ratio = size / max(info.compress_size, 1)
        return (
            f"compressed {ratio:,.0f}:1, far more than any photo (a possible zip bomb); "
            "not decompressed"
        )
    if total + size > max_total:
        return f"the images together would exceed {format_size(max_total)}; not read"
    return None


def _unique(name: str, used: set[str]) -> str:
    candidate, n = name, 1
    while candidate in used:
        n += 1
        path = PurePosixPath(name)
        candidate = str(path.with_name(f"{path.stem} ({n}){path.suffix}"))
    used.add(candidate)
    return candidate


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 120 else text[:119] + "…"
