"""Keras -> .tflite in one of the PTQ modes, and the check that the file computes what Keras does.

Models from tfmot: QAT and cluster-preserving QAT models (QuantizeWrapperV2 layers) are
converted as they are -- the converter reads their fake-quant ranges -- normally with mode
'int8'. Clustered or pruned models must be stripped first (`strip_clustering`,
`strip_pruning`); that is the caller's job, and an unstripped model is refused with that fix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from edgecompress._tf import keras, tensorflow
from edgecompress.errors import DataError, EdgeCompressError, ModelError, ProfileError
from edgecompress.export.compare import compare_outputs
from edgecompress.export.flatbuffer import TfliteFile
from edgecompress.export.keras_model import check_exportable, check_inputs, input_batch, keras_predict
from edgecompress.export.litert import litert_predict
from edgecompress.export.modes import PtqMode, default_tolerance, ptq_mode
from edgecompress.export.weights import tflite_mode, tflite_weight_stats

#: (text in the converter's message, what to do) -- first match wins, before the mode's own advice.
_CONVERTER_FIXES = (
    (
        "ERROR_NEEDS_FLEX_OPS",
        "Replace the layers using these TensorFlow ops with standard Keras layers: the device "
        "runner uses plain LiteRT, which has no TF Select (Flex) kernels.",
    ),
    (
        "Quantization not yet supported",
        "This op has no quantized kernel in this mode; try mode 'dynamic' or 'fp16', or move the op "
        "out of the model (pre/post-processing).",
    ),
)
_MODE_FIXES = {
    "int8": "An op may lack a full-integer kernel: try mode 'int16x8' or 'dynamic'.",
    "int16x8": "An op may lack an int16-activation kernel: try mode 'int8' or 'dynamic'.",
}
#: Ops sets for a selectively quantized model: int8 kernels, plus float kernels for the kept layers.
_SELECTIVE_OPS_SETS = ("TFLITE_BUILTINS", "TFLITE_BUILTINS_INT8")
#: io_dtype -> QuantizationDebugOptions.fully_quantize: True also quantizes the model's input
#: and output (to int8; the debugger offers no uint8).
_FULLY_QUANTIZE_BY_IO = {"float32": False, "int8": True}
#: Ops that only move values between float and int8: never the op that computes a layer.
_QUANTIZER_OPS = ("QUANTIZE", "DEQUANTIZE")
_GENERIC_FIX = "Check that the model runs in Keras on a sample batch; then try mode 'float32' to isolate the layer."


def _key_messages(exc: Exception, limit: int = 3) -> str:
    """The converter's 'error:' lines without their MLIR location noise."""
    lines = str(exc).splitlines()
    keys = [line.split("error: ", 1)[1].strip() for line in lines if "error: " in line]
    keys += [line.strip() for line in lines if line.startswith("TF Select ops:")]
    keys = [key for key in dict.fromkeys(keys) if key and key != "failed while converting: 'main':"]
    if not keys:
        keys = [next((line.strip() for line in lines if line.strip()), type(exc).__name__)]
    return "; ".join(key[:300] for key in keys[:limit])


def _conversion_error(exc: Exception, model: Any, mode: str) -> ModelError:
    text = str(exc)
    fix = next((fix for marker, fix in _CONVERTER_FIXES if marker in text), _MODE_FIXES.get(mode, _GENERIC_FIX))
    return ModelError(f"TFLite conversion of '{model.name}' in mode '{mode}' failed: {_key_messages(exc)}", fix)


def _calibration_feed(
    model: Any, representative: np.ndarray | None, n_calibration: int, mode: str
) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The converter's representative_dataset: the first `n_calibration` samples, in the model's batch."""
    if representative is None:
        raise DataError(
            f"Mode '{mode}' calibrates activation ranges and needs representative samples; none were given.",
            "Pass representative=<a few hundred training samples, preprocessed like the model input>.",
        )
    if n_calibration < 1:
        raise DataError(f"n_calibration is {n_calibration}; it must be at least 1.", "Use 100-500 samples.")
    samples = check_inputs(model, representative, "The representative (calibration) data")[:n_calibration]
    batch = input_batch(model) or 1
    if len(samples) < batch:
        raise DataError(
            f"Model '{model.name}' has a fixed batch of {batch} but only {len(samples)} calibration samples were given.",
            f"Pass at least {batch} representative samples.",
        )

    def feed() -> Iterator[list[np.ndarray]]:
        for start in range(0, len(samples) - batch + 1, batch):
            yield [samples[start : start + batch]]

    return feed


def _check_io_dtype(spec: PtqMode, io_dtype: str) -> None:
    if io_dtype not in spec.io_dtypes:
        raise ProfileError(
            f"Input/output type '{io_dtype}' is not possible in mode '{spec.name}'.",
            f"Mode '{spec.name}' allows: {', '.join(spec.io_dtypes)}.",
        )


def _layer_names(model: Any) -> set[str]:
    """Every layer name a caller may mean, nested and tfmot-wrapped layers included."""
    layer_type = keras().layers.Layer
    return {module.name for module in model.submodules if isinstance(module, layer_type)}


def _weighted_layer_names(model: Any) -> list[str]:
    return [getattr(layer, "layer", layer).name for layer in model.layers if layer.weights]


def _requested_float_layers(model: Any, spec: PtqMode, io_dtype: str, float_layers: Sequence[str]) -> list[str]:
    """The names to keep float, checked against the model and the mode before any conversion runs."""
    names = [float_layers] if isinstance(float_layers, str) else list(dict.fromkeys(float_layers))
    if not names:
        return []
    unknown = [name for name in names if name not in _layer_names(model)]
    if unknown:
        raise ModelError(
            f"float_layers names {', '.join(map(repr, unknown))}, but model '{model.name}' has no layer of that name.",
            f"Use the model's layer names, e.g. its weighted layers: {', '.join(_weighted_layer_names(model))}.",
        )
    if spec.float_layers == "impossible":
        raise ProfileError(
            f"Mode '{spec.name}' cannot keep layers in float32 ({', '.join(names)}): it quantizes every "
            "weighted layer and TensorFlow offers no way to exempt one.",
            "Export with mode 'int8' (which keeps named layers float32) or 'float32', or set "
            "compression.first_last_precision: int8 in the profile so no layer has to stay float.",
        )
    if spec.float_layers == "denylist" and io_dtype not in _FULLY_QUANTIZE_BY_IO:
        raise ProfileError(
            f"float_layers cannot be combined with input/output type '{io_dtype}': a selectively quantized "
            f"model has {' or '.join(_FULLY_QUANTIZE_BY_IO)} inputs and outputs.",
            f"Use io_dtype {' or '.join(map(repr, _FULLY_QUANTIZE_BY_IO))}, or leave float_layers empty.",
        )
    return names


def _converter(
    model: Any, spec: PtqMode, feed: Callable[[], Iterator[list[np.ndarray]]] | None, io_dtype: str, selective: bool
) -> Any:
    """A TFLiteConverter set up for the mode; a selective one may fall back to float kernels."""
    tf = tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if spec.optimize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [getattr(tf, name) for name in spec.supported_types]
    ops_sets = _SELECTIVE_OPS_SETS if selective else (spec.ops_set,) if spec.ops_set else ()
    if ops_sets:
        converter.target_spec.supported_ops = [getattr(tf.lite.OpsSet, name) for name in ops_sets]
    if feed is not None:
        converter.representative_dataset = feed
    if io_dtype != "float32" and not selective:  # the selective quantizer sets I/O types itself
        converter.inference_input_type = converter.inference_output_type = getattr(tf, io_dtype)
    return converter


def _scopes(tensor_names: Iterable[str], model_name: str) -> set[str]:
    """Keras name scopes in TFLite tensor names: 'digits/head/MatMul;digits/head/BiasAdd' -> {'head'}.

    The converter joins the names of fused ops with ';'. Each piece is
    '<model>/<layer>/.../<tf op>', so the model's own scope and the trailing op are dropped.
    """
    scopes: set[str] = set()
    for name in tensor_names:
        for piece in name.split(";"):
            parts = piece.split("/")[:-1]
            scopes.update(parts[1:] if parts[:1] == [model_name] else parts)
    return scopes


def _placed(layers: Iterable[str], scopes: set[str]) -> list[str]:
    return [layer for layer in layers if layer in scopes or f"quant_{layer}" in scopes]


def _nodes_of_layers(calibrated: bytes, model: Any, layers: list[str]) -> list[str]:
    """The node names (first output tensor names) of every op that computes one of `layers`.

    An op belongs to a layer when the layer's name scope (or tfmot's 'quant_<name>') appears
    in its output's name or in the name of one of its constant operands: a model's last op
    is renamed 'StatefulPartitionedCall:0', but its weights still carry 'model/head/MatMul'.
    """
    file = TfliteFile(calibrated)
    found: dict[str, list[str]] = {layer: [] for layer in layers}
    every_node, every_scope = set(), set()
    for ops, tensors in file.subgraphs:
        for op in ops:
            if op.name in _QUANTIZER_OPS or not op.outputs:
                continue
            node = file.tensor_name(tensors[op.outputs[0]])
            every_node.add(node)
            constants = [i for i in op.inputs if i >= 0 and file.buffer_bytes(tensors[i])]
            scopes = _scopes((file.tensor_name(tensors[i]) for i in (*op.outputs, *constants)), model.name)
            every_scope |= scopes
            for layer in _placed(layers, scopes):
                found[layer].append(node)
    absent = [layer for layer, nodes in found.items() if not nodes]
    if absent:
        raise ModelError(
            f"Layer(s) {', '.join(map(repr, absent))} of model '{model.name}' have no operation of their own "
            "in the TFLite graph (the converter folded them into a neighbour or removed them), so they "
            "cannot be kept in float32.",
            "Keep the layer they were folded into float instead (usually the Conv2D/Dense just before them); "
            f"layers with operations: {', '.join(_placed(_weighted_layer_names(model), every_scope))}.",
        )
    nodes = sorted({node for layer_nodes in found.values() for node in layer_nodes})
    if set(nodes) >= every_node:
        raise ProfileError(
            f"float_layers {', '.join(layers)} cover every operation of model '{model.name}': nothing would be quantized.",
            "Export with mode 'float32' instead, or keep fewer layers float.",
        )
    return nodes


def _selectively_quantized(
    converter: Any, model: Any, layers: list[str], io_dtype: str, feed: Callable[[], Iterator[list[np.ndarray]]]
) -> bytes:
    """Full-integer except `layers`, with TensorFlow's documented selective quantization.

    The QuantizationDebugger denylists nodes by tensor name in the calibrated graph, which
    exists only once it has calibrated; so the options are set afterwards, as TensorFlow's
    quantization-debugger guide does.
    """
    lite = tensorflow().lite.experimental
    debugger = lite.QuantizationDebugger(converter=converter, debug_dataset=feed)
    debugger.options = lite.QuantizationDebugOptions(
        denylisted_nodes=_nodes_of_layers(debugger.calibrated_model, model, layers),
        fully_quantize=_FULLY_QUANTIZE_BY_IO[io_dtype],
    )
    quantized = bytes(debugger.get_nondebug_quantized_model())
    _check_kept_float(quantized, model, layers)
    return quantized


def _check_kept_float(tflite_bytes: bytes, model: Any, layers: list[str]) -> None:
    """Read the weights back, so a layer the report calls float32 is never int8 in the file."""
    stats = tflite_weight_stats(tflite_bytes, layer_names=layers)
    quantized = sorted({row["layer"] for row in stats if row["layer"] and row["dtype"] != "float32"})
    if quantized:
        raise ModelError(
            f"Layer(s) {', '.join(map(repr, quantized))} of model '{model.name}' still have int8 weights in the "
            "TFLite file although they were to stay float32: a layer trained with quantization (a tfmot QAT "
            "wrapper) carries its own int8 ranges, which the converter always applies.",
            "Leave quantization-trained layers out of float_layers, or do not quantization-train layers that must stay float.",
        )


def to_tflite(
    model: Any,
    *,
    mode: str = "float32",
    representative: np.ndarray | None = None,
    io_dtype: str = "float32",
    n_calibration: int = 200,
    float_layers: Sequence[str] = (),
) -> bytes:
    """Convert a tf-keras model to TFLite bytes in one of `PTQ_MODES`.

    'int8' is full-integer (TFLITE_BUILTINS_INT8 only, so conversion fails instead of
    silently leaving float ops); `io_dtype` 'int8'/'uint8' also makes the model's input and
    output integer. 'int16x8' keeps int8 weights and int16 activations. Both calibrate on the
    first `n_calibration` `representative` samples; the other modes ignore `representative`.

    `float_layers` names Keras layers whose weights and arithmetic must stay float32 (the
    plan keeps sensitive first/last layers so). In 'int8' everything else is still int8 and
    float kernels run only for those layers, with Quantize/Dequantize ops at their borders;
    `io_dtype` may then be 'float32' or 'int8' (not 'uint8'). In 'float32' every layer already
    is float32. The other modes cannot exempt a layer and raise ProfileError rather than
    quantize it anyway; a name the model lacks, or one the converter folded away, raises
    ModelError. Empty `float_layers` changes nothing.
    """
    spec = ptq_mode(mode)
    _check_io_dtype(spec, io_dtype)
    check_exportable(model)
    kept_float = _requested_float_layers(model, spec, io_dtype, float_layers)
    selective = bool(kept_float) and spec.float_layers == "denylist"
    feed = _calibration_feed(model, representative, n_calibration, mode) if spec.needs_representative else None
    converter = _converter(model, spec, feed, io_dtype, selective)
    try:
        if selective:
            assert feed is not None, "selective quantization is an integer mode: it always calibrates"
            return _selectively_quantized(converter, model, kept_float, io_dtype, feed)
        return bytes(converter.convert())
    except EdgeCompressError:
        raise
    except Exception as exc:  # the converter raises ConverterError, ValueError and RuntimeError alike
        raise _conversion_error(exc, model, mode) from exc


def verify_tflite(model: Any, tflite_bytes: bytes, x: np.ndarray, *, tolerance: float | None = None) -> dict:
    """Run the file in LiteRT and the model in Keras on `x`, and compare outputs in real units.

    The default tolerance follows the mode read back from the file (see `PTQ_MODE_SPECS`),
    scaled by max(1, peak |Keras output|). Returns max/mean abs diff, tolerance, argmax
    agreement, ok, plus the detected `mode` and the `runtime`.
    """
    check_exportable(model)
    x = check_inputs(model, x, "The verification data")
    reference = keras_predict(model, x)
    candidate = litert_predict(
        tflite_bytes, x, output_names=list(model.output_names) if len(model.outputs) > 1 else None
    )
    mode = tflite_mode(tflite_bytes)
    if tolerance is None:
        tolerance = default_tolerance(mode, np.abs(reference).max())
    return {**compare_outputs(reference, candidate, tolerance), "mode": mode, "runtime": "ai_edge_litert"}
