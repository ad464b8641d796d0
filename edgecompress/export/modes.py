"""The post-training conversion modes, as data.

Each mode is one row: how the TFLite converter is configured, why a user would pick it,
which input/output dtypes it can expose, and how far its outputs may drift from Keras
before `verify_tflite` calls the artifact broken. Adding a mode means adding a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edgecompress.errors import ProfileError

#: How `to_tflite(float_layers=...)` keeps named layers float32 in a mode:
#: 'unquantized' -- the mode quantizes nothing, so every layer already is;
#: 'denylist'    -- TensorFlow's QuantizationDebugger leaves the layers' ops out of int8;
#: 'impossible'  -- TensorFlow has no way to exempt a layer, so asking is an error (a layer
#:                  reported as float32 but stored in fewer bits would be a false report).
FloatLayerRoute = Literal["unquantized", "denylist", "impossible"]


@dataclass(frozen=True)
class PtqMode:
    """How to convert for one mode; TF names are strings so this module never imports TF."""

    name: str
    why: str
    optimize: bool  # converter.optimizations = [Optimize.DEFAULT]
    supported_types: tuple[str, ...]  # tf dtype names for target_spec.supported_types
    ops_set: str | None  # tf.lite.OpsSet member for target_spec.supported_ops
    needs_representative: bool
    io_dtypes: tuple[str, ...]  # first one is the default
    #: allowed max |tflite - keras|, as a fraction of max(1, peak |keras output|)
    relative_tolerance: float
    float_layers: FloatLayerRoute = "impossible"


_MODES = (
    PtqMode(
        "float32",
        why="the Keras maths unchanged: the accuracy reference every other artifact is measured against",
        optimize=False,
        supported_types=(),
        ops_set=None,
        needs_representative=False,
        io_dtypes=("float32",),
        relative_tolerance=1e-4,
        float_layers="unquantized",
    ),
    PtqMode(
        "fp16",
        why="halves the file at almost no accuracy cost; for GPUs/NPUs that run fp16 but not int8",
        optimize=True,
        supported_types=("float16",),
        ops_set=None,
        needs_representative=False,
        io_dtypes=("float32",),
        relative_tolerance=1e-2,
    ),
    PtqMode(
        "dynamic",
        why="int8 weights, float activations: ~4x smaller weights with no calibration data (CPU only)",
        optimize=True,
        supported_types=(),
        ops_set=None,
        needs_representative=False,
        io_dtypes=("float32",),
        relative_tolerance=3e-2,
    ),
    PtqMode(
        "int8",
        why="full-integer: what int8-only accelerators and microcontrollers require; needs calibration data",
        optimize=True,
        supported_types=(),
        ops_set="TFLITE_BUILTINS_INT8",
        needs_representative=True,
        io_dtypes=("float32", "int8", "uint8"),
        relative_tolerance=1e-1,
        float_layers="denylist",
    ),
    PtqMode(
        "int16x8",
        why="int8 weights with int16 activations: recovers accuracy int8 activations lose, at 2x activation memory",
        optimize=True,
        supported_types=(),
        ops_set="EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8",
        needs_representative=True,
        io_dtypes=("float32", "int16"),
        relative_tolerance=2e-2,
    ),
)

PTQ_MODE_SPECS: dict[str, PtqMode] = {mode.name: mode for mode in _MODES}
PTQ_MODES: tuple[str, ...] = tuple(PTQ_MODE_SPECS)


def ptq_mode(name: str) -> PtqMode:
    """Look a mode up by name, failing with the list of valid names."""
    try:
        return PTQ_MODE_SPECS[name]
    except KeyError:
        raise ProfileError(
            f"Unknown TFLite conversion mode '{name}'.", f"Use one of: {', '.join(PTQ_MODES)}."
        ) from None


def default_tolerance(mode: str, reference_peak: float) -> float:
    """Absolute tolerance for `mode`, scaled by output magnitude so logits and softmax both work."""
    return ptq_mode(mode).relative_tolerance * max(1.0, float(reference_peak))
