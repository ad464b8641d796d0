"""Count the distinct kernel values a compressed Keras model really holds.

This is the Keras-side check of each recipe's promise (<= k values for a clustered layer,
<= 2^b per output channel for a b-bit one, the zeros of a pruned one); the export reads
the same facts back from the .tflite file.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgecompress.compression.graph import inner_layer

#: Kernel variable names (the last part of `variable.name`, before ':0').
_KERNEL_NAMES = ("kernel", "depthwise_kernel")
#: Where the output channels are in a kernel, when not on the last axis.
_OUTPUT_AXIS = {"Conv1DTranspose": -2, "Conv2DTranspose": -2, "Conv3DTranspose": -2}


def kernel_of(layer: Any) -> np.ndarray | None:
    """The layer's kernel values, looked up by variable name so tfmot wrappers are seen through."""
    for weight in layer.weights:
        if weight.name.split("/")[-1].split(":")[0] in _KERNEL_NAMES:
            return weight.numpy()
    return None


def by_output_channel(kernel: np.ndarray, layer_class: str) -> np.ndarray:
    """(channels, values per channel); DepthwiseConv2D's (in, multiplier) axes count as channels."""
    if layer_class == "DepthwiseConv2D":
        return kernel.reshape(-1, kernel.shape[-2] * kernel.shape[-1]).T
    moved = np.moveaxis(kernel, _OUTPUT_AXIS.get(layer_class, -1), 0)
    return moved.reshape(moved.shape[0], -1)


def kernel_values(model: Any) -> dict[str, dict[str, Any]]:
    """{layer name: unique kernel values, the most in any output channel, fraction of zeros}."""
    counts = {}
    for layer in model.layers:
        kernel = kernel_of(layer)
        if kernel is None:
            continue
        inner = inner_layer(layer)
        rows = by_output_channel(kernel, type(inner).__name__)
        counts[inner.name] = {
            "unique": int(len(np.unique(kernel))),
            "max_unique_per_channel": int(max(len(np.unique(row)) for row in rows)),
            "zero_fraction": float(np.mean(kernel == 0)),
        }
    return counts
