"""Step 5: the fine-tuned model as TFLite, with the plan's float layers really kept float."""

from __future__ import annotations

from pathlib import Path

from edgecompress.pipeline.artifacts import Artifact
from edgecompress.pipeline.context import RunContext
from edgecompress.pipeline.steps.base import Step
from edgecompress.pipeline.steps.ptq_export import calibration_images
from edgecompress.run_folder import write_atomically
from edgecompress.run_layout import LAYOUT


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
        artifact = ctx.remember_artifact(
            plan.strategy, ".tflite", lambda path: _convert(ctx, path), made_from=made_from if ctx.trained_key else None
        )
        if _climbed(ctx, artifact):  # `strategy: auto` and the model measured over the budget: the next rung
            from edgecompress.pipeline.steps.finetune import FineTune

            FineTune().run(ctx)
            self.run(ctx)


def _climbed(ctx: RunContext, artifact: Artifact) -> bool:
    """Check the exported model's measured size against the budget (recorded in the plan); for an auto plan
    over it, move the run to the next harsher strategy and say why. True when the run moved on."""
    from edgecompress.budget import Budget, exported_resources
    from edgecompress.compression import next_rung

    prepared, plan = ctx.prepared, ctx.prepared.plan
    budget = Budget.of(prepared.profile)
    data = artifact.path.read_bytes()
    flash = None
    if budget.storage.measure in ("flash_bytes", "model_flash_bytes"):
        from edgecompress.micro.budget import model_flash_bytes, stored_class_names

        dataset, first_output = prepared.dataset, prepared.loaded.facts.outputs[0]
        names = stored_class_names(dataset.class_names, dataset.labelled, first_output.size)
        flash = model_flash_bytes(data, names)  # with the names the firmware stores beside the model
    measured = exported_resources(len(data), flash)
    fits = budget.fits(measured)
    plan.measured = {"strategy": plan.strategy, "bytes": measured.get(budget.storage.measure), "fits": fits}
    if fits is not False or not plan.auto:
        ctx.folder.write_json(LAYOUT.plan, plan.to_dict())
        return False
    higher = next_rung(prepared.profile, prepared.loaded.model, prepared.significance, plan, measured)
    shortfall = "; ".join(budget.shortfalls(measured))
    if higher is None:
        ctx.say(f"{plan.strategy} measures over the budget after export ({shortfall}) and no harsher strategy is left")
        ctx.folder.write_json(LAYOUT.plan, plan.to_dict())
        return False
    ctx.say(f"{plan.strategy} measures over the budget after export ({shortfall}): trying {higher.strategy}")
    ctx.artifacts.remove(artifact)
    prepared.plan = higher
    ctx.folder.write_json(LAYOUT.plan, higher.to_dict())
    return True


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
