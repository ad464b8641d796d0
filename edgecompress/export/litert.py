"""Run a .tflite in LiteRT on the host, in real units, to compare it with the Keras model."""

from __future__ import annotations

from typing import Any

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


def litert_predict(
    tflite_bytes: bytes, x: np.ndarray, *, threads: int | None = None, output_names: list[str] | None = None
) -> np.ndarray:
    """Outputs for float inputs `x`, dequantized to real values: the first output, or with
    `output_names` (the Keras model's, for several outputs) every output flattened and side by
    side in that order, matched through the model's signature.

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
    targets = _ordered_outputs(interpreter, output_names)

    def run(chunk: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(source["index"], _quantize(chunk, source))
        interpreter.invoke()
        if len(targets) == 1:
            return _dequantize(interpreter.get_tensor(targets[0]["index"]), targets[0])
        rows = [_dequantize(interpreter.get_tensor(t["index"]), t).reshape(len(chunk), -1) for t in targets]
        return np.concatenate(rows, axis=1)

    return predict_in_batches(run, x, batch)


def _ordered_outputs(interpreter: Any, names: list[str] | None) -> list[dict]:
    """The output details in the order of `names` (by the signature's output names); the first output without."""
    details = interpreter.get_output_details()
    if not names or len(details) == 1:
        return details[:1]
    signatures = interpreter.get_signature_list()
    by_name = {
        name: int(detail["index"])
        for name, detail in interpreter.get_signature_runner(next(iter(signatures))).get_output_details().items()
    }
    by_index = {int(detail["index"]): detail for detail in details}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise ModelError(
            f"The TFLite model's signature has no output named {', '.join(missing)} (it has {', '.join(by_name)}).",
            "Re-export the model with to_tflite.",
        )
    return [by_index[by_name[name]] for name in names]
