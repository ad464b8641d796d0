"""Step 7 (microcontroller profiles): TFLite Micro firmware from the final int8 artifact."""

from __future__ import annotations

import json
from typing import Any

from edgecompress.pipeline.artifacts import Artifact
from edgecompress.pipeline.context import RunContext
from edgecompress.pipeline.steps.base import Step
from edgecompress.pipeline.steps.measure import ensure_eval_npz
from edgecompress.run_layout import LAYOUT, safe_name


class MicroBuild(Step):
    name = "micro-build"

    def applies(self, ctx: RunContext) -> bool:
        return ctx.prepared.profile.device_class == "microcontroller"

    def run(self, ctx: RunContext) -> None:
        from edgecompress.micro.emulated import firmware_artifact

        ctx.micro = ctx.folder.remember("micro", lambda: _build(ctx))
        found = firmware_artifact(ctx.folder.path, ctx.micro)  # measured by the emulated boards only
        if found:
            ctx.add_artifact(Artifact(**found))


def _build(ctx: RunContext) -> dict[str, Any]:
    from edgecompress.micro import build_micro
    from edgecompress.micro.emulated import firmware_options

    final = next(a for a in reversed(ctx.artifacts) if a.path.suffix == ".tflite" and a.kind == "int8")
    ctx.say(
        f"Building TFLite Micro firmware from {final.name}: measuring the arena in the TFLM interpreter, compressing tables, "
        "compiling and linking the firmware"
    )
    run_root = ctx.folder.path.resolve()
    with ctx.prepared.task(f"TFLite Micro build of {final.name}"):
        build = build_micro(
            final.path.read_bytes(),
            profile=ctx.prepared.profile,
            eval_npz=ensure_eval_npz(ctx),
            out_dir=run_root / LAYOUT.micro,
            name=safe_name(final.name).replace("-", "_"),
            firmware_options=firmware_options(ctx.request.targets, ctx.request.micro),
        )
    # paths relative to the run folder: it is renamed when the run finishes
    return json.loads(json.dumps({"artifact": final.name, **build.to_dict()}, default=str).replace(f"{run_root}/", ""))
