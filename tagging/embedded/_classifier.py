"""An ONNX image classifier run by ONNX Runtime on the CPU: pixels in, class probabilities out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tagging.errors import BackendError

ACTIVATIONS = ("softmax", "sigmoid", "none")
"""What turns the model's output into probabilities: ``none`` when the graph already ends in one."""


def new_session(path: Path, *, what: str, threads: int = 0) -> Any:
    """An ONNX Runtime CPU session for ``path`` (``threads`` intra-op threads, 0 = ONNX Runtime's default).

    Raises ``BackendError`` naming ``what`` failed to load.
    """
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: the CPU provider otherwise warns about unused initialisers
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except ImportError as exc:
        raise BackendError(f"ONNX Runtime is not installed, so the {what} cannot run: {exc}") from exc
    except Exception as exc:  # onnxruntime raises its own untyped errors for missing or invalid files
        raise BackendError(f"The {what} ({path.name}) could not be loaded: {exc}") from exc


class OnnxClassifier:
    """One ONNX classifier; ``predict`` may be called from several threads (sessions are thread-safe)."""

    def __init__(
        self, path: Path, *, input_name: str, output_name: str, activation: str = "softmax", threads: int = 0
    ) -> None:
        """Load the model. Raises ``BackendError`` if it cannot be loaded or lacks the named input/output."""
        if activation not in ACTIVATIONS:
            raise BackendError(f"Unknown activation {activation!r}; expected one of {', '.join(ACTIVATIONS)}.")
        self.session = new_session(path, what="embedded tagger's model", threads=threads)
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if input_name not in inputs or output_name not in outputs:
            raise BackendError(
                f"{path.name} has inputs {inputs} and outputs {outputs}; its manifest names "
                f"{input_name!r} and {output_name!r}."
            )
        self.input_name, self.output_name, self.activation = input_name, output_name, activation
        shape = next(o.shape for o in self.session.get_outputs() if o.name == output_name)
        if not shape or not isinstance(shape[-1], int):
            raise BackendError(f"{path.name}: the number of classes of output {output_name!r} is not fixed.")
        self.num_classes = int(shape[-1])

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """The raw model output for a float32 batch."""
        try:
            return self.session.run([self.output_name], {self.input_name: batch})[0]
        except Exception as exc:  # onnxruntime raises its own untyped errors (wrong shape, dtype, ...)
            raise BackendError(f"The embedded tagger's model failed on this input: {exc}") from exc

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities, float64 (N, classes)."""
        return to_probabilities(self.logits(batch), self.activation)


def to_probabilities(logits: np.ndarray, activation: str) -> np.ndarray:
    """Apply the manifest's activation to raw outputs (float64 result)."""
    values = np.asarray(logits, dtype=np.float64).reshape(len(logits), -1)
    if activation == "softmax":
        values = np.exp(values - values.max(axis=1, keepdims=True))
        return values / values.sum(axis=1, keepdims=True)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-values))
    return values
