"""Read the weights back out of a .tflite file and count what they could be packed into.

This is the proof behind every "N unique values" and "bit-packed size" figure: the numbers
come from the bytes the device will load, not from the Keras model they were made from.

Definitions (the report quotes them):
- *weight tensor*: the filter operand of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
  TRANSPOSE_CONV or CONV_3D, traced back through DEQUANTIZE/DENSIFY to the constant stored
  in the file (so fp16 weights are counted as the float16 tensor, not its float32 copy).
- *unique_values*: distinct real (dequantized: scale * (q - zero_point)) values in the
  whole tensor. With per-channel int8 scales a 16-cluster layer has <= 16 per channel but
  up to 16 x channels real values overall; `max_unique_per_channel` shows the former.
- *unique_stored_values*: distinct stored numbers (int8 codes, fp16/fp32 values).
- *bitpacked_bits*: n_weights x bits_per_weight + codebook_bits, for the cheapest of three
  layouts ('codebook'):
  'tensor'      one codebook; bits_per_weight = ceil(log2(unique_stored_values));
  'per-channel' one codebook per output channel; bits_per_weight = ceil(log2(max unique
                per channel)), one width for the whole tensor so a kernel unpacks it with
                fixed shifts;
  'none'        values kept at their stored width, when too many are distinct for a
                codebook to pay.
  Codebook entries are stored at the tensor's stored width; codebook_bits also holds the
  quantization scales (float32 each) and any non-zero zero points, which dequantization
  needs. A tensor with a single value needs 0 bits per weight.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecompress.export.flatbuffer import STORAGE, TfliteFile


@dataclass(frozen=True)
class WeightOperands:
    """Where a weight-bearing op keeps its operands, and its output-channel axis as TFLite stores it."""

    activation: int
    weights: int
    bias: int
    output_axis: int


WEIGHT_OPS = {
    "CONV_2D": WeightOperands(activation=0, weights=1, bias=2, output_axis=0),  # OHWI
    "DEPTHWISE_CONV_2D": WeightOperands(activation=0, weights=1, bias=2, output_axis=3),  # 1HW(C*M)
    "FULLY_CONNECTED": WeightOperands(activation=0, weights=1, bias=2, output_axis=0),  # [out, in]
    "TRANSPOSE_CONV": WeightOperands(activation=2, weights=1, bias=3, output_axis=0),  # OHWI
    "CONV_3D": WeightOperands(activation=0, weights=1, bias=2, output_axis=4),  # DHWIO
}

SCALE_BITS = 32  # TFLite stores quantization scales as float32


@dataclass(frozen=True)
class _WeightUse:
    graph: int
    op: str
    operands: WeightOperands
    inputs: tuple[int, ...]

    def operand(self, file: TfliteFile, which: int) -> int:
        """Stored tensor index of one operand, or -1 when the op omits it."""
        if which >= len(self.inputs) or self.inputs[which] < 0:
            return -1
        return file.stored_source(self.graph, self.inputs[which])


def _weight_uses(file: TfliteFile) -> list[_WeightUse]:
    return [
        _WeightUse(graph, op.name, WEIGHT_OPS[op.name], op.inputs)
        for graph, (ops, _) in enumerate(file.subgraphs)
        for op in ops
        if op.name in WEIGHT_OPS
    ]


def index_bits(n_unique: int) -> int:
    """Bits to address one of `n_unique` values: ceil(log2(n)), 0 for a constant."""
    return max(int(n_unique) - 1, 0).bit_length()


def _unique_per_row(rows: np.ndarray) -> np.ndarray:
    ordered = np.sort(rows, axis=1)
    return (np.diff(ordered, axis=1) != 0).sum(axis=1) + 1


def _quantization(tensor: Any, channel_axis: int) -> tuple[str, np.ndarray | None, np.ndarray | None, int]:
    """(kind, scales, zero points, channel axis) from the tensor's quantization table."""
    params = tensor.quantization
    if params is None or params.scale is None or len(params.scale) == 0:
        return "none", None, None, channel_axis
    scales = np.asarray(params.scale, dtype=np.float64)
    zero_points = np.zeros_like(scales) if params.zeroPoint is None else np.asarray(params.zeroPoint, np.float64)
    if len(scales) > 1:
        return "per-channel", scales, zero_points, int(params.quantizedDimension)
    return "per-tensor", scales, zero_points, channel_axis


def _real_values(by_channel: np.ndarray, scales: np.ndarray | None, zero_points: np.ndarray | None) -> np.ndarray:
    """Dequantized values, still one row per output channel."""
    real = by_channel.astype(np.float64)
    if scales is None or zero_points is None:
        return real
    if len(scales) > 1:
        scales, zero_points = scales[:, None], zero_points[:, None]
    return (real - zero_points) * scales


def _cheapest_layout(by_channel: np.ndarray, bits: int) -> tuple[str, int, int]:
    """(layout, bits per weight, codebook entry bits) minimising the packed size of one tensor."""
    per_channel = _unique_per_row(by_channel)
    whole = len(np.unique(by_channel))
    layouts = {  # "none" = values kept at their stored width
        "none": (bits, 0),
        "tensor": (index_bits(whole), whole * bits),
        "per-channel": (index_bits(per_channel.max()), int(per_channel.sum()) * bits),
    }
    n_weights = by_channel.size
    name = min(layouts, key=lambda layout: n_weights * layouts[layout][0] + layouts[layout][1])
    return (name, *layouts[name])


def _tensor_stats(file: TfliteFile, use: _WeightUse, tensor_index: int) -> dict | None:
    tensors = file.subgraphs[use.graph][1]
    tensor = tensors[tensor_index]
    stored = file.constant(tensor)
    if stored is None:  # weights computed at run time (e.g. a matmul of two activations)
        return None
    kind, scales, zero_points, axis = _quantization(tensor, use.operands.output_axis)
    by_channel = np.moveaxis(stored, axis, 0).reshape(stored.shape[axis], -1)
    real = _real_values(by_channel, scales, zero_points)
    dtype = file.type_name(tensor)
    bits = STORAGE[dtype][1]
    layout, bits_per_weight, codebook_entry_bits = _cheapest_layout(by_channel, bits)
    quant_param_bits = 0
    if scales is not None and zero_points is not None:
        quant_param_bits = len(scales) * SCALE_BITS + (len(zero_points) * bits if np.any(zero_points) else 0)
    codebook_bits = codebook_entry_bits + quant_param_bits
    bias_index = use.operand(file, use.operands.bias)
    bias = tensors[bias_index] if bias_index >= 0 else None
    return {
        "name": file.tensor_name(tensor),
        "op": use.op,
        "shape": [int(d) for d in stored.shape],
        "dtype": dtype.lower(),
        "n_weights": int(stored.size),
        "channels": int(by_channel.shape[0]),
        "channel_axis": int(axis),
        "unique_values": int(len(np.unique(real))),
        "unique_stored_values": int(len(np.unique(by_channel))),
        "max_unique_per_channel": int(_unique_per_row(real).max()),
        "quantization": kind,
        "stored_bits": bits,
        "stored_bytes": len(file.buffer_bytes(tensor)),
        "buffer": int(tensor.buffer),
        "bias_bytes": len(file.buffer_bytes(bias)) if bias is not None else 0,
        "bias_buffer": int(bias.buffer) if bias is not None else None,
        "codebook": layout,
        "bits_per_weight": bits_per_weight,
        "codebook_bits": int(codebook_bits),
        "bitpacked_bits": int(stored.size * bits_per_weight + codebook_bits),
    }


def _match_layer(tensor_name: str, layer_names: list[str]) -> str | None:
    """The Keras layer a tensor came from, by name segment ('model/dense_1/MatMul' -> 'dense_1').

    QAT wraps layers as 'quant_<name>', so that spelling matches too. Longest names are
    tried first so 'dense_1' is not claimed by 'dense'.
    """
    segments = set(tensor_name.replace(";", "/").split("/"))
    for layer in layer_names:
        if layer in segments or f"quant_{layer}" in segments:
            return layer
    return None


def tflite_weight_stats(tflite_bytes: bytes, *, layer_names: Iterable[str] | None = None) -> list[dict]:
    """One row per weight tensor, in graph order (see the module docstring for every definition).

    `layer_names` (e.g. `[l.name for l in model.layers]`) adds a best-effort `layer` key
    naming the Keras layer each tensor came from, or None when the converter renamed it.
    """
    file = TfliteFile(tflite_bytes)
    names = sorted(layer_names or (), key=len, reverse=True)
    rows, seen = [], set()
    for use in _weight_uses(file):
        tensor_index = use.operand(file, use.operands.weights)
        if tensor_index < 0 or (use.graph, tensor_index) in seen:
            continue
        seen.add((use.graph, tensor_index))
        row = _tensor_stats(file, use, tensor_index)
        if row is None:
            continue
        if layer_names is not None:
            row["layer"] = _match_layer(row["name"], names)
        rows.append(row)
    return rows


def tflite_mode(tflite_bytes: bytes) -> str:
    """Which PTQ mode produced a file, read from what its weight ops consume.

    int16 activations -> 'int16x8'; int8/uint8 activations -> 'int8'; int8 weights with float
    activations -> 'dynamic'; float16 stored weights -> 'fp16'; otherwise 'float32'.
    """
    file = TfliteFile(tflite_bytes)
    activations, weights = set(), set()
    for use in _weight_uses(file):
        tensors = file.subgraphs[use.graph][1]
        activation = use.inputs[use.operands.activation]
        activations.add(file.type_name(tensors[activation]))
        weight = use.operand(file, use.operands.weights)
        if weight >= 0:
            weights.add(file.type_name(tensors[weight]))
    for found, mode in (
        (activations, {"INT16": "int16x8", "INT8": "int8", "UINT8": "int8"}),
        (weights, {"INT8": "dynamic", "UINT8": "dynamic", "FLOAT16": "fp16"}),
    ):
        for dtype, name in mode.items():
            if dtype in found:
                return name
    return "float32"
