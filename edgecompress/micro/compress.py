"""Store low-cardinality weights as look-up-table (LUT) indices with TFLM's own compression tool.

A clustered layer has k distinct int8 weights but a plain .tflite still spends 8 bits on
each. TFLM's compressed tensors replace such a tensor with ceil(log2 k)-bit indices plus a
small value table, and insert a DECODE operator that rebuilds the int8 tensor in the arena
just before the layer runs. So flash shrinks and RAM grows: every decoded tensor costs its
full int8 size of arena while it is live -- `build_micro` measures that and keeps a layer
uncompressed when its decoded copy would not fit the profile's RAM.

Value tables are per channel along the tensor's quantization axis when it is quantized per
channel (one scale per output channel makes each channel's k values different), and per
tensor otherwise. This matches what the TFLM runtime expects: in the pinned tflite-micro
build, a per-tensor table on a per-channel-quantized tensor decodes to wrong weights, which
is also why every compressed model is run in TFLM and compared with the original.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgecompress.micro.graph import constant_array, layer_of, read_model, tensor_bytes

#: Widest index worth a DECODE op: 4 bits (16 clusters) halves an int8 tensor; wider indices
#: save little flash for the arena and decode time they cost.
MAX_INDEX_BITS = 4
#: Tensors smaller than this stay as they are: a DECODE op's own bookkeeping outweighs the gain.
MIN_ELEMENTS = 256
#: DECODE's common metadata header, stored before each value table (TFLM decode.py).
_DCM_BYTES = 16


@dataclass(frozen=True)
class LutTensor:
    """One tensor chosen for LUT compression, with the sizes that justify it."""

    subgraph: int
    tensor: int
    name: str
    layer: str
    shape: tuple[int, ...]
    dtype: str
    unique_values: int  # largest number of distinct values in one value table
    tables: int  # 1 per tensor, or one per channel
    axis: int | None  # channel axis of the value tables, None for one table
    index_bits: int
    original_bytes: int  # also what the decoded copy occupies in the arena
    compressed_bytes: int  # packed indices + value tables + header

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "shape": list(self.shape)}


@dataclass
class LutPlan:
    chosen: list[LutTensor] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_index_bits": MAX_INDEX_BITS,
            "chosen": [t.to_dict() for t in self.chosen],
            "skipped": self.skipped,
            "original_bytes": sum(t.original_bytes for t in self.chosen),
            "compressed_bytes": sum(t.compressed_bytes for t in self.chosen),
        }


def plan_lut(tflite_bytes: bytes, max_index_bits: int = MAX_INDEX_BITS) -> LutPlan:
    """Pick the constant tensors whose distinct values fit `max_index_bits`-bit indices.

    Tensors a kernel must read as constants while preparing (shapes, paddings, axes) are
    left alone, as TFLM's compressor requires.
    """
    from tflite_micro.tensorflow.lite.micro.compression import constant_inputs

    plan = LutPlan()
    model = read_model(tflite_bytes)
    for subgraph_index, subgraph in enumerate(model.subgraphs):
        consumers = _consumers(subgraph)
        for tensor_index, tensor in enumerate(subgraph.tensors):
            values = constant_array(tensor)
            if values is None or tensor_index not in consumers or values.size < MIN_ELEMENTS:
                continue
            name, layer = tensor.name or f"tensor {tensor_index}", layer_of(consumers[tensor_index])
            if constant_inputs.find_uses(subgraph, tensor):
                plan.skipped.append(
                    {"name": name, "layer": layer, "reason": "a kernel reads it as a constant while preparing"}
                )
                continue
            axis = _table_axis(tensor, values)
            if axis == "unsupported":
                plan.skipped.append(
                    {
                        "name": name,
                        "layer": layer,
                        "reason": "quantized along an axis TFLM's DECODE cannot split tables on",
                    }
                )
                continue
            assert not isinstance(axis, str)
            candidate = _lut_tensor(subgraph_index, tensor_index, tensor, name, layer, values, axis)
            unique, bits = candidate.unique_values, candidate.index_bits
            if bits > max_index_bits:
                plan.skipped.append(
                    {
                        "name": name,
                        "layer": layer,
                        "reason": f"{unique} distinct values need {bits}-bit indices (limit {max_index_bits})",
                    }
                )
            elif candidate.compressed_bytes >= candidate.original_bytes:
                plan.skipped.append({"name": name, "layer": layer, "reason": "value tables would outweigh the saving"})
            else:
                plan.chosen.append(candidate)
    return plan


def _lut_tensor(
    subgraph_index: int, tensor_index: int, tensor: Any, name: str, layer: str, values: np.ndarray, axis: int | None
) -> LutTensor:
    """Sizes that decide whether a tensor is worth a DECODE: distinct values, index bits, bytes before and after."""
    unique = _max_unique(values, axis)
    bits = max(1, math.ceil(math.log2(unique)))
    return LutTensor(
        subgraph_index,
        tensor_index,
        name,
        layer,
        tuple(int(d) for d in values.shape),
        values.dtype.name,
        unique,
        1 if axis is None else int(values.shape[axis]),
        axis,
        bits,
        tensor_bytes(tensor),
        _compressed_size(values, axis, bits, unique),
    )


def apply_lut(tflite_bytes: bytes, tensors: list[LutTensor]) -> bytes:
    """The model with `tensors` LUT-compressed and DECODE ops inserted (TFLM's compressor)."""
    from tflite_micro import compression
    from tflite_micro.tensorflow.lite.micro.compression import spec

    builder = compression.SpecBuilder()
    for t in tensors:
        mode = spec.PerTensor() if t.axis is None else spec.PerChannel(axis=t.axis)
        builder.add_tensor(subgraph=t.subgraph, tensor=t.tensor).with_lut(index_bitwidth=t.index_bits, mode=mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # per-tensor "expansion" notes: sizes are reported by us
        return bytes(compression.compress(bytes(tflite_bytes), builder.build()))


def _consumers(subgraph: Any) -> dict[int, Any]:
    """Tensor index -> first operator reading it (the layer the tensor belongs to)."""
    index = {id(t): i for i, t in enumerate(subgraph.tensors)}
    consumers: dict[int, Any] = {}
    for op in subgraph.operators:
        for tensor in op.inputs:
            if tensor is not None:
                consumers.setdefault(index[id(tensor)], op)
    return consumers


def _table_axis(tensor: Any, values: np.ndarray) -> int | None | str:
    quant = tensor.quantization
    scales = np.atleast_1d(quant.scales) if quant is not None else np.array([])
    if scales.size <= 1:
        return None
    axis = int(quant.axis or 0)
    return axis if axis in (0, values.ndim - 1) else "unsupported"


def _max_unique(values: np.ndarray, axis: int | None) -> int:
    if axis is None:
        return int(np.unique(values).size)
    rows = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)
    return max(int(np.unique(row).size) for row in rows)


def _compressed_size(values: np.ndarray, axis: int | None, bits: int, unique: int) -> int:
    tables = 1 if axis is None else values.shape[axis]
    return math.ceil(values.size * bits / 8) + tables * unique * values.dtype.itemsize + _DCM_BYTES
