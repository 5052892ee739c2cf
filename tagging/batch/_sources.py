"""Where a batch's images live: files, folders, globs, zip members and fsspec URLs, read lazily.

:func:`discover` turns the command line's PATH arguments into :class:`BatchItem` values whose
``source`` is a small picklable value (a path or URL, and a member name for zips). Nothing is
read but what is needed to list: the bytes are read where the image is tagged, so on a Dask
cluster each worker reads its own images (from a shared folder or any URL fsspec knows) and
no image travels through the scheduler.

Zip archives are listed with the same refusals as an uploaded zip (``_archive``: nested
archives, links, encrypted and system members, the per-image size and compression-ratio
limits); their members are decompressed one at a time when read, so an archive of any size
holds no memory. The in-memory limits of an upload (500 images, 500 MB in all) do not apply.
"""

from __future__ import annotations

import glob
import os
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any
from urllib.parse import urlsplit

from tagging.batch._archive import (
    ARCHIVE_EXTENSIONS,
    DEFAULT_MAX_RATIO,
    IMAGE_EXTENSIONS,
    Skipped,
    _refusal,
    _size_refusal,
    _unique,
    sanitize_member_name,
    sniff_image,
)
from tagging.batch._items import BatchItem
from tagging.errors import BatchInputError, SourceReadError
from tagging.images import DEFAULT_MAX_BYTES, format_size

_SNIFF_BYTES = 16
# Errors opening or reading through fsspec: a missing file, a permission, a network failure,
# a protocol whose optional package is not installed.
_READ_ERRORS = (OSError, ValueError, ImportError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
                RuntimeError, KeyError)


def is_url(path: str) -> bool:
    """True for ``protocol://...`` arguments (read through fsspec), False for local paths."""
    return "://" in path


def shown_url(url: str) -> str:
    """A URL as it may be shown or logged: without a user name, password or query string."""
    if not is_url(url):
        return url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"


@contextmanager
def _open(location: str) -> Iterator[IO[bytes]]:
    if is_url(location):
        import fsspec  # only URLs need it

        with fsspec.open(location, "rb") as handle:
            yield handle
    else:
        with open(location, "rb") as handle:
            yield handle


def _why(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "a folder, not a file"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:159] + "…"


def _limited(handle: IO[bytes], max_bytes: int, name: str) -> bytes:
    data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SourceReadError(f"“{name}” is larger than the {format_size(max_bytes)} limit per image; not read.")
    return data


# --- sources (picklable; read where the image is tagged) --------------------------------------
@dataclass(frozen=True)
class FileSource:
    """A file on a local or shared disk (a path) or anywhere fsspec reaches (a URL)."""

    location: str
    max_bytes: int = DEFAULT_MAX_BYTES

    def read(self) -> bytes:
        """The file's bytes, at most ``max_bytes``; raises ``SourceReadError``."""
        shown = shown_url(self.location)
        try:
            with _open(self.location) as handle:
                return _limited(handle, self.max_bytes, shown)
        except SourceReadError:
            raise
        except _READ_ERRORS as exc:
            raise SourceReadError(f"“{shown}” could not be read ({_why(exc)}).") from exc


@dataclass(frozen=True)
class ZipMemberSource:
    """One member of a zip archive (a path or URL); the archive is opened on each read."""

    archive: str
    member: str  # the member's name as stored in the archive
    max_bytes: int = DEFAULT_MAX_BYTES

    def read(self) -> bytes:
        """The member's decompressed bytes, at most ``max_bytes``; raises ``SourceReadError``."""
        shown = f"{shown_url(self.archive)} › {sanitize_member_name(self.member)}"
        try:
            with _open(self.archive) as handle, zipfile.ZipFile(handle) as archive:
                info = archive.getinfo(self.member)
                if info.file_size > self.max_bytes:
                    raise SourceReadError(f"“{shown}” is larger than the {format_size(self.max_bytes)} limit per "
                                          "image; not read.")
                with archive.open(info) as member:
                    return _limited(member, self.max_bytes, shown)
        except SourceReadError:
            raise
        except _READ_ERRORS as exc:
            raise SourceReadError(f"“{shown}” could not be read from the archive ({_why(exc)}).") from exc


# --- discovery -----------------------------------------------------------------------------
@dataclass
class Discovery:
    """What the PATH arguments hold: images to tag, files not read (and why), arguments refused."""

    items: list[BatchItem] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class _Walker:
    max_bytes: int
    max_ratio: float
    found: Discovery = field(default_factory=Discovery)
    names: set[str] = field(default_factory=set)

    def add_file(self, name: str, location: str, head: Any = None) -> None:
        """One file: an image becomes an item, a zip is listed, anything else is skipped."""
        suffix = PurePosixPath(name).suffix.lower()
        if suffix == ".zip":
            self.add_zip(name, location)
        elif suffix in IMAGE_EXTENSIONS:
            self.found.items.append(BatchItem(_unique(name, self.names), source=FileSource(location, self.max_bytes)))
        elif suffix in ARCHIVE_EXTENSIONS:
            self.found.skipped.append(Skipped(name, f"a {suffix} archive; only zip archives are opened"))
        elif suffix:
            self.found.skipped.append(Skipped(name, f"not an image ({suffix} file)"))
        elif head is not None and sniff_image(head()):
            self.found.items.append(BatchItem(_unique(name, self.names), source=FileSource(location, self.max_bytes)))
        else:
            self.found.skipped.append(Skipped(name, "not an image (no file extension, and the content is not an "
                                                    "image)"))

    def add_zip(self, name: str, location: str) -> None:
        """The image members of a zip archive, listed from its central directory (nothing decompressed)."""
        try:
            with _open(location) as handle, zipfile.ZipFile(handle) as archive:
                before = len(self.found.items)
                for info in archive.infolist():
                    member = sanitize_member_name(info.filename)
                    shown = f"{name} › {member}"
                    reason = _refusal(info, member)
                    if reason is None:
                        reason = _size_refusal(info, 0, self.max_bytes, 2**63, self.max_ratio)
                    if reason is None and not PurePosixPath(member).suffix:
                        with archive.open(info) as body:
                            if not sniff_image(body.read(_SNIFF_BYTES)):
                                reason = "not an image (no file extension, and the content is not an image)"
                    if reason is not None:
                        if reason:  # "" = skip silently (folders)
                            self.found.skipped.append(Skipped(shown, reason))
                        continue
                    source = ZipMemberSource(location, info.filename, self.max_bytes)
                    self.found.items.append(BatchItem(_unique(shown, self.names), source=source))
                if len(self.found.items) == before:
                    self.found.skipped.append(Skipped(name, "a zip archive without any image that can be read"))
        except _READ_ERRORS as exc:
            self.found.skipped.append(Skipped(name, f"not a zip archive that can be read ({_why(exc)})"))

    # --- local paths -------------------------------------------------------------------------
    def add_local(self, arg: str) -> None:
        if glob.has_magic(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            files = [m for m in matches if os.path.isfile(m) or os.path.isdir(m)]
            if not files:
                self.found.problems.append(f"“{arg}” matches no file or folder.")
            for match in files:
                if os.path.isdir(match):
                    self.add_local_folder(match)
                else:
                    self.add_local_file(match)
        elif os.path.isdir(arg):
            self.add_local_folder(arg)
        elif os.path.isfile(arg):
            self.add_local_file(arg)
        elif os.path.lexists(arg):
            self.found.problems.append(f"“{arg}” is neither a file nor a folder that can be read.")
        else:
            self.found.problems.append(f"“{arg}”: no such file or folder.")

    def add_local_file(self, path: str) -> None:
        def head() -> bytes:
            try:
                with open(path, "rb") as handle:
                    return handle.read(_SNIFF_BYTES)
            except OSError:
                return b""

        self.add_file(os.path.normpath(path), os.path.abspath(path), head)

    def add_local_folder(self, folder: str) -> None:
        if not os.access(folder, os.R_OK | os.X_OK):
            self.found.problems.append(f"“{folder}”: the folder cannot be read (permission denied).")
            return
        for root, dirs, files in os.walk(folder, onerror=self._walk_error):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
            for file in sorted(files):
                if file.startswith("."):
                    continue
                self.add_local_file(os.path.join(root, file))

    def _walk_error(self, exc: OSError) -> None:
        self.found.skipped.append(Skipped(str(exc.filename or ""), f"could not be listed ({_why(exc)})"))

    # --- fsspec URLs -----------------------------------------------------------------------------
    def add_url(self, arg: str) -> None:
        shown = shown_url(arg)
        try:
            import fsspec

            fs, root = fsspec.core.url_to_fs(arg)
        except (ValueError, ImportError) as exc:  # unknown protocol, or its package is not installed
            self.found.problems.append(f"“{shown}” cannot be opened: {_why(exc)}")
            return
        try:
            if glob.has_magic(root):
                paths = sorted(fs.glob(root))
                if not paths:
                    self.found.problems.append(f"“{shown}” matches no file.")
                    return
                files = []
                for path in paths:
                    files.extend(sorted(fs.find(path)) if fs.isdir(path) else [path])
            elif fs.isdir(root):
                files = sorted(fs.find(root))
            elif fs.isfile(root):
                files = [root]
            else:
                self.found.problems.append(f"“{shown}”: no such file or folder.")
                return
        except (OSError, ValueError) as exc:
            self.found.problems.append(f"“{shown}” could not be listed ({_why(exc)}).")
            return
        for path in files:
            if any(part.startswith(".") or part == "__MACOSX" for part in PurePosixPath(path).parts[1:]):
                continue
            url = fs.unstrip_protocol(path)

            def head(url: str = url) -> bytes:
                try:
                    with _open(url) as handle:
                        return handle.read(_SNIFF_BYTES)
                except _READ_ERRORS:
                    return b""

            self.add_file(shown_url(url), url, head)


def discover(paths: list[str], *, max_bytes: int = DEFAULT_MAX_BYTES,
             max_ratio: float = DEFAULT_MAX_RATIO) -> Discovery:
    """The images named by PATH arguments: files, folders (recursive), globs, zip files, fsspec URLs.

    Hidden files and folders (``.name``) and ``__MACOSX`` are left out of folders. Names are unique
    (``photo (2).jpg``); zip members show as ``archive.zip › folder/photo.jpg``. Arguments that
    cannot be used at all are in ``problems``; files that are not images are in ``skipped``.
    """
    walker = _Walker(max_bytes, max_ratio)
    for arg in paths:
        if not arg.strip():
            walker.found.problems.append("An empty path was given.")
        elif is_url(arg):
            walker.add_url(arg)
        else:
            walker.add_local(arg)
    return walker.found


def require_images(found: Discovery) -> list[BatchItem]:
    """The items, or ``BatchInputError`` when an argument was refused or no image was found."""
    if found.problems:
        raise BatchInputError(" ".join(found.problems))
    if not found.items:
        raise BatchInputError("No images found in the given paths (JPEG, PNG, WebP, GIF, BMP, TIFF, or zip "
                              "archives of them).")
    return found.items
