"""Which operators TFLite Micro can run, and how the firmware registers them.

One table serves two jobs: refusing a model whose ops TFLM lacks *before* anything is built
(naming the Keras layer, because the user knows layers, not flatbuffer opcodes), and writing
the firmware's op resolver, which must register exactly the model's ops -- every extra
kernel costs flash on the device.

The table lists the builtin and custom ops of TFLM's MicroMutableOpResolver as shipped in the
pinned `tflite-micro` package, with the resolver method that registers each. The static check
catches missing ops; kernels that exist but not for the model's dtype (e.g. int8 EXP) are
caught when the real interpreter prepares the model, see `explain_prepare_failure`.
"""

from __future__ import annotations

import re

from edgecompress.errors import ModelError
from edgecompress.micro.graph import GraphOp, operators, read_model

#: TFLM op -> MicroMutableOpResolver method. Builtins by their schema name, custom ops by
#: their custom code (TFLM_DECODE is the operator LUT-compressed tensors are decoded by).
TFLM_RESOLVER_METHODS: dict[str, str] = {
    "ABS": "AddAbs",
    "ADD": "AddAdd",
    "ADD_N": "AddAddN",
    "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin",
    "ASSIGN_VARIABLE": "AddAssignVariable",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo",
    "CALL_ONCE": "AddCallOnce",
    "CAST": "AddCast",
    "CEIL": "AddCeil",
    "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D",
    "COS": "AddCos",
    "CUMSUM": "AddCumSum",
    "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize",
    "DIV": "AddDiv",
    "DYNAMIC_UPDATE_SLICE": "AddDynamicUpdateSlice",
    "ELU": "AddElu",
    "EMBEDDING_LOOKUP": "AddEmbeddingLookup",
    "EQUAL": "AddEqual",
    "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims",
    "FILL": "AddFill",
    "FLOOR": "AddFloor",
    "FLOOR_DIV": "AddFloorDiv",
    "FLOOR_MOD": "AddFloorMod",
    "FULLY_CONNECTED": "AddFullyConnected",
    "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd",
    "GREATER": "AddGreater",
    "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish",
    "IF": "AddIf",
    "L2_NORMALIZATION": "AddL2Normalization",
    "L2_POOL_2D": "AddL2Pool2D",
    "LEAKY_RELU": "AddLeakyRelu",
    "LESS": "AddLess",
    "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog",
    "LOG_SOFTMAX": "AddLogSoftmax",
    "LOGICAL_AND": "AddLogicalAnd",
    "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr",
    "LOGISTIC": "AddLogistic",
    "MAX_POOL_2D": "AddMaxPool2D",
    "MAXIMUM": "AddMaximum",
    "MEAN": "AddMean",
    "MINIMUM": "AddMinimum",
    "MIRROR_PAD": "AddMirrorPad",
    "MUL": "AddMul",
    "NEG": "AddNeg",
    "NOT_EQUAL": "AddNotEqual",
    "PACK": "AddPack",
    "PAD": "AddPad",
    "PADV2": "AddPadV2",
    "PRELU": "AddPrelu",
    "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable",
    "REDUCE_MAX": "AddReduceMax",
    "REDUCE_MIN": "AddReduceMin",
    "RELU": "AddRelu",
    "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape",
    "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor",
    "REVERSE_V2": "AddReverseV2",
    "ROUND": "AddRound",
    "RSQRT": "AddRsqrt",
    "SELECT_V2": "AddSelectV2",
    "SHAPE": "AddShape",
    "SIN": "AddSin",
    "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd",
    "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit",
    "SPLIT_V": "AddSplitV",
    "SQRT": "AddSqrt",
    "SQUARE": "AddSquare",
    "SQUARED_DIFFERENCE": "AddSquaredDifference",
    "SQUEEZE": "AddSqueeze",
    "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub",
    "SUM": "AddSum",
    "SVDF": "AddSvdf",
    "TANH": "AddTanh",
    "TRANSPOSE": "AddTranspose",
    "TRANSPOSE_CONV": "AddTransposeConv",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "UNPACK": "AddUnpack",
    "VAR_HANDLE": "AddVarHandle",
    "WHILE": "AddWhile",
    "ZEROS_LIKE": "AddZerosLike",
    "TFLM_DECODE": "AddDecode",
    "TFLite_Detection_PostProcess": "AddDetectionPostprocess",
}

#: What to change in the Keras model when an op is missing or lacks an int8 kernel.
OP_SUGGESTIONS: dict[str, str] = {
    "GELU": "Use activation='relu' (or 'swish', which converts to LOGISTIC and MUL, both in TFLM).",
    "EXP": "TFLM's EXP has no int8 kernel: replace selu/softplus/exponential activations with 'relu' or 'elu'.",
    "LOG": "TFLM's LOG has no int8 kernel: remove log/softplus from the model or keep that part off-device.",
    "TOPK_V2": "Take the top-k on the host side: end the model at the scores.",
    "POW": "Replace x**y with multiplications (MUL) or a lookup-friendly activation.",
    "ATAN2": "Compute the angle outside the model.",
    "CUSTOM": "Custom ops do not exist on a microcontroller: rebuild the layer from standard Keras layers.",
}
_GENERIC_SUGGESTION = (
    "Rebuild the layer from ops TFLM runs: Conv2D, DepthwiseConv2D, Dense, pooling, "
    "ReLU/ReLU6/sigmoid/tanh/softmax activations, Add/Multiply, Reshape/Flatten, Concatenate."
)


def suggestion(op_name: str) -> str:
    return OP_SUGGESTIONS.get(op_name, _GENERIC_SUGGESTION)


def require_tflm_ops(tflite_bytes: bytes) -> list[str]:
    """The model's distinct op names, sorted; ModelError naming every layer whose op TFLM lacks."""
    graph_ops = list(operators(read_model(tflite_bytes)))
    missing = [op for op in graph_ops if op.name not in TFLM_RESOLVER_METHODS]
    if missing:
        raise ModelError(
            "TFLite Micro cannot run this model: it has no kernel for "
            + "; ".join(f"{op.name}, used by {_describe(op)}" for op in missing)
            + ".",
            " ".join(dict.fromkeys(suggestion(op.name) for op in missing)),
        )
    return sorted({op.name for op in graph_ops})


def resolver_methods(op_names: list[str]) -> list[str]:
    """MicroMutableOpResolver calls that register exactly `op_names`, in the same order."""
    return [TFLM_RESOLVER_METHODS[name] for name in op_names]


_PREPARE_FAILURE = re.compile(r"Node (?P<op>\S+) \(number (?P<index>\d+)\) failed to (?P<stage>prepare|invoke)")
_MISSING_KERNEL = re.compile(r"Didn't find op for (?:builtin opcode|custom opcode) '(?P<op>[^']+)'")


def explain_prepare_failure(tflite_bytes: bytes, log: str) -> ModelError | None:
    """Turn the TFLM interpreter's log into a ModelError naming the failing layer, if it names one.

    Used when the static table passed but the real interpreter still refused, typically a
    kernel that exists only for other dtypes ('Node EXP (number 4) failed to prepare').
    """
    graph_ops = list(operators(read_model(tflite_bytes)))
    detail = " ".join(
        line.strip() for line in log.splitlines() if line.strip() and "RecordingMicroAllocator" not in line
    )
    match = _PREPARE_FAILURE.search(log)
    if match:
        index = int(match["index"])
        op = next((o for o in graph_ops if o.subgraph == 0 and o.index == index), None)
        where = _describe(op) if op else f"operator {index} ({match['op']})"
        return ModelError(
            f"TFLite Micro refused {where} when it tried to {match['stage']} it: {detail}", suggestion(match["op"])
        )
    match = _MISSING_KERNEL.search(log)
    if match:
        layers = [_describe(o) for o in graph_ops if o.name == match["op"]] or [match["op"]]
        return ModelError(
            f"TFLite Micro has no kernel for {match['op']}, used by {'; '.join(layers)}: {detail}",
            suggestion(match["op"]),
        )
    return None


def _describe(op: GraphOp) -> str:
    return f"layer '{op.layer}' (op {op.name}, operator {op.index} of subgraph {op.subgraph})"
