"""Manifests: a small JSON file that describes an offline ONNX classifier, so a model is a file, not code.

The shipped EfficientNet-Lite0 is ``data/efficientnet-lite0.manifest.json``. A user adds another model they
hold (a Places365 or ImageNet-21k classifier, say) by putting ``<id>.manifest.json`` beside its ``.onnx`` in the
``models/`` folder of the checkout (or a folder in ``TAGGING_MODELS_DIR``)::

    {
      "id": "places365",                      # letters, digits, - _ . ; unique
      "title": "ResNet-18 Places365",         # shown in the app
      "model": "resnet18_places365.onnx",     # relative to the manifest
      "sha256": "...",                        # optional: checked when the model is loaded
      "input": {"name": "input", "width": 224, "height": 224, "resize": "squash",
                "channel_order": "RGB", "layout": "NCHW", "scale": 0.00392156862745098,
                "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
      "output": {"name": "logits", "activation": "softmax"},
      "labels": "places365.txt",              # one class name a line (or a JSON list), in output order
      "vocabulary": null,                     # or a table in scripts/build_vocabulary.py's format instead of labels
      "calibration": {"chance_weight": 0.0, "certainty_power": 0.0, "trusted": [], "trusted_from": 0},
      "min_confidence": 1.0, "max_tags": 50, "faces": true, "objects": false,
      "licence": "...", "provenance": {...}
    }

Only ``id``, ``model``, ``input`` (``width``/``height``), ``output`` (``name``) and one of ``labels`` /
``vocabulary`` are required. ``resize`` is ``short_side_center_crop`` (with ``resize_short_side``) or ``squash``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tagging.embedded._classifier import ACTIVATIONS
from tagging.embedded._preprocess import RESIZE_MODES, RESIZE_SHORT_SIDE_CROP, InputSpec
from tagging.embedded._vocabulary import Calibration
from tagging.errors import BackendError

DEFAULT_MANIFEST_ID = "efficientnet-lite0"
MANIFEST_SUFFIX = ".manifest.json"
USER_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
"""Where a user drops extra models (gitignored except its README)."""
MODELS_DIR_ENV = "TAGGING_MODELS_DIR"
"""Environment variable: more folders of manifests, separated by the OS path separator."""
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ManifestError(BackendError):
    """A model manifest is missing, unreadable or inconsistent (the message says which and why)."""


@dataclass(frozen=True)
class Manifest:
    """What the tagger needs to run one ONNX classifier."""

    id: str
    title: str
    path: Path  # the manifest file itself
    model: Path
    input_name: str
    input: InputSpec
    output_name: str
    activation: str = "softmax"
    labels: Path | None = None
    vocabulary: Path | None = None
    sha256: str | None = None
    calibration: Calibration = field(default_factory=Calibration)
    min_confidence: float = 1.0
    max_tags: int = 50
    faces: bool = True
    objects: bool = False  # run the COCO object detector too (boxes in result.objects; about 6x the classifier)
    licence: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def shipped(self) -> bool:
        """True for the manifest that ships with the project."""
        return self.path.parent == shipped_dir() and self.id == DEFAULT_MANIFEST_ID


def shipped_dir() -> Path:
    """The package's data folder, home of the shipped manifest."""
    return Path(str(resources.files("tagging.embedded").joinpath("data")))


def manifest_dirs(extra: list[Path] | None = None) -> list[Path]:
    """Folders searched for manifests: the shipped one, ``models/``, ``TAGGING_MODELS_DIR``, then ``extra``."""
    dirs = [shipped_dir(), USER_MODELS_DIR]
    dirs += [Path(p) for p in os.environ.get(MODELS_DIR_ENV, "").split(os.pathsep) if p]
    dirs += list(extra or [])
    return dirs


def list_manifests(extra_dirs: list[Path] | None = None) -> list[Manifest]:
    """Every readable manifest, the shipped one first, then by id; unreadable files are skipped.

    Use ``load_manifest`` on a path to see why a file is rejected.
    """
    found: dict[str, Manifest] = {}
    for folder in manifest_dirs(extra_dirs):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"*{MANIFEST_SUFFIX}")):
            try:
                manifest = load_manifest(path)
            except ManifestError:
                continue
            found.setdefault(manifest.id, manifest)
    return sorted(found.values(), key=lambda m: (m.id != DEFAULT_MANIFEST_ID, m.id))


def find_manifest(manifest_id: str, extra_dirs: list[Path] | None = None) -> Manifest:
    """The manifest with this id. Raises ``ManifestError`` if there is none."""
    for manifest in list_manifests(extra_dirs):
        if manifest.id == manifest_id:
            return manifest
    raise ManifestError(f"No model manifest with id {manifest_id!r} was found (looked in models/ and the package).")


def resolve_manifest(manifest: str | Path | Manifest | None) -> Manifest:
    """A manifest from an id, a path to a manifest file, a ``Manifest``, or None (the shipped model)."""
    if manifest is None:
        return load_manifest(shipped_dir() / f"{DEFAULT_MANIFEST_ID}{MANIFEST_SUFFIX}")
    if isinstance(manifest, Manifest):
        return manifest
    if isinstance(manifest, Path) or str(manifest).endswith(MANIFEST_SUFFIX):
        return load_manifest(Path(manifest))
    return find_manifest(str(manifest))


def load_manifest(path: Path) -> Manifest:
    """Read and check one manifest file. Raises ``ManifestError`` saying what is wrong."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ManifestError(f"The model manifest {path.name} cannot be read: {exc}") from exc
    try:
        return _parse(data, path)
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"The model manifest {path.name} is invalid: {exc}") from exc


def _parse(data: dict[str, Any], path: Path) -> Manifest:
    if not isinstance(data, dict):
        raise TypeError("expected a JSON object")
    manifest_id = str(data["id"])
    if not _ID_PATTERN.match(manifest_id):
        raise ValueError(f"id {manifest_id!r} must be 1-64 letters, digits, '.', '_' or '-'")
    folder = path.parent
    spec = data["input"]
    width, height = int(spec["width"]), int(spec["height"])
    resize = str(spec.get("resize", RESIZE_SHORT_SIDE_CROP))
    if resize not in RESIZE_MODES:
        raise ValueError(f"input.resize must be one of {', '.join(RESIZE_MODES)}")
    layout, order = str(spec.get("layout", "NCHW")), str(spec.get("channel_order", "RGB"))
    if layout not in ("NCHW", "NHWC") or order not in ("RGB", "BGR"):
        raise ValueError("input.layout must be NCHW or NHWC and input.channel_order RGB or BGR")
    mean = tuple(float(v) for v in spec.get("mean", (0.0, 0.0, 0.0)))
    std = tuple(float(v) for v in spec.get("std", (1.0, 1.0, 1.0)))
    if len(mean) != 3 or len(std) != 3 or not all(s > 0 for s in std) or width < 8 or height < 8:
        raise ValueError("input needs width/height >= 8 and three means and three positive stds")
    short = spec.get("resize_short_side")
    input_spec = InputSpec(
        width=width, height=height, resize=resize, resize_short_side=int(short) if short else None,
        channel_order=order, layout=layout, scale=float(spec.get("scale", 1.0)),
        mean=(mean[0], mean[1], mean[2]), std=(std[0], std[1], std[2]),
    )
    output = data["output"]
    activation = str(output.get("activation", "softmax"))
    if activation not in ACTIVATIONS:
        raise ValueError(f"output.activation must be one of {', '.join(ACTIVATIONS)}")
    labels = folder / data["labels"] if data.get("labels") else None
    vocabulary = folder / data["vocabulary"] if data.get("vocabulary") else None
    if (labels is None) == (vocabulary is None):
        raise ValueError("give exactly one of labels and vocabulary")
    calibration = data.get("calibration") or {}
    return Manifest(
        id=manifest_id,
        title=str(data.get("title") or manifest_id),
        path=path,
        model=folder / str(data["model"]),
        input_name=str(spec.get("name", "input")),
        input=input_spec,
        output_name=str(output["name"]),
        activation=activation,
        labels=labels,
        vocabulary=vocabulary,
        sha256=str(data["sha256"]).lower() if data.get("sha256") else None,
        calibration=Calibration(
            chance_weight=float(calibration.get("chance_weight", 0.0)),
            certainty_power=float(calibration.get("certainty_power", 0.0)),
            trusted=_names(calibration.get("trusted", []), "calibration.trusted"),
            trusted_from=float(calibration.get("trusted_from", 0.0)),
        ),
        min_confidence=float(data.get("min_confidence", 1.0)),
        max_tags=int(data.get("max_tags", 50)),
        faces=bool(data.get("faces", True)),
        objects=bool(data.get("objects", False)),
        licence=str(data.get("licence", "")),
        provenance=dict(data.get("provenance") or {}),
    )


def _names(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{what} must be a list of words")
    return tuple(value)


def read_labels(path: Path) -> list[str]:
    """Class names from a JSON list (strings, or objects with ``name``) or a text file with one a line."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ManifestError(f"The labels file {path.name} cannot be read: {exc}") from exc
    if path.suffix == ".json":
        try:
            items = json.loads(text)
            return [str(item["name"]) if isinstance(item, dict) else str(item) for item in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise ManifestError(f"The labels file {path.name} is not a JSON list of names: {exc}") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def check_sha256(manifest: Manifest) -> None:
    """Raise ``ManifestError`` unless the model file exists and matches the manifest's sha256 (if given)."""
    if not manifest.model.is_file():
        raise ManifestError(f"The model file {manifest.model.name} of manifest {manifest.id!r} is missing.")
    if manifest.sha256 is None:
        return
    digest = hashlib.sha256()
    with manifest.model.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != manifest.sha256:
        raise ManifestError(
            f"The model file {manifest.model.name} does not match manifest {manifest.id!r} (sha256 differs)."
        )
