"""Predict a layer's size before any training, so a plan can be refused before it costs time.

The estimate mirrors the bit-packed definition the export reports from the .tflite file
(`edgecompress.export.weights`): weights at ceil(log2(unique values)) bits with a codebook
per tensor or per output channel, whichever is cheaper, or at their stored width when no
codebook pays; quantization scales at float32; biases at their stored width. What it
cannot know before training (values that happen to coincide) only makes the real figure
smaller, so the estimate is an upper bound for the weight layers it covers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCALE_BITS = 32  # TFLite stores quantization scales as float32


@dataclass(frozen=True)
class ExportWidths:
    """How an export mode stores a weight layer."""

    weight_bits: int
    bias_bits: int
    per_channel_scales: bool  # one float32 scale per output channel


EXPORT_WIDTHS: dict[str, ExportWidths] = {
    "float32": ExportWidths(weight_bits=32, bias_bits=32, per_channel_scales=False),
    "fp16": ExportWidths(weight_bits=16, bias_bits=16, per_channel_scales=False),
    "dynamic": ExportWidths(weight_bits=8, bias_bits=32, per_channel_scales=True),
    "int8": ExportWidths(weight_bits=8, bias_bits=32, per_channel_scales=True),
    "int16x8": ExportWidths(weight_bits=8, bias_bits=64, per_channel_scales=True),
}
FLOAT32 = EXPORT_WIDTHS["float32"]


@dataclass(frozen=True)
class LayerShape:
    """The weight counts of one layer that sizes depend on."""

    n_weights: int  # kernel entries
    out_channels: int
    n_bias: int
    n_other: int = 0  # any other weights (e.g. BatchNormalization statistics)


def index_bits(n_unique: int) -> int:
    """Bits to address one of `n_unique` values (0 for a constant)."""
    return max(int(n_unique) - 1, 0).bit_length()


def _kernel_bits(shape: LayerShape, widths: ExportWidths, per_tensor: int, per_channel: int) -> int:
    """Cheapest of: stored as is, one codebook, one codebook per output channel."""
    n, c, w = shape.n_weights, shape.out_channels, widths.weight_bits
    return min(n * w, n * index_bits(per_tensor) + per_tensor * w, n * index_bits(per_channel) + c * per_channel * w)


def packed_bytes(value_set: str, shape: LayerShape, export_mode: str, params: dict[str, float]) -> int:
    """Bit-packed bytes of one layer under a recipe's value set (see `recipes.VALUE_SETS`)."""
    widths = FLOAT32 if value_set == "float" else EXPORT_WIDTHS[export_mode]
    levels = 2**widths.weight_bits
    n, c = shape.n_weights, max(shape.out_channels, 1)
    if value_set == "clusters":
        k = int(params["clusters"])
        # per-channel scales turn k shared centroids into up to k distinct values per channel
        tensor_unique = min(levels, k * c if widths.per_channel_scales else k, n)
        kernel = _kernel_bits(shape, widths, tensor_unique, min(k, levels))
    elif value_set == "codes":
        per_channel = min(2 ** int(params["bits"]), levels)
        kernel = _kernel_bits(shape, widths, min(levels, per_channel * c, n), per_channel)
    else:  # 'dense' / 'float': every value may differ
        kernel = n * widths.weight_bits
    scales = c * SCALE_BITS if widths.per_channel_scales else 0
    other = (shape.n_bias * widths.bias_bits) + shape.n_other * widths.weight_bits
    return math.ceil((kernel + scales + other) / 8)


def file_bytes(value_set: str, shape: LayerShape, export_mode: str) -> int:
    """Bytes the layer's tensors take in the exported file, where clustering saves nothing."""
    widths = FLOAT32 if value_set == "float" else EXPORT_WIDTHS[export_mode]
    scales = shape.out_channels * SCALE_BITS if widths.per_channel_scales else 0
    bits = (
        shape.n_weights * widths.weight_bits
        + scales
        + shape.n_bias * widths.bias_bits
        + shape.n_other * widths.weight_bits
    )
    return math.ceil(bits / 8)
