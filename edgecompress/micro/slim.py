"""Drop from a .tflite what TFLite Micro never reads, so the model takes less flash.

TFLM's own model transforms (tensorflow/lite/micro/tools/tflm_model_transforms_lib.py,
"go/tflm-flatbuffer-reduction") shrink a flatbuffer for microcontrollers in the same two ways
used here, through the tflite-micro package's model editor:

- names: tensor, subgraph and model-description strings are for people and converters; the
  interpreter finds tensors by index (flatbuffer_utils.strip_strings). A converted CIFAR
  model spends kilobytes on names like 'model/conv2d_3/BiasAdd;model/conv2d_3/Conv2D'.
- per-channel zero points of constant tensors: TFLM's int8 kernels support only symmetric
  weights and read the first zero point alone, so an all-zero array of one int64 per output
  channel becomes one zero (remove_extraneous_quantization_data).

Names are needed until the model is planned, compressed and reported (layer names come from
tensor names), so `build_micro` slims the model the firmware carries last, and keeps it only
when TFLM's outputs are unchanged on every evaluation sample.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgecompress.micro.graph import read_model


@dataclass(frozen=True)
class Slimmed:
    """A slimmed model and what each change saved."""

    model: bytes
    original_bytes: int
    names_dropped: int  # tensors whose name was dropped
    zero_points_dropped: int  # per-channel zero points of constant tensors dropped

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
        }


def slim(tflite_bytes: bytes) -> Slimmed:
    """The model without names and with one zero point per symmetric constant tensor (see the module's doc)."""
    model = read_model(bytes(tflite_bytes))
    names = zero_points = 0
    model.description = None
    for subgraph in model.subgraphs:
        subgraph.name = None
        for tensor in subgraph.tensors:
            if tensor.name:
                names += 1
                tensor.name = None
            quantization = tensor.quantization
            zeros = quantization.zero_points if quantization is not None else 0
            if tensor.buffer is not None and isinstance(zeros, list) and len(zeros) > 1 and not any(zeros):
                zero_points += len(zeros) - 1
                quantization.zero_points = [0]
    return Slimmed(bytes(model.build()), len(tflite_bytes), names, zero_points)
