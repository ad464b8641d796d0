"""Step 7 (microcontroller profiles): TFLite Micro firmware from the compressed int8 artifact, and from the
profile's post-training int8 model beside it, so both are measured as firmware and judged the same way."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from typing import Any

from edgecompress.errors import EdgeCompressError
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

        firmwares = []
        for source, role in _sources(ctx):
            entry = ctx.folder.remember(f"micro:{source.name}", partial(_build, ctx, source, role))
            firmwares.append(entry)
            found = firmware_artifact(ctx.folder.path, entry)  # measured by the emulated boards only
            if found:
                ctx.add_artifact(Artifact(**found))
        ctx.micro = {"firmwares": firmwares}


def _sources(ctx: RunContext) -> list[tuple[Artifact, str]]:
    """The int8 .tflite files to build firmware from: the final (compressed) one, then the post-training one."""
    int8 = [a for a in ctx.artifacts if a.path.suffix == ".tflite" and a.kind == "int8"]
    final = int8[-1]
    ptq = next((a for a in int8 if a.name == f"ptq-{ctx.prepared.profile.compression.ptq}" and a is not final), None)
    return [(final, "compressed")] + ([(ptq, "post-training")] if ptq is not None else [])


def _build(ctx: RunContext, source: Artifact, role: str) -> dict[str, Any]:
    from edgecompress.micro import build_micro
    from edgecompress.micro.emulated import ROLES, firmware_name, firmware_options

    ctx.say(
        f"Building TFLite Micro firmware from {source.name} ({ROLES[role]}): measuring the arena in the TFLM "
        "interpreter, compressing tables, compiling and linking the firmware"
    )
    run_root = ctx.folder.path.resolve()
    head = {
        "source": source.name,
        "artifact": source.name,
        "firmware_artifact": firmware_name(source.name),
        "role": role,
    }
    try:
        with ctx.prepared.task(f"TFLite Micro build of {source.name}"):
            build = build_micro(
                source.path.read_bytes(),
                profile=ctx.prepared.profile,
                eval_npz=ensure_eval_npz(ctx),
                out_dir=run_root / LAYOUT.micro / safe_name(source.name),
                name=safe_name(source.name).replace("-", "_").replace(".", "_"),
                firmware_options=replace(
                    firmware_options(ctx.request.targets, ctx.request.micro), keep_over_budget=role == "post-training"
                ),
            )
    except EdgeCompressError as error:
        if role == "compressed":
            raise
        ctx.say(f"No firmware of {source.name}: {error.problem}")
        return {**head, "built": False, "reason": error.problem}
    # paths relative to the run folder: it is renamed when the run finishes
    document = {**head, "built": True, **build.to_dict()}
    return json.loads(json.dumps(document, default=str).replace(f"{run_root}/", ""))
