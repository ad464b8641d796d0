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
    if len(model.inputs) != 1:
        raise ModelError(
            f"Model '{model.name}' has {len(model.inputs)} inputs; export and verification support one.",
            "Wrap the model so it takes one input tensor (several outputs are fine).",
        )
    for layer in model.submodules:
        strip = _UNSTRIPPED_WRAPPERS.get(type(layer).__name__)
        if strip:
            raise ModelError(
                f"Layer '{layer.name}' of model '{model.name}' is still wrapped for training ({type(layer).__name__}).",
                f"Call {strip} before exporting.",
            )


#: tfmot's QAT layers: a wrapper around each quantized layer, and the input quantizer.
_QAT_WRAPPERS = ("QuantizeWrapper", "QuantizeWrapperV2")
_QAT_INPUT = "QuantizeLayer"


def float_twin(model: Any) -> Any:
    """The same network without tfmot QAT wrappers: the trained float weights, no fake quantization.

    What a quantizer other than the TFLite converter (onnxruntime's static quantization)
    starts from: it calibrates its own ranges. A model without QAT layers is returned as is.
    """
    k = keras()
    if not any(type(layer).__name__ in (*_QAT_WRAPPERS, _QAT_INPUT) for layer in model.layers):
        return model

    def unwrap(layer: Any) -> Any:
        kind = type(layer).__name__
        if kind == _QAT_INPUT:
            return k.layers.Activation("linear", name=layer.name)
        if kind not in _QAT_WRAPPERS:
            return layer.__class__.from_config(layer.get_config())
        inner = layer.layer
        config = inner.get_config()
        activation = config.get("activation")
        if isinstance(activation, dict) and activation.get("class_name") == "QuantizeAwareActivation":
            config["activation"] = activation["config"]["activation"]
        return inner.__class__.from_config(config)

    twin = k.models.clone_model(model, clone_function=unwrap)
    sources = {getattr(layer, "layer", layer).name: layer for layer in model.layers}
    for layer in twin.layers:
        if layer.weights:
            layer.set_weights(_own_weights(sources[layer.name], len(layer.weights)))
    return twin


def _own_weights(source: Any, count: int) -> list[np.ndarray]:
    """The float weights of the layer `source` is or wraps, in the order the layer declares them.

    A QAT wrapper tracks the inner layer's variables itself, and cluster-preserving QAT takes the
    kernel out of the inner layer altogether (the wrapper writes the clustered kernel into it on
    every training step), so the inner layer's own list can miss the kernel: the wrapper's
    variables scoped under the inner layer's name are the complete set.
    """
    inner = getattr(source, "layer", source)
    if inner is source:
        return source.get_weights()[:count]
    own = [v for v in source.weights if v.name.split("/")[-2:-1] == [inner.name]]
    if len(own) != count:
        own = inner.weights
    if len(own) != count:
        raise ModelError(
            f"Layer '{inner.name}' has {len(own)} float weights inside its training wrapper; {count} were expected.",
            "Export the model with --recipe ptq-int8, or report this model so its wrapper can be supported.",
        )
    return [np.asarray(v.numpy()) for v in own]


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
    """Reference outputs in inference mode, honouring a fixed batch size if the model has one: every
    output flattened and side by side in the model's output order (one output keeps its shape)."""
    from edgecompress.evaluation import flat_outputs

    if len(model.outputs) == 1:
        return predict_in_batches(lambda chunk: np.asarray(model(chunk, training=False)), x, input_batch(model))
    return predict_in_batches(lambda chunk: flat_outputs(model(chunk, training=False)), x, input_batch(model))
