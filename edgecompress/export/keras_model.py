"""Checks and inference on the Keras model being exported, shared by the TFLite and ONNX paths."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgecompress._tf import keras
from edgecompress.errors import DataError, ModelError
from edgecompress.export.batching import predict_in_batches

#: tfmot training wrappers that must be stripped before export, and how. QAT wrappers
#: (QuantizeWrapperV2) are *not* listed: the converter reads their fake-quant ranges.
_UNSTRIPPED_WRAPPERS = {
    "ClusterWeights": "tfmot.clustering.keras.strip_clustering(model)",
    "ClusterWeightsRNN": "tfmot.clustering.keras.strip_clustering(model)",
    "ClusterWeightsMHA": "tfmot.clustering.keras.strip_clustering(model)",
    "PruneLowMagnitude": "tfmot.sparsity.keras.strip_pruning(model)",
}


def check_exportable(model: Any) -> None:
    """Refuse what would export wrongly rather than fail deep inside a converter.

    Unstripped clustering/pruning wrappers convert, but the file then carries the dense
    float weights *and* the centroid/mask machinery, so it is bigger and the unique-value
    count is meaningless.
    """
    if not isinstance(model, keras().Model):
        raise ModelError(
            f"Expected a tf-keras Model to export, got {type(model).__name__}.",
            "Load the model with edgecompress's model loader (tf-keras 2.x), not Keras 3.",
        )
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(
            f"Model '{model.name}' has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
            "export and verification support one of each.",
            "Wrap the model so it takes one input tensor and returns one output tensor.",
        )
    for layer in model.submodules:
        strip = _UNSTRIPPED_WRAPPERS.get(type(layer).__name__)
        if strip:
            raise ModelError(
                f"Layer '{layer.name}' of model '{model.name}' is still wrapped for training "
                f"({type(layer).__name__}).",
                f"Call {strip} before exporting.",
            )


def input_batch(model: Any) -> int | None:
    """The batch size the model was built for, or None when it takes any batch."""
    return model.inputs[0].shape[0]


def check_inputs(model: Any, x: np.ndarray, what: str) -> np.ndarray:
    """Make `x` float32 and check it fits the model's input, naming both shapes if not."""
    x = np.asarray(x)
    expected = tuple(model.inputs[0].shape[1:])
    fits = x.ndim == len(expected) + 1 and all(e is None or e == a for e, a in zip(expected, x.shape[1:]))
    if not fits or len(x) == 0:
        raise DataError(
            f"{what} has shape {x.shape} but model '{model.name}' expects (N, "
            f"{', '.join('any' if d is None else str(d) for d in expected)}) with N >= 1.",
            "Pass samples preprocessed exactly as for training, stacked along the first axis.",
        )
    if not np.all(np.isfinite(x)):
        raise DataError(f"{what} contains NaN or infinite values.", "Clean or re-scale the data.")
    return x.astype(np.float32, copy=False)


def keras_predict(model: Any, x: np.ndarray) -> np.ndarray:
    """Reference outputs in inference mode, honouring a fixed batch size if the model has one."""
    return predict_in_batches(lambda chunk: np.asarray(model(chunk, training=False)), x, input_batch(model))
