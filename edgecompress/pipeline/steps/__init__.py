"""The steps of `edgecompress deploy`, in the order they run (the loop is in pipeline/run.py).

Each step is one module; a step that does not apply to a run (no fine-tuning in a PTQ-only
plan, no firmware for a Linux board) is skipped. New steps slot into `STEPS`.
"""

from __future__ import annotations

from edgecompress.pipeline.steps.analysis import Analysis
from edgecompress.pipeline.steps.base import Step
from edgecompress.pipeline.steps.compressed_export import CompressedExport
from edgecompress.pipeline.steps.finetune import FineTune
from edgecompress.pipeline.steps.measure import Measure
from edgecompress.pipeline.steps.micro_build import MicroBuild
from edgecompress.pipeline.steps.onnx_export import OnnxExport
from edgecompress.pipeline.steps.ptq_export import PtqExport
from edgecompress.pipeline.steps.reference import KerasReference
from edgecompress.pipeline.steps.report import Report
from edgecompress.pipeline.steps.ship import Ship

STEPS: tuple[Step, ...] = (
    Analysis(),          # significance.json, id_profile.png, plan.json
    KerasReference(),    # the Keras model on the eval set, scored like a board
    PtqExport(),         # baseline-fp32.tflite and the profile's ptq-*.tflite
    FineTune(),          # the plan's compression, fine-tuned (artifacts/<strategy>.keras)
    CompressedExport(),  # artifacts/<strategy>.tflite
    OnnxExport(),        # artifacts/<strategy>.onnx, verified in onnxruntime
    MicroBuild(),        # micro/: TFLite Micro firmware (microcontroller profiles)
    Measure(),           # measurements/: every artifact on every target
    Report(),            # report.json (with the verdict), report.md, report.html, figures/
    Ship(),              # ship/: the recommended artifact, labels, input spec, runner, manifest
)  # fmt: skip

__all__ = ["STEPS", "Step"]
