"""Read a .tflite file's graph and constant tensors without TensorFlow.

Uses the flatbuffer schema bindings that ship with ai_edge_litert (the same generated code
as `tensorflow.lite.python.schema_py_generated`), so size reports do not pay for importing
TensorFlow and work wherever LiteRT is installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from edgecompress.errors import ModelError

#: TensorType name -> (numpy dtype, bits per stored value). Types a converter writes for
#: weights, biases and activations; anything else is reported as unsupported.
STORAGE = {
    "FLOAT32": (np.float32, 32),
    "FLOAT16": (np.float16, 16),
    "FLOAT64": (np.float64, 64),
    "INT8": (np.int8, 8),
    "UINT8": (np.uint8, 8),
    "INT16": (np.int16, 16),
    "INT32": (np.int32, 32),
    "INT64": (np.int64, 64),
    "BOOL": (np.bool_, 8),
}

#: ops that only re-express a constant (fp16 -> fp32, sparse -> dense); weights are read
#: through them back to the constant actually stored in the file.
PASS_THROUGH_OPS = ("DEQUANTIZE", "DENSIFY")


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _enum_names(enum: type) -> dict[int, str]:
    return {value: name for name, value in vars(enum).items() if not name.startswith("_")}


@dataclass(frozen=True)
class Operator:
    name: str  # builtin op name, e.g. 'FULLY_CONNECTED'
    inputs: tuple[int, ...]  # tensor indices, -1 for an omitted optional input
    outputs: tuple[int, ...]


class TfliteFile:
    """One parsed model: operators, tensors and constant data of every subgraph."""

    def __init__(self, tflite_bytes: bytes) -> None:
        if len(tflite_bytes) < 8 or tflite_bytes[4:8] != b"TFL3":
            raise ModelError(
                "The bytes given are not a TFLite model (no 'TFL3' flatbuffer identifier).",
                "Pass the content of a .tflite file produced by the TFLite converter.",
            )
        schema = _schema()
        self._raw = bytes(tflite_bytes)
        self.model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(self._raw, 0))
        self._op_names = _enum_names(schema.BuiltinOperator)
        self._type_names = _enum_names(schema.TensorType)

    @cached_property
    def subgraphs(self) -> list[tuple[list[Operator], list[Any]]]:
        """(operators, tensors) per subgraph."""
        result = []
        for graph in self.model.subgraphs:
            ops = [
                Operator(self._op_name(op.opcodeIndex), tuple(op.inputs), tuple(op.outputs))
                for op in graph.operators or []
            ]
            result.append((ops, graph.tensors or []))
        return result

    def _op_name(self, opcode_index: int) -> str:
        code = self.model.operatorCodes[opcode_index]
        # builtinCode replaced the int8 deprecatedBuiltinCode; old files fill only the latter.
        return self._op_names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")

    def type_name(self, tensor: Any) -> str:
        return self._type_names.get(tensor.type, str(tensor.type))

    def tensor_name(self, tensor: Any) -> str:
        name = tensor.name
        return name.decode() if isinstance(name, bytes) else str(name)

    def buffer_bytes(self, tensor: Any) -> bytes:
        """The stored bytes of a constant tensor (empty for activations)."""
        buffer = self.model.buffers[tensor.buffer]
        if buffer.offset and buffer.offset > 1:  # >2 GB models keep data after the flatbuffer
            return self._raw[buffer.offset : buffer.offset + buffer.size]
        return b"" if buffer.data is None else np.asarray(buffer.data, dtype=np.uint8).tobytes()

    def constant(self, tensor: Any) -> np.ndarray | None:
        """A constant tensor's stored values in its stored dtype and shape, or None if not constant."""
        data = self.buffer_bytes(tensor)
        if not data:
            return None
        type_name = self.type_name(tensor)
        if type_name not in STORAGE:
            raise ModelError(
                f"Tensor '{self.tensor_name(tensor)}' is stored as {type_name}, which edgecompress cannot read.",
                "Export with one of the standard modes (float32, fp16, dynamic, int8, int16x8).",
            )
        shape = [int(d) for d in tensor.shape] if tensor.shape is not None else []
        return np.frombuffer(data, dtype=STORAGE[type_name][0]).reshape(shape)

    @cached_property
    def _producers(self) -> list[dict[int, Operator]]:
        """Per subgraph: tensor index -> the operator that writes it."""
        return [{out: op for op in ops for out in op.outputs} for ops, _ in self.subgraphs]

    def stored_source(self, graph_index: int, tensor_index: int) -> int:
        """Follow DEQUANTIZE/DENSIFY back to the constant tensor that is actually in the file."""
        producers = self._producers[graph_index]
        while tensor_index in producers and producers[tensor_index].name in PASS_THROUGH_OPS:
            tensor_index = producers[tensor_index].inputs[0]
        return tensor_index

    def all_constant_buffers(self) -> dict[int, int]:
        """Buffer index -> stored bytes, for every constant tensor of every subgraph."""
        sizes = {}
        for _, tensors in self.subgraphs:
            for tensor in tensors:
                size = len(self.buffer_bytes(tensor))
                if size:
                    sizes[tensor.buffer] = size
        return sizes
