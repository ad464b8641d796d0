"""Step 6: the fine-tuned model as ONNX, checked against Keras in onnxruntime."""

from __future__ import annotations

from pathlib import Path

from edgecompress.pipeline.artifacts import Artifact
from edgecompress.pipeline.context import RunContext
from edgecompress.pipeline.steps.base import Step
from edgecompress.pipeline.steps.compressed_export import trained_with
from edgecompress.pipeline.steps.ptq_export import calibration_images

#: evaluation images the ONNX file is checked on against Keras
VERIFY_SAMPLES = 256


class OnnxExport(Step):
    name = "onnx-export"

    def applies(self, ctx: RunContext) -> bool:
        return ctx.request.onnx and ctx.prepared.plan.needs_training

    def run(self, ctx: RunContext) -> None:
        plan = ctx.prepared.plan
        made_from = {
            "name": plan.strategy,
            "trained": ctx.trained_key,
            "data": ctx.prepared.data_fingerprint,
            "mode": plan.export_mode,
            "float_layers": list(plan.float_layers),
            "seed": ctx.request.seed,
        }
        ctx.remember_artifact(
            plan.strategy, ".onnx", lambda path: _export(ctx, path), made_from=made_from if ctx.trained_key else None
        )


def _export(ctx: RunContext, path: Path) -> Artifact:
    """The ONNX twin in the plan's precision: int8 plans get onnxruntime's static QDQ quantization,
    calibrated on the same images as the TFLite export; fp16 plans an fp16 graph."""
    from edgecompress._tf import quiet_native_output
    from edgecompress.export import verify_onnx
    from edgecompress.export.onnx_quant import ONNX_DESCRIPTIONS, export_onnx

    plan = ctx.prepared.plan
    ctx.say(f"Exporting {plan.strategy} to ONNX ({plan.export_mode}) and checking it against Keras in onnxruntime")
    with ctx.prepared.task(f"Exporting {plan.strategy} to ONNX"), quiet_native_output():
        model = ctx.trained_model()
        mode = export_onnx(
            model, path, mode=plan.export_mode, calibration=calibration_images(ctx), float_layers=plan.float_layers
        )
        check = verify_onnx(model, path, ctx.prepared.dataset.x_test[:VERIFY_SAMPLES])
    return Artifact(
        name=f"{plan.strategy}-onnx",
        kind=mode,
        description=f"{plan.description} ({ONNX_DESCRIPTIONS[mode]})",
        path=path,
        extra={"onnx_verification": check, "trained_with": trained_with(ctx)},
    )
