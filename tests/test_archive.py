"""Safe zip intake: names, non-images, nested archives, zip bombs, path traversal."""

from __future__ import annotations

import io
import os
import pickle
import stat
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tagging.batch import (
    ArchiveError,
    extract_images,
    is_zip,
    sanitize_member_name,
    scan_archive,
    sniff_image,
)
from tagging.errors import SourceReadError


def _png(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (32, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def _jpeg(color: tuple[int, int, int] = (10, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(buffer, "JPEG")
    return buffer.getvalue()


def _zip(members: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def _reasons(contents) -> dict[str, str]:
    return {s.name: s.reason for s in contents.skipped}


def test_nested_folders_flatten_to_display_names_in_archive_order():
    data = _zip([("top.png", _png()), ("holiday/", b""), ("holiday/day 1/beach.JPG", _jpeg()),
                 ("holiday/day 2/sea.jpeg", _jpeg((1, 2, 3)))])
    contents = extract_images(data, "photos.zip")
    assert [name for name, _ in contents.images] == ["top.png", "holiday/day 1/beach.JPG", "holiday/day 2/sea.jpeg"]
    assert contents.images[1][1] == _jpeg()
    assert contents.skipped == []  # the directory entry is not worth a line


def test_non_image_members_are_skipped_with_a_reason_and_sniffing_finds_unnamed_images():
    data = _zip([("notes.txt", b"hello"), ("table.csv", b"a,b"), ("IMG_0001", _jpeg()),
                 ("README", b"just text, no image"), ("cat.png", _png())])
    contents = extract_images(data)
    assert [name for name, _ in contents.images] == ["IMG_0001", "cat.png"]
    reasons = _reasons(contents)
    assert reasons["notes.txt"] == "not an image (.txt file)"
    assert "not an image" in reasons["table.csv"]
    assert "no file extension" in reasons["README"]


def test_an_image_extension_with_other_content_is_passed_on_for_load_image_to_refuse():
    contents = extract_images(_zip([("fake.jpg", b"this is not a jpeg")]))
    assert contents.images == [("fake.jpg", b"this is not a jpeg")]


def test_nested_archives_and_system_files_are_not_opened():
    inner = _zip([("inner.png", _png())])
    data = _zip([("inner.zip", inner), ("more/old.tar.gz", b"\x1f\x8b"), ("__MACOSX/._cat.png", b"\x00\x05"),
                 ("._dog.png", b"\x00\x05"), (".DS_Store", b"\x00"), ("cat.png", _png())])
    contents = extract_images(data)
    assert [name for name, _ in contents.images] == ["cat.png"]
    reasons = _reasons(contents)
    assert "nested archive" in reasons["inner.zip"]
    assert "nested archive" in reasons["more/old.tar.gz"]
    assert reasons["__MACOSX/._cat.png"] == reasons["._dog.png"] == "system metadata, not a photo"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/evil.jpg", "etc/evil.jpg"),
        ("/absolute/path/x.png", "absolute/path/x.png"),
        ("..\\..\\windows\\win.png", "windows/win.png"),
        ("C:\\temp\\y.png", "temp/y.png"),
        ("a/./b//../c.png", "a/b/c.png"),
        ("bell\x07and\u202enul.png", "bellandnul.png"),
        ("..", "image"),
    ],
)
def test_sanitize_member_name_keeps_only_ordinary_parts(raw, expected):
    assert sanitize_member_name(raw) == expected


def test_path_traversal_names_are_read_into_memory_only(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = _zip([("../../../../tmp/escape.png", _png()), ("/etc/passwd.png", _png((1, 1, 1))),
                 ("..\\..\\evil.jpg", _jpeg())])
    contents = extract_images(data)
    assert [name for name, _ in contents.images] == ["tmp/escape.png", "etc/passwd.png", "evil.jpg"]
    assert list(tmp_path.iterdir()) == []  # nothing was written anywhere near


def test_duplicate_display_names_are_made_unique():
    with pytest.warns(UserWarning):  # zipfile warns about the duplicate name it is asked to write
        data = _zip([("a/cat.png", _png()), ("a/cat.png", _png((0, 0, 0))), ("../a/cat.png", _png((9, 9, 9)))])
    names = [name for name, _ in extract_images(data).images]
    assert names == ["a/cat.png", "a/cat (2).png", "a/cat (3).png"]


def test_zip_bomb_by_compression_ratio_is_not_decompressed():
    bomb = b"\x00" * (8 * 1024 * 1024)  # 8 MB of zeros deflate to about 8 KB: 1000:1
    data = _zip([("bomb.bmp", bomb), ("ok.png", _png())])
    assert len(data) < 100_000
    contents = extract_images(data)
    assert [name for name, _ in contents.images] == ["ok.png"]
    assert "zip bomb" in _reasons(contents)["bomb.bmp"]


def test_small_members_that_compress_well_are_fine():
    flat = io.BytesIO()
    Image.new("RGB", (200, 200), (255, 255, 255)).save(flat, "BMP")  # 120 KB that deflates 300:1
    contents = extract_images(_zip([("white.bmp", flat.getvalue())]))
    assert [name for name, _ in contents.images] == ["white.bmp"]


def test_member_and_total_size_limits_and_member_count_limit():
    members = [(f"p{i}.png", _png((i, i, i))) for i in range(6)]
    size = len(members[0][1])
    data = _zip(members, zipfile.ZIP_STORED)
    by_count = extract_images(data, max_members=4)
    assert len(by_count.images) == 4
    assert all("more than 4 images" in s.reason for s in by_count.skipped) and len(by_count.skipped) == 2
    by_total = extract_images(data, max_total_bytes=int(size * 2.5))
    assert len(by_total.images) == 2
    assert [s.name for s in by_total.skipped] == ["p2.png", "p3.png", "p4.png", "p5.png"]
    assert all("together would exceed" in s.reason for s in by_total.skipped)
    by_member = extract_images(data, max_member_bytes=size - 1)
    assert by_member.images == []
    assert "limit per image" in by_member.skipped[0].reason


def test_a_header_that_understates_the_size_ends_in_a_read_error_not_a_big_read():
    payload = _png() + b"\x00" * 5000
    data = bytearray(_zip([("liar.png", payload)], zipfile.ZIP_STORED))
    central = data.rindex(b"PK\x01\x02")
    data[central + 24:central + 28] = (100).to_bytes(4, "little")  # declared uncompressed size
    contents = extract_images(bytes(data))
    assert contents.images == []
    assert "could not be read" in _reasons(contents)["liar.png"]


def test_encrypted_members_and_symlinks_are_skipped():
    link = zipfile.ZipInfo("link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = bytearray(_zip([("locked.png", _png()), (link, b"/etc/passwd"), ("ok.png", _png())]))
    # zipfile cannot write encrypted members: set the "encrypted" flag bit in both headers of the first
    data[6] |= 0x1
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 0x1
    contents = extract_images(bytes(data))
    assert [name for name, _ in contents.images] == ["ok.png"]
    reasons = _reasons(contents)
    assert "encrypted" in reasons["locked.png"]
    assert "symbolic link" in reasons["link.png"]


# Named ids: random bytes in a test id differ between pytest-xdist workers, which then refuse to run.
@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 truncated", b"not a zip at all", os.urandom(64)],
                         ids=["empty", "truncated", "not-a-zip", "random-bytes"])
def test_unreadable_archive_raises_archive_error_with_advice(data):
    with pytest.raises(ArchiveError, match="not a zip archive that can be read"):
        extract_images(data, "broken.zip")


def test_is_zip_and_sniff_image():
    assert is_zip(_zip([("a.png", _png())]))
    assert is_zip(b"", "empty.zip")
    assert not is_zip(_png(), "a.png")
    assert sniff_image(_png()[:16]) and sniff_image(_jpeg()[:16])
    assert not sniff_image(b"%PDF-1.7")


# --- issue 10, defect 1: lazy members, whole-archive bounds ------------------------------------
def _zeros_zip(members: int, size: int = 1024 * 1024) -> bytes:
    """The hostile corpus's zip: many members of zeros, each at the per-member ratio floor."""
    return _zip([(f"z{i:03d}.bmp", b"\0" * size) for i in range(members)])


def test_a_zip_of_many_small_zero_members_is_refused_as_a_whole():
    data = _zeros_zip(9)  # 9 MiB from about 10 KB; no single member is over the 1 MiB ratio floor
    assert len(data) < 100_000
    with pytest.raises(ArchiveError, match="zip bomb") as info:
        scan_archive(data, "zeros.zip")
    assert "zeros.zip" in str(info.value) and ":1" in str(info.value)
    with pytest.raises(ArchiveError, match="zip bomb"):
        extract_images(data, "zeros.zip")


def test_members_are_only_decompressed_when_read():
    payloads = [os.urandom(256 * 1024) for _ in range(24)]  # 6 MiB of photos that do not compress
    data = _zip([(f"p{i}.jpg", body) for i, body in enumerate(payloads)], zipfile.ZIP_STORED)
    tracemalloc.start()
    try:
        index = scan_archive(data, "photos.zip")
        scanned_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        for _, member in index.members:
            member.read()
        read_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [name for name, _ in index.members] == [f"p{i}.jpg" for i in range(24)]
    assert index.declared_bytes == sum(map(len, payloads))
    assert scanned_peak < 1024 * 1024  # nothing decompressed: far below the 6 MiB of members
    assert read_peak < 4 * 256 * 1024  # read one at a time, never all at once
    assert [member.read() for _, member in index.members] == payloads


def test_a_member_source_is_picklable_and_reads_the_same_bytes():
    data = _zip([("a/cat.png", _png()), ("b.jpg", _jpeg())])
    index = scan_archive(data, "two.zip")
    copies = pickle.loads(pickle.dumps([member for _, member in index.members]))
    assert [c.read() for c in copies] == [_png(), _jpeg()]


def test_a_member_that_lies_about_its_size_fails_alone_when_read():
    payload = _png() + b"\x00" * 5000
    data = bytearray(_zip([("liar.png", payload), ("ok.png", _png())], zipfile.ZIP_STORED))
    central = data.index(b"PK\x01\x02")
    data[central + 24:central + 28] = (100).to_bytes(4, "little")  # declared uncompressed size of liar.png
    index = scan_archive(bytes(data), "liars.zip")
    (_, liar), (_, ok) = index.members
    with pytest.raises(SourceReadError, match="liar.png.*could not be read"):
        liar.read()
    assert ok.read() == _png()


def test_an_empty_archive_says_it_is_empty():
    index = scan_archive(_zip([]), "empty.zip")
    assert index.members == [] and index.skipped == [] and index.entries == 0
