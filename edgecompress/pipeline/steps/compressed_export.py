"""Step 5: the fine-tuned model as TFLite, with the plan's float layers really kept float."""

from __future__ import annotations

from pathlib import Path

from edgecompress.pipeline.artifacts import Artifact
from edgecompress.pipeline.context import RunContext
from edgecompress.pipeline.steps.base import Step
from edgecompress.pipeline.steps.ptq_export import calibration_images
from edgecompress.run_folder import write_atomically


class CompressedExport(Step):
    name = "compressed-export"

    def applies(self, ctx: RunContext) -> bool:
        return ctx.prepared.plan.needs_training

    def run(self, ctx: RunContext) -> None:
        plan = ctx.prepared.plan
        made_from = {
            "name": plan.strategy,
            "trained": ctx.trained_key,
            "mode": plan.export_mode,
            "io_dtype": plan.io_dtype,
            "float_layers": list(plan.float_layers),
            "data": ctx.prepared.data_fingerprint,
            "seed": ctx.request.seed,
        }
        ctx.remember_artifact(
            plan.strategy, ".tflite", lambda path: _convert(ctx, path), made_from=made_from if ctx.trained_key else None
        )


def _convert(ctx: RunContext, path: Path) -> Artifact:
    from edgecompress._tf import quiet_native_output
    from edgecompress.export import to_tflite

    plan = ctx.prepared.plan
    ctx.say(f"Converting {plan.strategy}: {plan.export_mode}")
    with quiet_native_output((1, 2)):  # the exporter checks that the float layers really stay float
        blob = to_tflite(
            ctx.trained_model(),
            mode=plan.export_mode,
            representative=calibration_images(ctx),
            io_dtype=plan.io_dtype,
            float_layers=list(plan.float_layers),
        )
    write_atomically(path, blob)
    return Artifact(
        name=plan.strategy,
        kind=plan.export_mode,
        path=path,
        description=f"{plan.description} ({plan.export_mode} export)",
        extra={"trained_with": trained_with(ctx)},
    )


def trained_with(ctx: RunContext) -> str | None:
    """The loss that fine-tuned the model (training.json), for the report's artifact list."""
    from edgecompress.run_layout import LAYOUT

    path = ctx.folder.path / LAYOUT.training
    return ctx.folder.read_json(LAYOUT.training).get("loss") if path.is_file() else None
