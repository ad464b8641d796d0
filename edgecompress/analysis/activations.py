"""Flattened representations of the data at the input and after every Conv/Dense layer.

The intrinsic-dimension profile is measured on the whole output of a layer (O x W x H for a
convolution, not per channel), because that is the representation the next layer sees. The
outputs of early convolutions are tens of thousands of values per sample, so layers are
extracted in groups whose arrays fit a memory budget, and each group is filled batch by
batch into preallocated float32 arrays instead of concatenating per-batch results.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecompress._tf import keras
from edgecompress.errors import DataError, ModelError

#: Layers whose output is probed: every layer with a weight matrix the compressor may quantise.
PROBED_LAYER_TYPES = (
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "SeparableConv1D",
    "SeparableConv2D",
    "Dense",
)

#: Name given to the input representation in profiles.
INPUT_NAME = "input"

#: Activation arrays held at once while extracting (all layers of a group together).
DEFAULT_MAX_BYTES = 1 << 30


@dataclass(frozen=True)
class Representation:
    """One place in the network where the data is measured."""

    name: str
    class_name: str
    output_shape: tuple[int, ...]  # per sample, without the batch dimension
    layer: Any = None  # the tf-keras layer; None for the input

    @property
    def n_features(self) -> int:
        return int(np.prod(self.output_shape))


def probed_layers(model: Any) -> list[Representation]:
    """The model's Conv/Dense layers, in the model's own order."""
    layers_module = keras().layers
    probed_types = tuple(getattr(layers_module, name) for name in PROBED_LAYER_TYPES if hasattr(layers_module, name))
    found = [
        Representation(layer.name, type(layer).__name__, _per_sample_shape(layer.output_shape, layer.name), layer)
        for layer in model.layers
        if isinstance(layer, probed_types)
    ]
    if not found:
        nested = [layer.name for layer in model.layers if hasattr(layer, "layers")]
        raise ModelError(
            f"The model {model.name!r} has no Conv or Dense layer at its top level"
            + (f" (it nests the sub-model(s) {', '.join(nested)})." if nested else "."),
            "Layer significance measures Conv/Dense outputs; pass a model whose Conv/Dense layers are "
            "its own, e.g. rebuild a nested Sequential as one flat model.",
        )
    return found


def input_representation(model: Any) -> Representation:
    if not getattr(model, "inputs", None):
        raise ModelError(
            f"The model {model.name!r} has not been built, so its layers' output sizes are unknown.",
            "Build it with a fixed input shape first (keras.Input(...) as its first layer, or model.build(...)).",
        )
    if len(model.inputs) != 1:
        raise ModelError(
            f"The model {model.name!r} has {len(model.inputs)} inputs; layer significance supports one.",
            "Analyse a single-input model.",
        )
    return Representation(INPUT_NAME, "InputLayer", _per_sample_shape(model.inputs[0].shape, INPUT_NAME))


def check_input_fits(model: Any, x: np.ndarray) -> None:
    expected = input_representation(model).output_shape
    if tuple(x.shape[1:]) != expected:
        raise DataError(
            f"The samples have shape {tuple(x.shape[1:])} but the model {model.name!r} expects {expected}.",
            "Load the data with the model's input shape (and the scaling it was trained with).",
        )


def iter_activations(
    model: Any,
    x: np.ndarray,
    representations: list[Representation],
    *,
    batch_size: int = 256,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Iterator[tuple[Representation, np.ndarray]]:
    """Yield (layer, float32 array of shape (len(x), n_features)) for the given layers, in order.

    Layers are grouped so that
    one group's arrays stay under `max_bytes` (a single wider layer forms its own group),
    and the model runs once per group, so memory stays bounded at some extra inference cost.
    """
    k = keras()
    for group in _groups([r for r in representations if r.layer is not None], len(x), max_bytes):
        sub_model = k.Model(inputs=model.inputs, outputs=[r.layer.output for r in group])
        arrays = [np.empty((len(x), r.n_features), dtype=np.float32) for r in group]
        for start in range(0, len(x), batch_size):
            outputs = sub_model.predict_on_batch(x[start : start + batch_size])
            outputs = outputs if isinstance(outputs, list) else [outputs]
            for array, output in zip(arrays, outputs):
                array[start : start + batch_size] = np.asarray(output).reshape(len(output), -1)
        del sub_model
        yield from zip(group, arrays)


def flat_input(x: np.ndarray) -> np.ndarray:
    """The input representation: each sample as one float32 vector (a view when x is float32)."""
    return np.asarray(x, dtype=np.float32).reshape(len(x), -1)


def _groups(layers: list[Representation], n_samples: int, max_bytes: int) -> Iterator[list[Representation]]:
    group: list[Representation] = []
    used = 0
    for representation in layers:
        size = 4 * n_samples * representation.n_features
        if group and used + size > max_bytes:
            yield group
            group, used = [], 0
        group.append(representation)
        used += size
    if group:
        yield group


def _per_sample_shape(shape: Any, name: str) -> tuple[int, ...]:
    if isinstance(shape, list):
        raise ModelError(
            f"The layer {name!r} has several outputs; layer significance needs one per layer.",
            "Analyse a model whose Conv/Dense layers each have a single output.",
        )
    per_sample = tuple(shape)[1:]
    if any(dim is None for dim in per_sample):
        raise ModelError(
            f"The layer {name!r} has an output shape {tuple(shape)} with unknown sizes.",
            "Give the model a fixed input shape (e.g. keras.Input((32, 32, 3))) so every layer's size is known.",
        )
    return tuple(int(dim) for dim in per_sample)
