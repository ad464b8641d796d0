"""Multiply-accumulates (MACs) per layer and per artifact: the theoretical side of every speed-up.

One module counts them for the three forms a model takes -- the Keras model (for plans,
before anything is exported), the .tflite graph and the ONNX graph (for reports, as the
artifact really is, so a pruned or factorised file is counted with its real shapes). The
formulas are shared, so the three agree on the same network.

Definition (quoted by reports): one MAC is one multiply-add of a convolution, depthwise
convolution, transposed convolution or matrix product, counted per call of the model at the
batch size stored in its graph (1 for a Keras model with a free batch dimension). Element-wise
ops (bias adds, activations, pooling, quantize/dequantize) are not counted: on the CPUs and
accelerators we target they cost little next to the products, and every tool that quotes
MACs (or "FLOPs" = 2 x MACs) leaves them out the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MAC_DEFINITION = (
    "multiply-accumulates of convolutions, depthwise / transposed convolutions and matrix products per call "
    "(batch as stored in the graph, 1 for a free batch); element-wise ops not counted"
)


@dataclass(frozen=True)
class OpMacs:
    """The MACs of one operation (one Keras layer, one TFLite operator, one ONNX node)."""

    name: str  # layer name, or the op's output tensor / node name
    op: str  # Keras class, TFLite builtin or ONNX op_type
    macs: int
    layer: str | None = None  # the Keras layer the op computes, when it can be told


def _product(values: Iterable[Any]) -> int:
    return int(math.prod(int(v) for v in values))


def window_macs(output_elements: int, window: int, inputs_per_output: int) -> int:
    """A convolution-like product: each output element sums `window` x `inputs_per_output` products."""
    return int(output_elements) * int(window) * int(inputs_per_output)


def summary(rows: Sequence[OpMacs], source: str) -> dict[str, Any]:
    """report.json's `macs` block: the total, where it came from, and the per-op rows (largest first kept in order)."""
    by_layer: dict[str, int] = {}
    for row in rows:
        if row.macs:
            key = row.layer or row.name
            by_layer[key] = by_layer.get(key, 0) + row.macs
    return {
        "total": int(sum(row.macs for row in rows)),
        "source": source,
        "definition": MAC_DEFINITION,
        "by_layer": [{"layer": name, "macs": macs} for name, macs in by_layer.items()],
        "ops": [asdict(row) for row in rows if row.macs],
    }


def mac_ratio(baseline_macs: int | None, macs: int | None) -> float | None:
    """Theoretical speed-up: baseline MACs / these MACs (None when either is unknown or zero)."""
    if not baseline_macs or not macs:
        return None
    return round(baseline_macs / macs, 3)


# --------------------------------------------------------------------------------------
# Keras
# --------------------------------------------------------------------------------------


def _dims(shape: Any) -> list[int]:
    """A Keras shape without its batch axis, with None (unknown) as 1."""
    if isinstance(shape, list) and shape and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return [1 if d is None else int(d) for d in tuple(shape)[1:]]


def keras_layer_macs(layer: Any) -> int:
    """MACs of one built Keras layer (seen through tfmot wrappers) for one sample."""
    from edgecompress.compression.graph import inner_layer

    inner = inner_layer(layer)
    kind = type(inner).__name__
    try:
        out_shape = _dims(layer.output_shape)
        in_shape = _dims(layer.input_shape)
    except (AttributeError, RuntimeError):  # a layer never called has no shapes
        return 0
    if kind in ("Conv1D", "Conv2D", "Conv3D"):
        groups = int(getattr(inner, "groups", 1) or 1)
        return window_macs(_product(out_shape), _product(inner.kernel_size), in_shape[-1] // groups)
    if kind in ("DepthwiseConv1D", "DepthwiseConv2D"):
        return window_macs(_product(out_shape), _product(inner.kernel_size), 1)
    if kind in ("SeparableConv1D", "SeparableConv2D"):
        channels_in = in_shape[-1]
        depth = channels_in * int(inner.depth_multiplier)
        spatial = _product(out_shape[:-1])
        return window_macs(spatial * depth, _product(inner.kernel_size), 1) + window_macs(
            spatial * out_shape[-1], 1, depth
        )
    if kind in ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"):
        return window_macs(_product(in_shape), _product(inner.kernel_size), out_shape[-1])
    if kind == "Dense":
        return window_macs(_product(out_shape), 1, in_shape[-1])
    return 0


def keras_macs(model: Any) -> list[OpMacs]:
    """One row per top-level layer with MACs, in model order."""
    from edgecompress.compression.graph import inner_layer

    rows = []
    for layer in model.layers:
        macs = keras_layer_macs(layer)
        if macs:
            inner = inner_layer(layer)
            rows.append(OpMacs(inner.name, type(inner).__name__, macs, inner.name))
    return rows


# --------------------------------------------------------------------------------------
# TFLite
# --------------------------------------------------------------------------------------


def _scope(name: str) -> str | None:
    """The Keras layer in a converter's tensor / node name: 'model/conv2d_1/Relu;...' -> 'conv2d_1'.

    Used when the caller does not know the layer names: converters name every op
    '<model>/<layer>/<op>'; tfmot's QAT wrapper adds a 'quant_' prefix.
    """
    parts = name.split(";")[0].split("/")
    if len(parts) < 3:
        return None
    layer = parts[1]
    return layer[len("quant_") :] if layer.startswith("quant_") else layer


def _layer_of(candidates: list[str], names: list[str]) -> str | None:
    from edgecompress.export.weights import _match_layer

    for candidate in candidates:
        found = _match_layer(candidate, names) if names else _scope(candidate)
        if found:
            return found
    return None


def _tflite_op_macs(op: str, shapes: list[list[int] | None], out: list[int]) -> int:
    """MACs of one TFLite builtin from its operand shapes (TFLite layouts: OHWI filters)."""

    def shape(i: int) -> list[int]:
        found = shapes[i] if i < len(shapes) else None
        return found if found is not None else []

    if op == "CONV_2D":
        return window_macs(_product(out), _product(shape(1)[1:3]), shape(1)[3] if len(shape(1)) == 4 else 0)
    if op == "DEPTHWISE_CONV_2D":
        return window_macs(_product(out), _product(shape(1)[1:3]), 1)
    if op == "FULLY_CONNECTED":
        return window_macs(_product(out), 1, shape(1)[-1] if shape(1) else 0)
    if op == "TRANSPOSE_CONV":  # inputs: output_shape, weights (OHWI), activation
        filt = shape(1)
        return window_macs(_product(shape(2)), _product(filt[1:3]), filt[0]) if len(filt) == 4 else 0
    if op == "CONV_3D":  # filter DHWIO
        filt = shape(1)
        return window_macs(_product(out), _product(filt[:3]), filt[3]) if len(filt) == 5 else 0
    if op == "BATCH_MATMUL":
        a = shape(0)
        return window_macs(_product(out), 1, a[-1]) if a else 0
    return 0


def tflite_macs(tflite_bytes: bytes, *, layer_names: Iterable[str] | None = None) -> list[OpMacs]:
    """One row per operator of the main subgraph, with its MACs as the graph stores it."""
    from edgecompress.export.flatbuffer import TfliteFile

    file = TfliteFile(tflite_bytes)
    names = sorted(layer_names or (), key=len, reverse=True)
    ops, tensors = file.subgraphs[0]
    rows = []
    for op in ops:
        shapes = [
            None if i < 0 else [int(d) for d in (tensors[i].shape if tensors[i].shape is not None else [])]
            for i in op.inputs
        ]
        out_index = op.outputs[0] if op.outputs else -1
        out = (
            [int(d) for d in tensors[out_index].shape]
            if out_index >= 0 and tensors[out_index].shape is not None
            else []
        )
        macs = _tflite_op_macs(op.name, shapes, out)
        label = file.tensor_name(tensors[out_index]) if out_index >= 0 else op.name
        # the last op of a model is renamed (StatefulPartitionedCall); its weights keep the layer scope
        candidates = [label] + [
            file.tensor_name(tensors[i]) for i in op.inputs if i >= 0 and file.buffer_bytes(tensors[i])
        ]
        rows.append(OpMacs(label, op.name, macs, _layer_of(candidates, names) if macs else None))
    return rows


# --------------------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------------------

#: op_type -> (index of the weight input, index of the activation input)
_ONNX_WEIGHTED = {
    "Conv": (1, 0),
    "ConvInteger": (1, 0),
    "QLinearConv": (3, 0),
    "ConvTranspose": (1, 0),
    "MatMul": (1, 0),
    "MatMulInteger": (1, 0),
    "QLinearMatMul": (3, 0),
    "Gemm": (1, 0),
}


def _onnx_shapes(model: Any) -> dict[str, list[int]]:
    """Every tensor's static shape after ONNX shape inference; symbolic dims (the batch) count as 1."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    shapes: dict[str, list[int]] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in dims]
    for init in graph.initializer:
        shapes[init.name] = [int(d) for d in init.dims]
    return shapes


def _onnx_node_macs(node: Any, shapes: dict[str, list[int]]) -> int:
    weight_at, activation_at = _ONNX_WEIGHTED[node.op_type]
    if len(node.input) <= weight_at or not node.output:
        return 0
    weight = shapes.get(node.input[weight_at])
    out = shapes.get(node.output[0])
    if not weight or out is None:
        return 0
    if node.op_type in ("Conv", "ConvInteger", "QLinearConv"):  # W: [M, C/group, k...]
        return window_macs(_product(out), _product(weight[2:]), weight[1])
    if node.op_type == "ConvTranspose":  # W: [C, M/group, k...]
        source = shapes.get(node.input[activation_at]) or []
        return window_macs(_product(source), _product(weight[2:]), weight[1])
    if node.op_type == "Gemm":
        trans_b = next((attr.i for attr in node.attribute if attr.name == "transB"), 0)
        inner = weight[1] if trans_b else weight[0]
        return window_macs(_product(out), 1, inner)
    return window_macs(_product(out), 1, weight[-2] if len(weight) >= 2 else weight[0])  # MatMul: B [.., K, N]


def onnx_macs(onnx_model: Any, *, layer_names: Iterable[str] | None = None) -> list[OpMacs]:
    """One row per ONNX node that multiplies (Conv, MatMul, Gemm and their integer forms)."""
    import onnx

    model = onnx.load(str(onnx_model), load_external_data=False) if isinstance(onnx_model, (str, Path)) else onnx_model
    shapes = _onnx_shapes(model)
    names = sorted(layer_names or (), key=len, reverse=True)
    rows = []
    for node in model.graph.node:
        if node.op_type not in _ONNX_WEIGHTED:
            continue
        label = node.name or (node.output[0] if node.output else node.op_type)
        rows.append(OpMacs(label, node.op_type, _onnx_node_macs(node, shapes), _layer_of([label], names)))
    return rows


def artifact_macs(path: Path, *, layer_names: Iterable[str] | None = None) -> dict[str, Any]:
    """The `macs` block of one exported artifact, counted from its own graph."""
    path = Path(path)
    if path.suffix == ".tflite":
        return summary(tflite_macs(path.read_bytes(), layer_names=layer_names), "tflite graph")
    if path.suffix == ".onnx":
        return summary(onnx_macs(path, layer_names=layer_names), "onnx graph")
    raise ValueError(f"cannot count MACs of {path.name}: neither .tflite nor .onnx")


__all__ = [
    "MAC_DEFINITION",
    "OpMacs",
    "artifact_macs",
    "keras_layer_macs",
    "keras_macs",
    "mac_ratio",
    "onnx_macs",
    "summary",
    "tflite_macs",
    "window_macs",
]
