"""Safe, lazy, in-memory reading of the images inside an uploaded zip archive.

Nothing is ever written to disk, so a hostile member name cannot escape anywhere; names
are still sanitised because they are shown on the page and exported. ``scan_archive`` reads
only the central directory (and the first bytes of members without an extension): every
image member becomes a ``ZipMember``, a source that decompresses that one member when it is
read, so a session holds the compressed upload, never the expanded images. Defences:

- only image members are read: by extension (``.jpg`` ...), or by sniffing the first
  bytes of members without an extension; other members are skipped with a reason;
- nested archives are not opened; directories, symbolic links, encrypted members and
  macOS resource forks (``__MACOSX/``, ``._name``) are skipped;
- zip bombs, judged from the *declared* sizes before anything is decompressed (and
  ``zipfile`` never decompresses more than a member declares: a lying header ends in a
  CRC error when that member is read, and only that member fails): at most
  ``max_members`` images, each at most ``max_member_bytes`` and all together at most
  ``max_total_bytes`` uncompressed; a member that expands to more than
  ``RATIO_FLOOR_BYTES`` at more than ``max_ratio`` times its compressed size is refused;
  and the archive as a whole is refused when its image members together expand to more
  than ``ARCHIVE_RATIO_FLOOR_BYTES`` at more than ``max_ratio`` times the archive's size
  (476 members of 1 MiB of zeros each pass the per-member check but not this one). Photos
  barely compress; a bomb compresses 1000:1;
- path traversal (``../../x.jpg``, ``/etc/x.jpg``, ``C:\\x.jpg``): the display name keeps
  only the ordinary parts of the path, so nested folders flatten to ``folder/sub/x.jpg``.
"""

from __future__ import annotations

import io
import re
import stat
import threading
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, ClassVar

from tagging.errors import SourceReadError, TaggingError
from tagging.images import DEFAULT_MAX_BYTES, format_size, format_sizes, sniff_format

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
ARCHIVE_EXTENSIONS = frozenset({".zip", ".jar", ".7z", ".rar", ".tar", ".gz", ".tgz", ".bz2", ".xz"})
DEFAULT_MAX_MEMBERS = 500
DEFAULT_MAX_TOTAL_BYTES = 500 * 1024 * 1024
DEFAULT_MAX_RATIO = 100.0
RATIO_FLOOR_BYTES = 1024 * 1024
"""The compression-ratio check of one member only applies to members that expand to more than this."""
ARCHIVE_RATIO_FLOOR_BYTES = 8 * 1024 * 1024
"""The whole-archive ratio check only applies when the image members together expand to more than this
(a few flat BMPs or screenshots compress well and are fine)."""
MAX_NAME_CHARS = 200
_SNIFF_BYTES = 16
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
                RuntimeError, zlib.error)


class ArchiveError(TaggingError):
    """The upload is not a zip archive that can be read at all, or is a zip bomb (per-member problems are skips)."""


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


class ZipBytes:
    """A zip archive held in memory, shared by the ``ZipMember`` sources of its images.

    Members are decompressed one at a time, under a lock, from one ``zipfile.ZipFile``
    opened on first use. ``keep`` is any object that must stay alive as long as a member
    can be read (the upload's budget hold). Pickled, it carries the bytes and its name only.
    """

    def __init__(self, data: bytes, name: str = "archive.zip", keep: Any = None) -> None:
        self.data = data
        self.name = name
        self.keep = keep
        self._zip: zipfile.ZipFile | None = None
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[Any, ...]:
        return (ZipBytes, (self.data, self.name))

    def read_member(self, index: int, max_bytes: int) -> bytes:
        """The member's bytes; raises ``_MemberError`` (the reason, for the analyst) when it cannot be read."""
        try:
            with self._lock:
                if self._zip is None:
                    self._zip = zipfile.ZipFile(io.BytesIO(self.data))
                with self._zip.open(self._zip.infolist()[index]) as member:
                    body = member.read(max_bytes + 1)
        except _READ_ERRORS as exc:
            raise _MemberError(f"could not be read from the archive ({_short(exc)}); it may be damaged") from exc
        if len(body) > max_bytes:  # defensive: the declared sizes were checked
            raise _MemberError(f"is larger than the {format_size(max_bytes)} limit per image")
        return body


class _MemberError(Exception):
    """Why one member could not be read (the text follows the member's name)."""


@dataclass(frozen=True)
class ZipMember:
    """A ``ByteSource``: one image member of a ``ZipBytes``, decompressed each time it is read."""

    archive: ZipBytes = field(repr=False, compare=False)
    index: int
    name: str
    size: int  # declared uncompressed size
    max_bytes: int = DEFAULT_MAX_BYTES
    # The archive lives in this process's memory (an upload): a cluster worker gets the member's bytes instead.
    portable: ClassVar[bool] = False

    def read(self) -> bytes:
        """The member's bytes; raises ``SourceReadError`` when they cannot be read (this member only)."""
        try:
            return self.archive.read_member(self.index, self.max_bytes)
        except _MemberError as exc:
            raise SourceReadError(f"“{self.name}” {exc}") from exc.__cause__


@dataclass
class ArchiveIndex:
    """What ``scan_archive`` found: the image members (not yet decompressed) and the members skipped.

    ``entries`` counts every entry of the archive (folders and skipped ones too), so an empty
    archive can be told from one with nothing readable in it.
    """

    members: list[tuple[str, ZipMember]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    entries: int = 0

    @property
    def declared_bytes(self) -> int:
        """The images' uncompressed size, as their headers declare it."""
        return sum(member.size for _, member in self.members)


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
    return sniff_format(head) is not None


def scan_archive(
    data: bytes,
    archive_name: str = "archive.zip",
    *,
    keep: Any = None,
    max_members: int = DEFAULT_MAX_MEMBERS,
    max_member_bytes: int = DEFAULT_MAX_BYTES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> ArchiveIndex:
    """List the image members of a zip archive held in memory, decompressing none of them.

    Display names are sanitised and made unique. ``keep`` stays referenced by the members
    (see ``ZipBytes``). Raises ``ArchiveError`` when the bytes are not a readable zip archive
    at all, or when its images together compress far more than photos do (a zip bomb);
    every per-member problem is a ``Skipped``.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _READ_ERRORS as exc:
        raise ArchiveError(
            f"“{archive_name}” is not a zip archive that can be read ({_short(exc)}). Please re-create the "
            "zip (for example with your system's “Compress” command) and upload it again."
        ) from exc
    shared = ZipBytes(data, archive_name, keep)
    index = ArchiveIndex()
    used_names: set[str] = set()
    total = 0
    full = False  # the total size limit was reached: read nothing more
    with archive:
        infos = archive.infolist()
        index.entries = len(infos)
        _check_whole_archive(infos, len(data), archive_name, max_member_bytes, max_ratio)
        for position, info in enumerate(infos):
            name = sanitize_member_name(info.filename)
            reason = _refusal(info, name)
            if reason is None and len(index.members) >= max_members:
                reason = f"the archive holds more than {max_members} images; only the first {max_members} are read"
            if reason is None and full:
                reason = f"the images together would exceed {format_size(max_total_bytes)}; not read"
            if reason is None:
                reason = _size_refusal(info, total, max_member_bytes, max_total_bytes, max_ratio)
                full = reason is not None and reason.startswith("the images together")
            if reason is None and not PurePosixPath(name).suffix:
                reason = _sniff_refusal(archive, info)
            if reason is not None:
                if reason:  # "" = skip silently (directories)
                    index.skipped.append(Skipped(name, reason))
                continue
            total += info.file_size
            unique = _unique(name, used_names)
            index.members.append((unique, ZipMember(shared, position, unique, info.file_size, max_member_bytes)))
    return index


def extract_images(
    data: bytes,
    archive_name: str = "archive.zip",
    *,
    max_members: int = DEFAULT_MAX_MEMBERS,
    max_member_bytes: int = DEFAULT_MAX_BYTES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> ArchiveContents:
    """Read every image member of a zip archive into memory (``scan_archive``, then each member read).

    For small archives and tests; the Batch page keeps the lazy members instead. A member that
    cannot be read is a ``Skipped``. Raises ``ArchiveError`` as ``scan_archive`` does.
    """
    index = scan_archive(data, archive_name, max_members=max_members, max_member_bytes=max_member_bytes,
                         max_total_bytes=max_total_bytes, max_ratio=max_ratio)
    contents = ArchiveContents(skipped=list(index.skipped))
    for name, member in index.members:
        try:
            contents.images.append((name, member.archive.read_member(member.index, member.max_bytes)))
        except _MemberError as exc:
            contents.skipped.append(Skipped(name, str(exc)))
    return contents


def _check_whole_archive(infos: list[zipfile.ZipInfo], archive_size: int, archive_name: str, max_member: int,
                         max_ratio: float) -> None:
    """Refuse an archive whose image members together expand far more than photos do.

    Members refused on their own (too big, or a bomb by themselves) are never decompressed,
    so they do not count here.
    """
    images = [
        info for info in infos
        if _refusal(info, sanitize_member_name(info.filename)) is None
        and _size_refusal(info, 0, max_member, info.file_size, max_ratio) is None
    ]
    expanded = sum(info.file_size for info in images)
    # A header can claim any compressed size; the members cannot hold more than the archive itself.
    compressed = max(1, min(sum(info.compress_size for info in images), archive_size))
    if expanded > ARCHIVE_RATIO_FLOOR_BYTES and expanded > max_ratio * compressed:
        raise ArchiveError(
            f"“{archive_name}” would expand from {format_size(archive_size)} to {format_size(expanded)} "
            f"({expanded / compressed:,.0f}:1), far more than photos compress: it looks like a zip bomb, so it "
            "was not opened. Zip the original photos again and upload that."
        )


def _sniff_refusal(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str | None:
    """Why a member without an extension is not read: its first bytes are not an image's."""
    try:
        with archive.open(info) as member:
            head = member.read(_SNIFF_BYTES)
    except _READ_ERRORS as exc:
        return f"could not be read from the archive ({_short(exc)}); it may be damaged"
    return None if sniff_image(head) else "not an image (no file extension, and the content is not an image)"


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
        shown, limit = format_sizes(size, max_member)
        return f"{shown} uncompressed, over the {limit} limit per image"
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
