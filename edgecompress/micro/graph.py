"""Read a .tflite's operators and constant tensors with the tflite-micro package's model editor.

The micro modules all need the same three facts about an operator -- its kind, the Keras
layer it came from and its constant inputs -- and they need them in TFLM's own terms
(custom op names such as TFLM_DECODE, per-channel quantization axes), so they read the
graph through the editor that TFLM's compression tool itself uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecompress.errors import ModelError


def read_model(tflite_bytes: bytes) -> Any:
    """Parse `tflite_bytes` into a `model_editor.Model`; a non-TFLite file is a ModelError."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    if len(tflite_bytes) < 8 or bytes(tflite_bytes[4:8]) != b"TFL3":
        raise ModelError(
            "The model given for TFLite Micro is not a .tflite flatbuffer (no 'TFL3' identifier).",
            "Pass the bytes of a .tflite file exported for the microcontroller profile.",
        )
    try:
        return model_editor.read(bytes(tflite_bytes))
    except Exception as error:  # noqa: BLE001 - any parse failure is the same user problem
        raise ModelError(f"The .tflite model cannot be parsed ({error}).", "Re-export the model.") from error


@dataclass(frozen=True)
class GraphOp:
    """One operator, located by subgraph and index, with the layer a person would recognise."""

    subgraph: int
    index: int
    name: str  # builtin name ('CONV_2D') or custom code ('TFLM_DECODE')
    layer: str
    op: Any  # model_editor.Operator


def operators(model: Any) -> Iterator[GraphOp]:
    for subgraph_index, subgraph in enumerate(model.subgraphs):
        for index, op in enumerate(subgraph.operators):
            yield GraphOp(subgraph_index, index, op.opcode_name, layer_of(op), op)


def layer_of(op: Any) -> str:
    """The Keras layer behind `op`, read from tensor names like 'model/conv2d/Relu;model/conv2d/BiasAdd'.

    The converter names tensors '<model>/<layer>/<op>'; the final output is renamed to the
    signature ('StatefulPartitionedCall:0'), so inputs are consulted when outputs say nothing.
    """
    tensors = [t for t in (*op.outputs, *op.inputs) if t is not None]
    for tensor in tensors:
        parts = (tensor.name or "").split(";")[0].split("/")
        if len(parts) >= 3:
            return parts[1]
    for tensor in tensors:
        if tensor.name:
            return tensor.name.split(";")[0]
    return "(unnamed)"


def constant_array(tensor: Any) -> np.ndarray | None:
    """The tensor's stored values, or None for activations (tensors without data)."""
    if tensor is None or tensor.buffer is None or not tensor.buffer.data:
        return None
    return tensor.array


def tensor_bytes(tensor: Any) -> int:
    return int(np.prod(tensor.shape, dtype=np.int64)) * np.dtype(tensor.numpy_dtype).itemsize


def stored_constants(tflite_bytes: bytes) -> list[dict[str, Any]]:
    """Every constant tensor with the bytes it occupies in the file, largest first.

    This is what takes the flash: for a LUT-compressed layer it is the packed indices and
    value tables DECODE reads, not the int8 tensor it rebuilds.
    """
    seen: dict[int, dict[str, Any]] = {}
    for op in operators(read_model(tflite_bytes)):
        for tensor in op.op.inputs:
            if tensor is not None and id(tensor) not in seen and (values := constant_array(tensor)) is not None:
                seen[id(tensor)] = {"layer": op.layer, "tensor": tensor.name, "bytes": int(values.nbytes)}
    return sorted(seen.values(), key=lambda row: row["bytes"], reverse=True)
