"""Quantization-aware training (tfmot) on selected layers; cluster-preserving when asked.

Only the named layers are annotated (`quantize_annotate_layer`), so a plan can mix QAT
layers with layers that keep a value set from an earlier stage (clusters, binary codes,
zeros). Those are frozen here: fine-tuning them in float would undo what made them small.
The returned model keeps its QuantizeWrappers: the TFLite converter reads the learned
quantization ranges from them, so it is exported as is (there is nothing to strip).
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any

from edgecompress._tf import tfmot
from edgecompress.compression.graph import rebuild


def _tfmot() -> Any:
    return tfmot()


def quantize_layers(
    model: Any, annotate: set[str], *, freeze: AbstractSet[str] = frozenset(), preserve_clusters: bool = False
) -> Any:
    """QAT model in which the `annotate` layers train with fake int8 quantization.

    With `preserve_clusters`, tfmot's cluster-preserving scheme keeps each clustered layer's
    number of unique weights (CQAT); layers that were never clustered get plain QAT.
    """
    tfmot = _tfmot()
    api = tfmot.quantization.keras

    def annotate_or_freeze(layer: Any) -> Any:
        if layer.name in freeze:
            layer.trainable = False
        return api.quantize_annotate_layer(layer) if layer.name in annotate else layer

    annotated = rebuild(model, annotate_or_freeze)
    if preserve_clusters:
        return api.quantize_apply(
            annotated, tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=False)
        )
    return api.quantize_apply(annotated)  # tfmot's default 8-bit scheme
