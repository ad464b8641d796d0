"""Drop from a .tflite what TFLite Micro never reads, so the model takes less flash.

TFLM's own model transforms (tensorflow/lite/micro/tools/tflm_model_transforms_lib.py,
"go/tflm-flatbuffer-reduction") shrink a flatbuffer for microcontrollers in the same ways
used here, through the tflite-micro package's model editor:

- names: tensor, subgraph and model-description strings are for people and converters; the
  interpreter finds tensors by index (flatbuffer_utils.strip_strings). A converted CIFAR
  model spends kilobytes on names like 'model/conv2d_3/BiasAdd;model/conv2d_3/Conv2D'.
- repeated zero points: TFLM supports only symmetric per-channel quantization, and its
  allocator broadcasts the first zero point to every channel when one is given
  (micro_allocator.cc), so an all-zero array of one int64 per channel becomes one zero
  (remove_extraneous_quantization_data, which in practice does this for every tensor: its
  `buffer is None` test never holds on the schema's objects). That includes the int8 tensors
  a DECODE operator rebuilds, which have no buffer but one zero point per channel.
- quantization nobody reads, found by reading the kernels of the pinned TFLM: the packed
  indices a DECODE operator unpacks (decode_state_lut.cc takes channels and axis from its
  output, never from the packed input), and the int32 bias of a convolution or fully
  connected layer (the kernels derive the bias scale from input and filter scales,
  kernel_util.cc's PopulateConvolutionQuantizationParams; only SVDF reads a bias scale).
  Each drops one float scale (and zero point) per output channel.

Names are needed until the model is planned, compressed and reported (layer names come from
tensor names), so `build_micro` slims the model the firmware carries last, and keeps it only
when TFLM's outputs are unchanged on every evaluation sample (and the firmware is then
compared with TFLM on every sample on an emulated board).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgecompress.micro.graph import read_model


def _channels(quantization: Any) -> int:
    scales = quantization.scales if quantization is not None else None
    return 0 if scales is None else len(scales) if isinstance(scales, (list, tuple)) or hasattr(scales, "shape") else 1


#: Operators whose TFLM kernels (reference and CMSIS-NN) never read their bias tensor's quantization.
_BIAS_SCALE_UNREAD = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2}
#: Custom operators whose first input is packed data the kernel reads without its quantization.
_PACKED_INPUT = {"TFLM_DECODE"}


@dataclass(frozen=True)
class Slimmed:
    """A slimmed model and what each change saved."""

    model: bytes
    original_bytes: int
    names_dropped: int  # tensors whose name was dropped
    zero_points_dropped: int  # repeated zero points of per-channel tensors dropped
    quantizations_dropped: int = 0  # bias and packed-index tensors whose unread scales were dropped

    @property
    def saved_bytes(self) -> int:
        return self.original_bytes - len(self.model)

    def to_dict(self) -> dict[str, int]:
        return {
            "original_bytes": self.original_bytes,
            "slimmed_bytes": len(self.model),
            "saved_bytes": self.saved_bytes,
            "names_dropped": self.names_dropped,
            "zero_points_dropped": self.zero_points_dropped,
            "quantizations_dropped": self.quantizations_dropped,
        }


def slim(tflite_bytes: bytes) -> Slimmed:
    """The model without names, repeated zero points and unread quantization (see the module's doc)."""
    model = read_model(bytes(tflite_bytes))
    names = zero_points = 0
    model.description = None
    unread = _unread_quantization(model)
    for subgraph in model.subgraphs:
        subgraph.name = None
        for tensor in subgraph.tensors:
            if tensor.name:
                names += 1
                tensor.name = None
            quantization = tensor.quantization
            zeros = quantization.zero_points if quantization is not None else 0
            if isinstance(zeros, list) and len(zeros) > 1 and not any(zeros):
                zero_points += len(zeros) - 1
                quantization.zero_points = [0]
    for tensor in unread:  # one scale and zero point left (the model editor keeps a tensor's quantization)
        quantization = tensor.quantization
        quantization.scales, quantization.zero_points = [_first(quantization.scales)], [0]
    return Slimmed(bytes(model.build()), len(tflite_bytes), names, zero_points, len(unread))


def _first(scales: Any) -> float:
    return float(scales[0]) if isinstance(scales, (list, tuple)) or hasattr(scales, "shape") else float(scales)


def _unread_quantization(model: Any) -> list[Any]:
    """Tensors whose quantization no reader of theirs uses: biases of the kernels above, packed DECODE inputs.

    A tensor read by any other operator (or by two kinds of reader) keeps its quantization.
    """
    readers: dict[int, list[tuple[str, int]]] = {}
    tensors: dict[int, Any] = {}
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            for position, tensor in enumerate(op.inputs):
                if tensor is not None:
                    readers.setdefault(id(tensor), []).append((op.opcode_name, position))
                    tensors[id(tensor)] = tensor
        for tensor in subgraph.outputs or []:
            readers.setdefault(id(tensor), []).append(("(graph output)", -1))
    unread = []
    for key, uses in readers.items():
        tensor = tensors.get(key)
        if tensor is None or tensor.buffer is None or _channels(tensor.quantization) <= 1:
            continue
        if all(_BIAS_SCALE_UNREAD.get(name) == position for name, position in uses) or all(
            name in _PACKED_INPUT and position == 0 for name, position in uses
        ):
            unread.append(tensor)
    return unread
