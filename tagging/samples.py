"""The bundled sample photos (CC0 / public domain, see samples/LICENSES.md)."""

from __future__ import annotations

from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
SAMPLE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def sample_names(directory: Path = SAMPLES_DIR) -> list[str]:
    """File names of the sample photos, sorted."""
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if p.suffix.lower() in SAMPLE_SUFFIXES)


def sample_bytes(name: str, directory: Path = SAMPLES_DIR) -> bytes:
    """The bytes of one sample photo; only names listed by ``sample_names`` are accepted."""
    if name not in sample_names(directory):
        raise FileNotFoundError(f"There is no sample photo called {name!r}.")
    return (directory / name).read_bytes()
