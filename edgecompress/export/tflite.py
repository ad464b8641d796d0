"""Keras -> .tflite in one of the PTQ modes, and the check that the file computes what Keras does.

Models from tfmot: QAT and cluster-preserving QAT models (QuantizeWrapperV2 layers) are
converted as they are -- the converter reads their fake-quant ranges -- normally with mode
'int8'. Clustered or pruned models must be stripped first (`strip_clustering`,
`strip_pruning`); that is the caller's job, and an unstripped model is refused with that fix.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from edgecompress._tf import tensorflow
from edgecompress.errors import DataError, ModelError, ProfileError
from edgecompress.export.compare import compare_outputs
from edgecompress.export.keras_model import check_exportable, check_inputs, input_batch, keras_predict
from edgecompress.export.litert import litert_predict
from edgecompress.export.modes import PtqMode, default_tolerance, ptq_mode
from edgecompress.export.weights import tflite_mode

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


def to_tflite(
    model: Any,
    *,
    mode: str = "float32",
    representative: np.ndarray | None = None,
    io_dtype: str = "float32",
    n_calibration: int = 200,
) -> bytes:
    """Convert a tf-keras model to TFLite bytes in one of `PTQ_MODES`.

    'int8' is full-integer (TFLITE_BUILTINS_INT8 only, so conversion fails instead of
    silently leaving float ops); `io_dtype` 'int8'/'uint8' also makes the model's input and
    output integer. 'int16x8' keeps int8 weights and int16 activations. Both calibrate on the
    first `n_calibration` `representative` samples; the other modes ignore `representative`.
    """
    spec = ptq_mode(mode)
    _check_io_dtype(spec, io_dtype)
    check_exportable(model)
    tf = tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if spec.optimize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [getattr(tf, name) for name in spec.supported_types]
    if spec.ops_set:
        converter.target_spec.supported_ops = [getattr(tf.lite.OpsSet, spec.ops_set)]
    if spec.needs_representative:
        converter.representative_dataset = _calibration_feed(model, representative, n_calibration, mode)
    if io_dtype != "float32":
        converter.inference_input_type = converter.inference_output_type = getattr(tf, io_dtype)
    try:
        return bytes(converter.convert())
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
    candidate = litert_predict(tflite_bytes, x)
    mode = tflite_mode(tflite_bytes)
    if tolerance is None:
        tolerance = default_tolerance(mode, np.abs(reference).max())
    return {**compare_outputs(reference, candidate, tolerance), "mode": mode, "runtime": "ai_edge_litert"}
