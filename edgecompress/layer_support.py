"""Layers and activations the export path cannot carry, as data -- refused before any training.

`deploy` measures significance and fine-tunes for minutes before it converts; a layer the
converter cannot handle used to fail only then. Each row was measured by converting a tiny
model holding that layer with the pinned TensorFlow 2.21 converter + LiteRT and tf2onnx 1.17 +
onnxruntime, and running the result; tests/test_layer_support.py repeats the measurement, so a
row that stops being true fails the tests. A layer not listed converted in every route it was
tried in, or was not tried (the converter then fails later with its own message).

A route is a TFLite mode (see export.modes) or 'onnx'. Every deploy exports the float32
baseline, so a layer failing 'float32' is refused as soon as the model is loaded; other rows
are checked against the routes a run's plan will take (`check_export_routes`). A gap can hold
only while the model's batch dimension is free (how Keras saves a model unless its Input is
given a batch_size), or be avoided by a config value (an unrolled LSTM converts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgecompress.errors import ModelError
from edgecompress.model_safety import LayerRecord

TFLITE_MODES = frozenset({"float32", "fp16", "dynamic", "int8", "int16x8"})
#: The route every deploy takes: the float32 TFLite baseline.
BASELINE_ROUTES = frozenset({"float32"})


@dataclass(frozen=True)
class ExportGap:
    """Which routes fail for a layer, what happens (as measured), and what to use instead."""

    fails: frozenset[str]
    what: str
    fix: str
    only_with_free_batch: bool = False  # converts once the model's batch size is fixed
    unless: Mapping[str, Any] = field(default_factory=dict)  # config values that avoid the gap

    def applies(self, layer: LayerRecord, *, free_batch: bool) -> bool:
        if self.only_with_free_batch and not free_batch:
            return False
        return not (self.unless and all(layer.config.get(key) == value for key, value in self.unless.items()))


_RECURRENT = ExportGap(
    TFLITE_MODES,
    "cannot be converted to TFLite unless unrolled: the converter cannot lower its time loop ('tf.TensorListReserve' "
    "op requires element_shape to be static; with a fixed batch size GRU crashes the int8 quantizer instead)",
    "Build the recurrent layer with unroll=True (an image's rows make a short sequence) and re-save: unrolled, it "
    "converts in every TFLite mode and to ONNX. Or replace it with Conv1D / Conv2D.",
    unless={"unroll": True},
)
_CONV_RECURRENT = ExportGap(
    TFLITE_MODES,
    "cannot be converted to TFLite: the converter cannot lower its time loop ('tf.TensorListReserve' op requires "
    "element_shape to be static), and convolutional recurrent layers cannot be unrolled",
    "Replace it with Conv2D / Conv3D layers over the time axis.",
)
_POOLING_3D = ExportGap(
    TFLITE_MODES,
    "needs a TensorFlow op outside TFLite's builtins (TF Select), which the LiteRT runtime on a device lacks",
    "Pool in 2D (fold the depth axis into channels with Reshape) or use GlobalAveragePooling3D / GlobalMaxPooling3D.",
)
_INVALID_ONNX = "exports to an ONNX graph that onnxruntime rejects as invalid"

#: layer class -> the export gaps measured for it.
LAYER_GAPS: dict[str, tuple[ExportGap, ...]] = {
    **{name: (_RECURRENT,) for name in ("LSTM", "GRU", "SimpleRNN", "RNN")},
    **{name: (_CONV_RECURRENT,) for name in ("ConvLSTM2D", "ConvLSTM1D", "ConvLSTM3D")},
    "MaxPooling3D": (_POOLING_3D,),
    "AveragePooling3D": (_POOLING_3D,),
    "GroupNormalization": (
        ExportGap(
            TFLITE_MODES,
            "converts to TFLite with a free batch dimension, but LiteRT cannot run the result (its BROADCAST_TO op "
            "fails to prepare; int8 and int16x8 conversion fail outright)",
            "Use BatchNormalization (folded into the convolution on export) or LayerNormalization instead.",
            only_with_free_batch=True,
        ),
        ExportGap(
            frozenset({"int16x8"}),
            "cannot be quantized to int16x8 (no 16x8 kernel for its SQUARE op)",
            "Use a profile with int8 or fp16 quantization, or BatchNormalization instead.",
        ),
    ),
    "Discretization": (
        ExportGap(frozenset({"onnx"}), _INVALID_ONNX, "Bucketize the inputs before the model, outside it."),
    ),
    "RandomCrop": (
        ExportGap(
            frozenset({"onnx"}),
            "cannot be exported to ONNX by tf2onnx (its inference branch reads a TensorFlow resource)",
            "Crop with CenterCrop (or crop the data) in the exported model; keep random cropping in the training data pipeline.",
        ),
    ),
}
#: activation name (a layer's `activation` field) -> the export gaps measured for it.
ACTIVATION_GAPS: dict[str, tuple[ExportGap, ...]] = {
    "gelu": (
        ExportGap(
            frozenset({"onnx"}),
            f"{_INVALID_ONNX} (tf2onnx writes an 'Erfc' node)",
            "Use the 'swish' activation (close to GELU), which exports to TFLite and ONNX.",
        ),
    )
}


def export_gaps(
    layers: Iterable[LayerRecord], routes: Iterable[str], *, free_batch: bool = True
) -> list[tuple[LayerRecord, ExportGap, list[str]]]:
    """Every (layer, gap, failing routes) among `routes`, in layer order."""
    routes = set(routes)
    found = []
    for layer in layers:
        activation = layer.config.get("activation")
        gaps = LAYER_GAPS.get(layer.class_name, ()) + (
            ACTIVATION_GAPS.get(activation, ()) if isinstance(activation, str) else ()
        )
        for gap in gaps:
            failing = sorted(routes & gap.fails)
            if failing and gap.applies(layer, free_batch=free_batch):
                found.append((layer, gap, failing))
    return found


def check_export_routes(loaded: Any, *, routes: Iterable[str]) -> None:
    """Refuse, naming every such layer, a loaded model (model_io.LoadedModel) that cannot take `routes`."""
    found = export_gaps(loaded.records, routes, free_batch=loaded.fixed_batch is None)
    if not found:
        return
    listed = "; ".join(
        f"{layer.label()}{_activation(layer, gap)} {gap.what}{_routes(gap, failing)}" for layer, gap, failing in found
    )
    fixes = " ".join(dict.fromkeys(gap.fix for _, gap, _ in found))
    raise ModelError(f"'{loaded.path.name}' cannot be exported for a device: {listed}.", fixes)


def check_exportable_layers(loaded: Any) -> None:
    """What loading a model for `deploy` checks: the float32 TFLite baseline every run exports."""
    check_export_routes(loaded, routes=BASELINE_ROUTES)


def _activation(layer: LayerRecord, gap: ExportGap) -> str:
    activation = layer.config.get("activation")
    return f" with activation {activation!r}" if gap in ACTIVATION_GAPS.get(str(activation), ()) else ""


def _routes(gap: ExportGap, failing: list[str]) -> str:
    """Which of this run's routes fail, unless the layer fails in every TFLite mode anyway."""
    if gap.fails >= TFLITE_MODES:
        return ""
    tflite = [route for route in failing if route in TFLITE_MODES]
    parts = ([f"TFLite {' and '.join(tflite)}"] if tflite else []) + (["ONNX"] if "onnx" in failing else [])
    return f" -- in {' and '.join(parts)} export, which this run's profile and plan use"
