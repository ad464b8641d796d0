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
        trained = ctx.folder.remember(f"trained:{name}", lambda: _train(ctx, path), files=[path])
        ctx.trained_model_file = path
        ctx.trained_key = trained.get("key", "")


def _train(ctx: RunContext, path: Any) -> dict[str, Any]:
    from edgecompress._tf import quiet_native_output
    from edgecompress.compression import apply_plan
    from edgecompress.pipeline.prepare import finetuning_settings
    from edgecompress.pipeline.reuse import KerasStageStore

    prepared = ctx.prepared
    settings = finetuning_settings(ctx.request, prepared.profile, say=ctx.say)
    ctx.say(f"Fine-tuning '{prepared.plan.strategy}' (seed {settings.seed})")
    origin = prepared.cache.key("fine-tune", model=prepared.loaded.sha256, data=prepared.data_fingerprint)
    with prepared.task(f"Fine-tuning '{prepared.plan.strategy}'"), quiet_native_output():
        compressed = apply_plan(prepared.plan, prepared.loaded.model, prepared.dataset, settings=settings,
                                store=KerasStageStore(prepared.cache, ctx.say), origin=origin)
    compressed.model.save(path)
    ctx.trained = compressed.model
    trained = {"stages": compressed.stages, "kernel_values": compressed.kernel_values, "key": compressed.key}
    ctx.folder.write_json(LAYOUT.training, trained)
    return trained
