"""What the plan knows about one weighted layer before any recipe is chosen.

A leaf module: the planner (plan.py) and the speed recipes (speed.py) both read layer facts,
and neither should import the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgecompress.compression import estimate

#: Attributes that hold a layer's main weight matrix, in the order tried.
KERNEL_ATTRS = ("kernel", "depthwise_kernel", "embeddings")


@dataclass(frozen=True)
class LayerFacts:
    """What the plan needs to know about one weighted layer of the model."""

    name: str
    layer_class: str
    shape: estimate.LayerShape
    role: str  # 'edge' | 'significant' | 'insignificant' | 'other' (no kernel / nested model)
    note: str = ""

    @property
    def parameters(self) -> int:
        return self.shape.n_weights + self.shape.n_bias + self.shape.n_other


def raw_facts(layer: Any) -> LayerFacts:
    class_name = type(layer).__name__
    total = int(sum(_size(w) for w in layer.weights))
    if hasattr(layer, "layers"):  # a nested model
        shape = estimate.LayerShape(n_weights=0, out_channels=0, n_bias=0, n_other=total)
        return LayerFacts(layer.name, class_name, shape, "other", "nested model: only the export mode applies")
    kernel = next((getattr(layer, attr) for attr in KERNEL_ATTRS if getattr(layer, attr, None) is not None), None)
    if kernel is None:
        shape = estimate.LayerShape(n_weights=0, out_channels=0, n_bias=0, n_other=total)
        return LayerFacts(layer.name, class_name, shape, "other", "no kernel: only the export mode applies")
    bias = getattr(layer, "bias", None)
    n_bias = _size(bias) if bias is not None else 0
    out_channels = n_bias or int(kernel.shape[-1])
    shape = estimate.LayerShape(
        n_weights=_size(kernel), out_channels=out_channels, n_bias=n_bias, n_other=total - _size(kernel) - n_bias
    )
    return LayerFacts(layer.name, class_name, shape, "pending")


def _size(variable: Any) -> int:
    size = 1
    for dim in variable.shape:
        size *= int(dim)
    return size
