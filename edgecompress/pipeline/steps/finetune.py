"""Step 4: fine-tune the model as the plan says (clustering, CQAT, QAT, low-bit...)."""

from __future__ import annotations

from typing import Any

from edgecompress.pipeline.context import RunContext
from edgecompress.pipeline.steps.base import Step
from edgecompress.run_layout import LAYOUT


class FineTune(Step):
    name = "fine-tune"

    def applies(self, ctx: RunContext) -> bool:
        return ctx.prepared.plan.needs_training

    def run(self, ctx: RunContext) -> None:
        name = ctx.prepared.plan.strategy
        path = ctx.artifact_path(f"{name}.keras")  # the fine-tuned model, so --resume need not retrain
        ctx.folder.remember(f"trained:{name}", lambda: _train(ctx, path), files=[path])
        ctx.trained_model_file = path


def _train(ctx: RunContext, path: Any) -> dict[str, Any]:
    from edgecompress._tf import quiet_native_output
    from edgecompress.compression import DEFAULT_EPOCHS, FineTuning, apply_plan

    plan, request = ctx.prepared.plan, ctx.request
    epochs = request.epochs or DEFAULT_EPOCHS
    ctx.say(f"Fine-tuning '{plan.strategy}' ({epochs} epochs per stage max, early stopping, seed {request.seed})")
    with ctx.prepared.task(f"Fine-tuning '{plan.strategy}'"), quiet_native_output():
        compressed = apply_plan(plan, ctx.prepared.loaded.model, ctx.prepared.dataset,
                                settings=FineTuning(epochs=epochs, seed=request.seed))
    compressed.model.save(path)
    ctx.trained = compressed.model
    trained = {"stages": compressed.stages, "kernel_values": compressed.kernel_values}
    ctx.folder.write_json(LAYOUT.training, trained)
    return trained
