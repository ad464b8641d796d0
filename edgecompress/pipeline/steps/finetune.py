"""Step 4: fine-tune the model as the plan says (clustering, CQAT, QAT, low-bit...).

Each fine-tuning stage is kept in the run folder (artifacts/<strategy>.stages/, as weights and
a training summary) and in the cache across runs; a resumed run rebuilds the trained model
from the folder without training again.
"""

from __future__ import annotations

from typing import Any

from edgecompress.pipeline.context import RunContext
from edgecompress.pipeline.steps.base import Step
from edgecompress.run_layout import LAYOUT
from edgecompress.training_device import placed, training_device


class FineTune(Step):
    name = "fine-tune"

    def applies(self, ctx: RunContext) -> bool:
        return ctx.prepared.plan.needs_training

    def run(self, ctx: RunContext) -> None:
        stages = ctx.artifact_path(f"{ctx.prepared.plan.strategy}.stages")
        trained = ctx.folder.remember(f"trained:{ctx.prepared.plan.strategy}", lambda: _train(ctx), files=[stages])
        ctx.trained_key = trained.get("key", "")
        ctx.rebuild_trained = lambda: fine_tuned(ctx, say=False).model


def fine_tuned(ctx: RunContext, *, say: bool) -> Any:
    """apply_plan with the run's stage stores: trains what neither the run folder nor the cache holds."""
    from edgecompress._tf import quiet_native_output
    from edgecompress.compression import apply_plan
    from edgecompress.pipeline.prepare import finetuning_settings
    from edgecompress.pipeline.reuse import CachedStageStore, FolderStageStore
    from edgecompress.tasks import task_named
    from edgecompress.tasks.objectives import objective_for

    prepared = ctx.prepared
    settings = finetuning_settings(ctx.request, prepared.profile, say=ctx.say if say else None)
    store = CachedStageStore(
        prepared.cache, FolderStageStore(ctx.artifact_path(f"{prepared.plan.strategy}.stages")), ctx.say
    )
    task = task_named(prepared.dataset.task)
    with quiet_native_output():
        objective = objective_for(
            task, prepared.loaded.model, prepared.loaded.facts, prepared.dataset, distill=bool(ctx.request.distill)
        )
    if say:
        ctx.say(f"Fine-tuning objective: {objective.words}")
    device = prepared.device or training_device(ctx.request.device)
    # a stage trained on a GPU differs in its last bits from one trained on the CPU: cached apart
    on_gpu = {"device": "gpu"} if device.used == "gpu" else {}
    origin = prepared.cache.key(
        "fine-tune", model=prepared.loaded.sha256, data=prepared.data_fingerprint, objective=objective.key(), **on_gpu
    )
    with quiet_native_output(), placed(device):
        return apply_plan(
            prepared.plan,
            prepared.loaded.model,
            prepared.dataset,
            settings=settings,
            store=store,
            origin=origin,
            objective=objective,
        )


def _train(ctx: RunContext) -> dict[str, Any]:
    plan = ctx.prepared.plan
    ctx.say(f"Fine-tuning '{plan.strategy}' (seed {ctx.request.seed})")
    with ctx.prepared.task(f"Fine-tuning '{plan.strategy}'"):
        compressed = fine_tuned(ctx, say=True)
    ctx.trained = compressed.model
    losses = sorted({stage["loss"] for stage in compressed.stages if stage.get("loss")})
    trained = {
        "stages": compressed.stages,
        "kernel_values": compressed.kernel_values,
        "key": compressed.key,
        "loss": "; ".join(losses) or None,
        "device": (ctx.prepared.device or training_device(ctx.request.device)).to_dict(),
    }
    ctx.folder.write_json(LAYOUT.training, trained)
    return trained
