"""Scores -> predicted classes -> accuracy figures, the same way on the host as on every board.

The board-side runner (firmware/runner/edgecompress_runner.py) owns this logic because it
must run on a board with nothing but NumPy; the host loads that very file instead of keeping
a second copy, so the Keras reference, export checks and device measurements can never
disagree on a threshold or on the shape of a per-class table.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from edgecompress.resources import runner_script

#: images per direct Keras call: large enough to be quick, small enough for any host's memory
KERAS_BATCH = 256


@functools.lru_cache(maxsize=1)
def runner_module() -> ModuleType:
    """The board-side runner, imported as a module (it is edgecompress's own file, not user code)."""
    path = runner_script()
    spec = importlib.util.spec_from_file_location("edgecompress_runner", path)
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with the package
        raise ImportError(f"cannot import the runner from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def predictions_from_scores(scores: np.ndarray, output_kind: str) -> np.ndarray:
    """Class index per sample: argmax, or a threshold on a single output unit (by output kind)."""
    return np.asarray(runner_module().predict(np.asarray(scores).reshape(len(scores), -1), output_kind))


def tally(predictions: Sequence[int] | np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Overall and per-class accuracy, confusion matrix and predictions, in the runner's shape."""
    n_classes = max(len(class_names), int(np.max(labels, initial=0)) + 1, int(np.max(predictions, initial=0)) + 1)
    return dict(runner_module().tally(predictions, labels, list(class_names), n_classes))


def keras_scores(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's raw outputs for `x`, in batches: one float32 row per sample, every output flattened
    and laid side by side in the model's output order (see edgecompress.tasks.outputs).

    Direct calls, not model.predict: predict builds a tf.data pipeline that prints
    graph-version notices and is slower for a few thousand small images.
    """
    if len(x) == 0:
        width = sum(int(np.prod(tensor.shape[1:])) for tensor in model.outputs)
        return np.zeros((0, width), dtype=np.float32)
    return np.concatenate(
        [flat_outputs(model(x[i : i + KERAS_BATCH], training=False)) for i in range(0, len(x), KERAS_BATCH)]
    )


def flat_outputs(outputs: Any) -> np.ndarray:
    """One output tensor or a list of them as the raw-outputs rows (N, sum of output sizes), float32."""
    parts = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    arrays = [np.asarray(part, dtype=np.float32) for part in parts]
    return np.concatenate([a.reshape(len(a), -1) for a in arrays], axis=1)
