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

#: ONNX ops whose presence tells the precision a graph computes in, so it is judged with that
#: mode's tolerance (see `PTQ_MODE_SPECS`): QDQ / QLinear -> int8 (a QAT model exports as QDQ
#: too), run-time quantization -> dynamic. Otherwise float16 initializers mean fp16.
_MODE_BY_OPS = (
    ({"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul"}, "int8"),
    ({"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger"}, "dynamic"),
)


def onnx_precision(onnx_model: Any) -> str:
    """'int8', 'dynamic', 'fp16' or 'float32': what an ONNX graph computes in, read from its nodes."""
    import onnx

    graph = onnx_model.graph
    op_types = {node.op_type for node in graph.node}
    for ops, mode in _MODE_BY_OPS:
        if op_types & ops:
            return mode
    if any(init.data_type == onnx.TensorProto.FLOAT16 for init in graph.initializer):
        return "fp16"
    return "float32"


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


def _onnx_predict(onnx_path: Path, x: np.ndarray) -> tuple[np.ndarray, str]:
    """(outputs, the precision the graph computes in): several outputs flattened side by side in the
    graph's order, which tf2onnx keeps as the Keras model's (named after its outputs)."""
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime wraps load errors in its own exception types
        raise ModelError(f"onnxruntime cannot load '{onnx_path}': {exc}", "Re-export it with to_onnx.") from exc
    source = session.get_inputs()[0]
    batch = source.shape[0] if isinstance(source.shape[0], int) else None
    names = [output.name for output in session.get_outputs()]

    def run(chunk: np.ndarray) -> np.ndarray:
        found = session.run(names, {source.name: chunk})
        if len(found) == 1:
            return found[0]
        return np.concatenate([np.asarray(part).reshape(len(chunk), -1) for part in found], axis=1)

    outputs = predict_in_batches(run, x, batch)
    import onnx

    return outputs, onnx_precision(onnx.load(str(onnx_path), load_external_data=False))


def verify_onnx(model: Any, onnx_path: Path, x: np.ndarray, *, tolerance: float | None = None) -> dict:
    """Run the ONNX file in onnxruntime and the model in Keras on `x`, and compare outputs.

    Default tolerance: the one of the precision the graph computes in (`onnx_precision`):
    float32 1e-4, fp16 1e-2, dynamic 3e-2, int8 1e-1, each x max(1, peak |output|).
    Returns the same keys as `verify_tflite`.
    """
    check_exportable(model)
    x = check_inputs(model, x, "The verification data")
    reference = keras_predict(model, x)
    candidate, mode = _onnx_predict(Path(onnx_path), x)
    if tolerance is None:
        tolerance = default_tolerance(mode, np.abs(reference).max())
    return {**compare_outputs(reference, candidate, tolerance), "mode": mode, "runtime": "onnxruntime"}
