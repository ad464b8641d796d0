"""The ONNX twin of a plan in the plan's own precision: int8 QDQ, dynamic int8, fp16 or float32.

A float ONNX file next to an int8 .tflite is not a twin: it is 4x bigger and runs every
product in float. So the ONNX artifact follows the plan's export mode, with onnxruntime's
own, documented tools:

- 'int8': static quantization (`onnxruntime.quantization.quantize_static`, QDQ format,
  int8 activations and per-channel int8 weights, MinMax calibration) on the *same*
  calibration images the TFLite converter used; layers the plan keeps float stay float
  (`nodes_to_exclude`). QAT-trained models are exported from their float twin (the trained
  weights without tfmot's fake-quant wrappers), since onnxruntime calibrates its own ranges.
- 'dynamic': `quantize_dynamic` (int8 weights, activations quantized at run time).
- 'fp16': `onnxruntime.transformers.float16.convert_float_to_float16`, float32 inputs and
  outputs kept, for GPUs / NPUs that run fp16.
- anything else ('float32', 'int16x8'): the float32 export.

Every file is then checked against Keras in onnxruntime (`verify_onnx`) with the mode's
tolerance.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgecompress.errors import DataError, ModelError
from edgecompress.export.keras_model import check_inputs, float_twin
from edgecompress.export.onnx import to_onnx

#: plan export mode -> what the ONNX artifact holds
ONNX_MODES = {"int8": "int8", "dynamic": "dynamic", "fp16": "fp16", "float32": "float32", "int16x8": "float32"}
ONNX_DESCRIPTIONS = {
    "int8": "ONNX, int8 QDQ (onnxruntime static quantization, calibrated on the TFLite calibration images)",
    "dynamic": "ONNX, dynamic int8 (onnxruntime quantize_dynamic)",
    "fp16": "ONNX, float16 weights and arithmetic (float32 input/output)",
    "float32": "ONNX, float32",
}


def onnx_mode_for(export_mode: str) -> str:
    """The ONNX precision that matches a plan's TFLite export mode."""
    return ONNX_MODES.get(export_mode, "float32")


class _Calibration:
    """onnxruntime's CalibrationDataReader over an array of preprocessed samples, one at a time."""

    def __init__(self, input_name: str, samples: np.ndarray, batch: int | None) -> None:
        self.input_name = input_name
        self.samples = samples
        self.batch = batch or 1
        self._iterator: Iterator[dict[str, np.ndarray]] | None = None

    def _feeds(self) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(self.samples) - self.batch + 1, self.batch):
            yield {self.input_name: self.samples[start : start + self.batch]}

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._iterator is None:
            self._iterator = self._feeds()
        return next(self._iterator, None)

    def rewind(self) -> None:
        self._iterator = None


def _reader(calibration_data_reader_base: type, input_name: str, samples: np.ndarray, batch: int | None) -> Any:
    """A subclass instance of onnxruntime's CalibrationDataReader (the base onnxruntime checks for)."""
    reader_class = type("EdgecompressCalibration", (_Calibration, calibration_data_reader_base), {})
    return reader_class(input_name, samples, batch)


def _nodes_of_layers(onnx_model: Any, layers: Sequence[str]) -> list[str]:
    """ONNX node names that belong to the named Keras layers (tf2onnx keeps 'model/layer/op' names)."""
    from edgecompress.export.weights import _match_layer

    names = sorted(layers, key=len, reverse=True)
    return [node.name for node in onnx_model.graph.node if node.name and _match_layer(node.name, names)]


def to_onnx_int8(
    model: Any,
    path: Path,
    *,
    calibration: np.ndarray,
    float_layers: Sequence[str] = (),
    n_calibration: int = 200,
    per_channel: bool = True,
) -> Path:
    """Export `model` to ONNX and quantize it statically to int8 QDQ, calibrated on `calibration`."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calibration is None or len(calibration) == 0:
        raise DataError(
            "int8 ONNX export calibrates activation ranges and no calibration images were given.",
            "Pass calibration=<the same training images the TFLite int8 export calibrated on>.",
        )
    float_model = float_twin(model)
    samples = check_inputs(float_model, calibration, "The ONNX calibration data")[:n_calibration]
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="edgecompress-onnx-") as tmp:
        plain = to_onnx(float_model, Path(tmp) / "float.onnx")
        prepared = Path(tmp) / "prepared.onnx"
        try:  # shape inference + graph optimisation, as onnxruntime's quantization guide recommends
            quant_pre_process(str(plain), str(prepared), skip_symbolic_shape=True)
        except Exception:  # noqa: BLE001 - the pre-processing is an optimisation; quantize the plain export instead
            prepared = plain
        graph = onnx.load(str(prepared))
        input_name = graph.graph.input[0].name
        dims = graph.graph.input[0].type.tensor_type.shape.dim
        batch = dims[0].dim_value if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0 else None
        excluded = _nodes_of_layers(graph, float_layers) if float_layers else []
        try:
            quantize_static(
                str(prepared),
                str(path),
                _reader(CalibrationDataReader, input_name, samples, batch),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                per_channel=per_channel,
                nodes_to_exclude=excluded or None,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
            )
        except Exception as exc:  # onnxruntime raises plain exceptions for graphs it cannot quantize
            raise ModelError(
                f"onnxruntime could not quantize the ONNX export of '{model.name}' to int8: {str(exc).splitlines()[0][:300]}",
                "Export the ONNX artifact in float32 (deploy --no-onnx skips it), or replace the layer named in the message.",
            ) from exc
    return path


def to_onnx_dynamic(model: Any, path: Path) -> Path:
    """ONNX with int8 weights and activations quantized at run time (onnxruntime quantize_dynamic)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="edgecompress-onnx-") as tmp:
        plain = to_onnx(float_twin(model), Path(tmp) / "float.onnx")
        quantize_dynamic(str(plain), str(path), weight_type=QuantType.QInt8)
    return Path(path)


def to_onnx_fp16(model: Any, path: Path) -> Path:
    """ONNX whose weights and arithmetic are float16, with float32 inputs and outputs."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with tempfile.TemporaryDirectory(prefix="edgecompress-onnx-") as tmp:
        plain = to_onnx(float_twin(model), Path(tmp) / "float.onnx")
        half = convert_float_to_float16(onnx.load(str(plain)), keep_io_types=True)
    path = Path(path)
    onnx.save(half, str(path))
    return path


def export_onnx(
    model: Any, path: Path, *, mode: str, calibration: np.ndarray | None = None, float_layers: Sequence[str] = ()
) -> str:
    """Write the ONNX twin for a plan exported in TFLite `mode`; returns the ONNX precision written."""
    onnx_mode = onnx_mode_for(mode)
    if onnx_mode == "int8":
        if calibration is None:
            raise ValueError("an int8 ONNX twin is calibrated: pass the calibration images")
        to_onnx_int8(model, path, calibration=calibration, float_layers=float_layers)
    elif onnx_mode == "dynamic":
        to_onnx_dynamic(model, path)
    elif onnx_mode == "fp16":
        to_onnx_fp16(model, path)
    else:
        to_onnx(float_twin(model), path)
    return onnx_mode


__all__ = [
    "ONNX_DESCRIPTIONS",
    "ONNX_MODES",
    "export_onnx",
    "onnx_mode_for",
    "to_onnx_dynamic",
    "to_onnx_fp16",
    "to_onnx_int8",
]
