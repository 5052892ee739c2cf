"""Batch inputs: folders, globs, zips and fsspec URLs become lazily read, picklable items."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tagging.batch import FileSource, ZipMemberSource, discover, require_images, shown_url
from tagging.errors import BatchInputError, SourceReadError


def _png(index: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (index * 40 % 256, 10, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def _zip(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "photos" / "sub").mkdir(parents=True)
    (tmp_path / "photos" / ".hidden").mkdir()
    (tmp_path / "photos" / "a.png").write_bytes(_png(1))
    (tmp_path / "photos" / "sub" / "b.JPG").write_bytes(_png(2))  # the extension is what counts, any case
    (tmp_path / "photos" / "sub" / "no-extension").write_bytes(_png(3))
    (tmp_path / "photos" / "notes.txt").write_text("not a photo")
    (tmp_path / "photos" / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "photos" / ".hidden" / "h.png").write_bytes(_png(4))
    (tmp_path / "photos" / "old.tar.gz").write_bytes(b"\x1f\x8b")
    return tmp_path


def test_a_folder_is_walked_recursively_and_every_image_is_read_only_when_asked(tree):
    found = discover([str(tree / "photos")])
    names = [item.name for item in found.items]
    base = str(tree / "photos")
    assert names == [f"{base}/a.png", f"{base}/sub/b.JPG", f"{base}/sub/no-extension"]
    assert all(item.data is None and item.known_sha256 == "" for item in found.items)  # nothing read yet
    assert found.items[1].read() == _png(2)
    skipped = {Path(s.name).name: s.reason for s in found.skipped}
    assert skipped == {"notes.txt": "not an image (.txt file)",
                       "old.tar.gz": "a .gz archive; only zip archives are opened"}
    assert not found.problems


def test_globs_and_single_files(tree):
    found = discover([str(tree / "photos" / "**" / "*.png"), str(tree / "photos" / "sub" / "b.JPG")])
    assert [Path(i.name).name for i in found.items] == ["a.png", "b.JPG"]
    assert discover([str(tree / "photos" / "*.gif")]).problems == [f"“{tree / 'photos' / '*.gif'}” matches no file "
                                                                   "or folder."]


def test_zip_members_are_listed_with_the_uploads_refusals_and_read_one_at_a_time(tmp_path):
    bomb = b"\0" * (4 * 1024 * 1024)
    archive = _zip(tmp_path / "trip.zip", [
        ("day1/cat.png", _png(5)), ("../../evil.png", _png(6)), ("readme.txt", b"hi"),
        ("inner.zip", b"PK\x05\x06" + b"\0" * 18), ("__MACOSX/._cat.png", b"junk"), ("huge.png", bomb),
    ])
    found = discover([str(archive)])
    assert [i.name for i in found.items] == [f"{archive} › day1/cat.png", f"{archive} › evil.png"]
    assert isinstance(found.items[1].source, ZipMemberSource) and found.items[1].read() == _png(6)
    reasons = {s.name.split(" › ")[1]: s.reason for s in found.skipped}
    assert set(reasons) == {"readme.txt", "inner.zip", "__MACOSX/._cat.png", "huge.png"}
    assert "zip bomb" in reasons["huge.png"] and "nested archive" in reasons["inner.zip"]


def test_a_broken_zip_is_skipped_with_a_reason(tmp_path):
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    found = discover([str(tmp_path / "broken.zip")])
    assert not found.items and "not a zip archive that can be read" in found.skipped[0].reason
    with pytest.raises(BatchInputError, match="No images found"):
        require_images(found)


def test_fsspec_urls_file_and_memory(tree):
    found = discover([f"file://{tree / 'photos' / 'sub'}", f"file://{tree / 'photos' / 'a.png'}"])
    assert [Path(i.name).name for i in found.items] == ["b.JPG", "no-extension", "a.png"]
    assert found.items[2].read() == _png(1)

    import fsspec

    memory = fsspec.filesystem("memory")
    memory.pipe("/batch/m1.png", _png(7))
    memory.pipe("/batch/deeper/m2.webp", _png(8))
    found = discover(["memory://batch"])
    assert [i.name for i in found.items] == ["memory:///batch/deeper/m2.webp", "memory:///batch/m1.png"]
    assert found.items[1].read() == _png(7)


def test_bad_arguments_are_problems_said_plainly(tmp_path):
    found = discover([str(tmp_path / "nope"), "nosuch://bucket/x", f"file://{tmp_path}/missing/", ""])
    assert found.problems[0] == f"“{tmp_path / 'nope'}”: no such file or folder."
    assert found.problems[1].startswith("“nosuch://bucket/x” cannot be opened:")
    assert found.problems[2] == f"“file://{tmp_path}/missing/”: no such file or folder."
    assert found.problems[3] == "An empty path was given."
    with pytest.raises(BatchInputError, match="no such file or folder"):
        require_images(found)


def test_sources_are_small_picklable_values_and_fail_alone(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(_png(9))
    source = pickle.loads(pickle.dumps(FileSource(str(path))))
    assert source.read() == _png(9)
    assert len(pickle.dumps(source)) < 300  # a path, not the bytes

    with pytest.raises(SourceReadError, match="larger than the"):
        FileSource(str(path), max_bytes=10).read()
    path.unlink()
    with pytest.raises(SourceReadError, match="no such file"):
        source.read()
    with pytest.raises(SourceReadError, match="could not be read from the archive"):
        ZipMemberSource(str(tmp_path / "gone.zip"), "a.png").read()


def test_urls_are_shown_without_credentials_or_query():
    assert shown_url("https://user:s3cret@example.org:8443/a/b.jpg?token=abc") == "https://example.org:8443/a/b.jpg"
    assert shown_url("/local/path.jpg") == "/local/path.jpg"
