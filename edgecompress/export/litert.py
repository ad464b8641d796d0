"""Run a .tflite in LiteRT on the host, in real units, to compare it with the Keras model."""

from __future__ import annotations

import numpy as np

from edgecompress.errors import ModelError
from edgecompress.export.batching import DYNAMIC_BATCH, predict_in_batches


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Real inputs -> the integer codes an int8/int16 input tensor expects."""
    dtype = np.dtype(detail["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    limits = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero_point), limits.min, limits.max).astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if not np.issubdtype(np.dtype(detail["dtype"]), np.integer):
        return y.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return (y.astype(np.float32) - zero_point) * scale


def litert_predict(tflite_bytes: bytes, x: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """Outputs of the model's first output for float inputs `x`, dequantized to real values.

    A graph that accepts any batch is resized once to a fixed chunk and fed padded chunks,
    so the interpreter is never re-allocated mid-run.
    """
    from ai_edge_litert.interpreter import Interpreter

    from edgecompress._tf import quiet_native_output

    with quiet_native_output():  # "INFO: Created TensorFlow Lite XNNPACK delegate" goes to the log
        try:
            interpreter = Interpreter(model_content=bytes(tflite_bytes), num_threads=threads)
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"LiteRT cannot load the TFLite model: {exc}", "Re-export it with to_tflite.") from exc
        source = interpreter.get_input_details()[0]
        signature = list(source.get("shape_signature", source["shape"]))
        batch = int(signature[0]) if signature[0] > 0 else min(len(x), DYNAMIC_BATCH)
        if -1 in signature:
            interpreter.resize_tensor_input(source["index"], [batch, *x.shape[1:]])
        interpreter.allocate_tensors()  # the delegate is applied here
    source = interpreter.get_input_details()[0]
    target = interpreter.get_output_details()[0]

    def run(chunk: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(source["index"], _quantize(chunk, source))
        interpreter.invoke()
        return _dequantize(interpreter.get_tensor(target["index"]), target)

    return predict_in_batches(run, x, batch)
