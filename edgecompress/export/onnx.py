"""Keras -> ONNX with tf2onnx, and the onnxruntime check that it computes what Keras does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgecompress._tf import tensorflow
from edgecompress.errors import ModelError
from edgecompress.export.batching import predict_in_batches
from edgecompress.export.compare import compare_outputs
from edgecompress.export.keras_model import check_exportable, check_inputs, keras_predict
from edgecompress.export.modes import default_tolerance

#: ONNX ops whose presence means the graph computes in int8 (a QAT model exports as QDQ),
#: so it is judged with the int8 tolerance instead of the float one.
_QUANTIZED_ONNX_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul"}


def to_onnx(model: Any, path: Path, *, opset: int = 17) -> Path:
    """Write the model as ONNX at `path`, keeping its batch dimension fixed or dynamic as built.

    QAT models export their fake-quant nodes as QuantizeLinear/DequantizeLinear pairs.
    """
    check_exportable(model)
    tf = tensorflow()
    import tf2onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    source = model.inputs[0]
    signature = (tf.TensorSpec(source.shape, source.dtype, name=source.name.split(":")[0]),)
    try:
        tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset, output_path=str(path))
    except Exception as exc:  # tf2onnx raises bare Exception / ValueError for unsupported ops
        raise ModelError(
            f"ONNX export of '{model.name}' (opset {opset}) failed: {str(exc).splitlines()[0][:300]}",
            "Try a newer opset (e.g. 17-18), or replace the layer named in the message with a standard Keras layer.",
        ) from exc
    return path


def _onnx_predict(onnx_path: Path, x: np.ndarray) -> tuple[np.ndarray, bool]:
    """(outputs of the first output, whether the graph is quantized)."""
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime wraps load errors in its own exception types
        raise ModelError(f"onnxruntime cannot load '{onnx_path}': {exc}", "Re-export it with to_onnx.") from exc
    source = session.get_inputs()[0]
    batch = source.shape[0] if isinstance(source.shape[0], int) else None
    outputs = predict_in_batches(lambda chunk: session.run(None, {source.name: chunk})[0], x, batch)
    import onnx

    op_types = {node.op_type for node in onnx.load(str(onnx_path), load_external_data=False).graph.node}
    return outputs, bool(op_types & _QUANTIZED_ONNX_OPS)


def verify_onnx(model: Any, onnx_path: Path, x: np.ndarray, *, tolerance: float | None = None) -> dict:
    """Run the ONNX file in onnxruntime and the model in Keras on `x`, and compare outputs.

    Default tolerance: the float32 one (1e-4 x max(1, peak |output|)), or the int8 one when
    the graph holds quantize/dequantize nodes. Returns the same keys as `verify_tflite`.
    """
    check_exportable(model)
    x = check_inputs(model, x, "The verification data")
    reference = keras_predict(model, x)
    candidate, quantized = _onnx_predict(Path(onnx_path), x)
    mode = "int8" if quantized else "float32"
    if tolerance is None:
        tolerance = default_tolerance(mode, np.abs(reference).max())
    return {**compare_outputs(reference, candidate, tolerance), "mode": mode, "runtime": "onnxruntime"}
