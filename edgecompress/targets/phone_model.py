"""The bytes of an artifact as the phone page is served them.

LiteRT.js 2.5 compiles a model for fixed tensor shapes and refuses an input whose batch
dimension is dynamic (-1 in the flatbuffer's `shape_signature`), which the TFLite converter
writes for every Keras model. So a .tflite is served with that one dimension fixed at 1, edited
in place in a copy: same length, same operators, same weights, only the signature's -1 batch
entries become 1 (batch 1 is what every latency and evaluation run uses anyway). The result
says so and records both hashes; an .onnx file is served unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ServedModel:
    """The bytes the page gets, and how they differ from the artifact (None: not at all)."""

    data: bytes
    change: str | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def facts(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "bytes": len(self.data), "change": self.change}


def served_model(artifact: bytes, suffix: str) -> ServedModel:
    """`artifact` ready for the page's runtime (see the module docstring)."""
    if suffix != ".tflite":
        return ServedModel(artifact, None)
    from ai_edge_litert import schema_py_generated as schema

    data = bytearray(artifact)
    model = schema.Model.GetRootAs(data, 0)
    fixed = 0
    for g in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(g)
        for t in range(subgraph.TensorsLength()):
            tensor = subgraph.Tensors(t)
            if tensor.ShapeSignatureLength() and tensor.ShapeSignature(0) == -1:
                signature: np.ndarray = tensor.ShapeSignatureAsNumpy()  # a view into `data`: written in place
                signature[0] = 1
                fixed += 1
    if not fixed:
        return ServedModel(artifact, None)
    return ServedModel(
        bytes(data),
        f"the dynamic batch dimension of {fixed} tensor signature(s) fixed at 1 for LiteRT.js, which compiles "
        "fixed shapes; operators and weights are the artifact's",
    )


__all__ = ["ServedModel", "served_model"]
