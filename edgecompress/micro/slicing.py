"""Split a large FULLY_CONNECTED layer into slices of output units, so its LUT-decoded weights
never have to sit in RAM whole.

TFLM's DECODE rebuilds a compressed tensor in the arena right before the one operator that
reads it. A 4096 x 128 Dense layer stored as 2-bit indices takes 131 KB of flash but, decoded,
512 KB of arena -- more RAM than a Cortex-M4 board has. Split along its output units into
K FULLY_CONNECTED operators (each reading the same input, each with its own rows of the
weights, bias and per-channel scales) followed by one CONCATENATION, each slice gets its own
DECODE right before it, and TFLM's memory planner reuses one slice's space for the next:
the arena holds 1/K of the decoded weights.

The result is bit-identical: every output unit is computed from exactly the same weights,
bias, input and requantization as before, and concatenating int8 tensors of equal scale
and zero point copies bytes. `build_micro` still runs the sliced model in TFLM and keeps it
only if every output equals the original's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecompress.micro.graph import layer_of, read_model

#: TFLM's CONCATENATION takes at most 10 inputs (kMaxInputNum); powers of two up to 8.
MAX_SLICES = 8


@dataclass(frozen=True)
class SlicedLayer:
    layer: str
    weights: str
    units: int
    slices: int
    decoded_slice_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "weights": self.weights,
            "units": self.units,
            "slices": self.slices,
            "decoded_slice_bytes": self.decoded_slice_bytes,
        }


def sliceable(tflite_bytes: bytes, weights_name: str) -> int | None:
    """Output units of the FULLY_CONNECTED reading `weights_name`, if it can be sliced; else None."""
    found = _find(read_model(tflite_bytes), weights_name)
    return None if found is None else int(found[2].shape[0])


def slice_dense(tflite_bytes: bytes, weights_name: str, slices: int) -> tuple[bytes, SlicedLayer]:
    """The model with the FULLY_CONNECTED layer whose weights are `weights_name` split into `slices`."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    model = read_model(tflite_bytes)
    found = _find(model, weights_name)
    if found is None:
        raise ValueError(f"no FULLY_CONNECTED layer reads {weights_name!r} as a constant")
    subgraph, op, weights, bias, output = found
    units = int(weights.shape[0])
    if slices < 2 or units % slices or slices > MAX_SLICES:
        raise ValueError(f"{units} units do not split into {slices} equal slices (at most {MAX_SLICES})")
    step = units // slices
    values = weights.array
    pieces, operators = [], []
    for k in range(slices):
        operator, added = _slice_operator(op, weights, bias, output, k, step)
        operators.append(operator)
        subgraph.tensors.extend(added)
        pieces.append(operator.outputs[0])
    operators.append(_concatenation(pieces, output))
    position = subgraph.operators.index(op)
    subgraph.operators[position : position + 1] = operators
    for replaced in (weights, bias):  # only the sliced copies remain; the whole tensors would still take flash
        if replaced is not None and not any(replaced in o.inputs for o in subgraph.operators):
            subgraph.tensors.remove(replaced)
    model_editor.prune_buffers(model)
    layer = SlicedLayer(
        layer_of(op), weights.name, units, slices, step * int(np.prod(values.shape[1:])) * values.itemsize
    )
    return _concatenate_on_last_axis(bytes(model.build()), output.name), layer


def _slice_operator(op: Any, weights: Any, bias: Any, output: Any, k: int, step: int) -> tuple[Any, list[Any]]:
    """Slice k: the layer's input and options on its rows of weights, bias and scales; with the tensors it adds."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    rows = slice(k * step, (k + 1) * step)
    values = weights.array
    weight_k = model_editor.Tensor(
        shape=(step, *values.shape[1:]),
        dtype=weights.dtype,
        data=np.ascontiguousarray(values[rows]),
        quantization=_rows(weights.quantization, rows),
        name=f"{weights.name}/slice{k}",
    )
    bias_k = None
    if bias is not None:
        bias_k = model_editor.Tensor(
            shape=(step,),
            dtype=bias.dtype,
            data=np.ascontiguousarray(bias.array[rows]),
            quantization=_rows(bias.quantization, rows),
            name=f"{bias.name}/slice{k}",
        )
    out_shape = (*output.shape[:-1], step)
    out_k = model_editor.Tensor(
        shape=out_shape,
        dtype=output.dtype,
        quantization=copy.deepcopy(output.quantization),
        name=f"{output.name}/slice{k}",
    )
    # the layer's operator copied (its builtin options: fused activation, weights format), sharing the tensors it reads
    operator = copy.deepcopy(op, {id(t): t for t in (*op.inputs, *op.outputs) if t is not None})
    operator.inputs = [op.inputs[0], weight_k, bias_k] + list(op.inputs[3:])
    operator.outputs = [out_k]
    return operator, [t for t in (weight_k, bias_k, out_k) if t is not None]


def _concatenation(pieces: list[Any], output: Any) -> Any:
    """Join the slices' outputs into the layer's own output tensor, so the rest of the graph is untouched.

    Its axis is set on the built model (`_concatenate_on_last_axis`): model_editor takes an
    operator's builtin options only through a private argument.
    """
    from tflite_micro.tensorflow.lite.micro.compression import model_editor
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    return model_editor.Operator(opcode=schema.BuiltinOperator.CONCATENATION, inputs=pieces, outputs=[output])


def _concatenate_on_last_axis(tflite_bytes: bytes, output_name: str) -> bytes:
    """The built model with the CONCATENATION writing `output_name` joining on the last axis
    (through the generated flatbuffer schema, as model_editor itself packs the model)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(tflite_bytes, 0)
    concatenation = schema.BuiltinOperator.CONCATENATION
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            tensor = subgraph.tensors[op.outputs[0]]
            if (
                max(code.builtinCode, code.deprecatedBuiltinCode) == concatenation
                and tensor.name.decode() == output_name
            ):
                options = schema.ConcatenationOptionsT()
                options.axis = len(tensor.shape) - 1
                options.fusedActivationFunction = schema.ActivationFunctionType.NONE
                op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.ConcatenationOptions, options
    builder = flatbuffers.Builder(len(tflite_bytes) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _find(model: Any, weights_name: str) -> tuple[Any, Any, Any, Any, Any] | None:
    for subgraph in model.subgraphs[:1]:
        for op in subgraph.operators:
            if op.opcode_name != "FULLY_CONNECTED" or len(op.inputs) < 2:
                continue
            weights = op.inputs[1]
            if weights is None or weights.name != weights_name or weights.array is None or len(weights.shape) != 2:
                continue
            bias = op.inputs[2] if len(op.inputs) > 2 else None
            if bias is not None and bias.array is None:
                return None
            quantization = weights.quantization
            if quantization is not None and np.size(quantization.scales) > 1 and (quantization.axis or 0) != 0:
                return None
            if len([o for o in subgraph.operators if weights in o.inputs]) != 1:
                return None  # shared weights: slicing one reader would not free the others
            return subgraph, op, weights, bias, op.outputs[0]
    return None


def _rows(quantization: Any, rows: slice) -> Any:
    """Per-channel parameters keep only the sliced channels; per-tensor ones stay as they are."""
    if quantization is None:
        return None
    sliced = copy.deepcopy(quantization)
    scales, zeros = np.atleast_1d(quantization.scales), np.atleast_1d(quantization.zero_points)
    if scales.size > 1:
        sliced.scales = [float(s) for s in scales[rows]]
        sliced.zero_points = [int(z) for z in zeros[rows]] if zeros.size > 1 else int(zeros[0])
    return sliced
