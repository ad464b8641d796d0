"""Step 3: the float32 baseline and the profile's post-training quantized model, as TFLite."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

from edgecompress.pipeline.artifacts import BASELINE, PTQ_DESCRIPTIONS, Artifact
from edgecompress.pipeline.context import RunContext
from edgecompress.pipeline.steps.base import Step
from edgecompress.run_folder import write_atomically

#: how many training images calibrate full-integer quantization
CALIBRATION_SAMPLES = 200


def calibration_images(ctx: RunContext) -> np.ndarray:
    """The seeded training images every integer export (TFLite and ONNX) is calibrated on."""
    data = ctx.prepared.dataset
    rng = np.random.default_rng(ctx.request.seed)
    return data.x_train[rng.permutation(len(data.x_train))[:CALIBRATION_SAMPLES]]


class PtqExport(Step):
    name = "ptq-export"

    def run(self, ctx: RunContext) -> None:
        compression = ctx.prepared.profile.compression
        exports = [_Export(BASELINE, "float32", "float32", PTQ_DESCRIPTIONS["float32"] + " (baseline)")]
        if compression.ptq != "float32":
            io = compression.io_dtype if compression.ptq == "int8" else "float32"
            exports.append(_Export(f"ptq-{compression.ptq}", compression.ptq, io, PTQ_DESCRIPTIONS[compression.ptq]))
        prepared = ctx.prepared
        for export in exports:
            made_from = {
                "name": export.name,
                "mode": export.mode,
                "io_dtype": export.io_dtype,
                "model": prepared.loaded.sha256,
                "data": prepared.data_fingerprint,
                "seed": ctx.request.seed,
                "calibration": CALIBRATION_SAMPLES,
            }
            ctx.remember_artifact(export.name, ".tflite", partial(_convert, ctx, export), made_from=made_from)


class _Export(NamedTuple):
    name: str
    mode: str
    io_dtype: str
    description: str


def _convert(ctx: RunContext, export: _Export, path: Path) -> Artifact:
    from edgecompress._tf import quiet_native_output
    from edgecompress.export import to_tflite

    ctx.say(f"Converting {export.name}: {export.description}")
    with quiet_native_output((1, 2)):  # the converter prints MLIR notices; real failures come back as ModelError
        blob = to_tflite(
            ctx.prepared.loaded.model,
            mode=export.mode,
            representative=calibration_images(ctx),
            io_dtype=export.io_dtype,
        )
    write_atomically(path, blob)
    return Artifact(name=export.name, kind=export.mode, description=export.description, path=path)
