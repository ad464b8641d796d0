"""Step 8: every artifact on every target; each finished (artifact, board) pair is kept for --resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecompress.errors import TargetError
from edgecompress.pipeline.artifacts import BASELINE, Artifact
from edgecompress.pipeline.context import RunContext
from edgecompress.pipeline.steps.base import Step
from edgecompress.run_layout import LAYOUT


def ensure_eval_npz(ctx: RunContext) -> Path:
    """The evaluation set exactly as every device sees it (written once per run)."""
    from edgecompress.data import write_eval_npz

    path = ctx.folder.path / LAYOUT.eval
    if not path.exists():
        write_eval_npz(ctx.prepared.dataset, path, output_kind=ctx.prepared.loaded.output_kind)
    return path


class Measure(Step):
    name = "measure"

    def run(self, ctx: RunContext) -> None:
        ensure_eval_npz(
            ctx
        )  # the verdict's statistics and ship/ read it, even when every measurement was recorded before
        failures: list[str] = []
        for artifact in ctx.artifacts:
            failures += _measure_artifact(ctx, artifact)
        if failures:
            raise TargetError(
                "Some measurements could not be completed: " + "; ".join(failures),
                "Fix the board(s) named above; every measurement that did finish is kept.",
            )
        ctx.measurements = [
            _entry(ctx, artifact, target.name)
            for target in ctx.prepared.targets
            for artifact in ctx.artifacts
            if _measured_by(target, artifact) is not None
        ]


def _measured_by(target: Any, artifact: Artifact) -> Any:
    """Who measures `artifact` for `target`: the target itself when it runs it; for the baseline on a
    target that cannot (an emulated microcontroller), its reference (the host runner); else None."""
    if target.accepts(artifact.path):
        return target
    reference = target.reference() if artifact.name == BASELINE else None
    return reference if reference is not None and reference.accepts(artifact.path) else None


def _key(artifact: Artifact, target_name: str) -> str:
    return f"measure:{artifact.name}@{target_name}"


def _measure_artifact(ctx: RunContext, artifact: Artifact) -> list[str]:
    """Measure one artifact on the boards that have no record of it; return what failed."""
    from edgecompress.targets import MeasureJob
    from edgecompress.targets.fleet import measure_fleet
    from edgecompress.targets.measure_options import runner_options

    request, folder = ctx.request, ctx.folder
    boards = [_measured_by(t, artifact) for t in ctx.prepared.targets]
    pending = [b for b in boards if b is not None and not folder.is_done(_key(artifact, b.name))]
    if not pending:
        return []
    names = ", ".join(t.name for t in pending)
    how = (
        "every evaluation image; executed instructions counted"
        if artifact.path.suffix == ".bin"
        else f"{request.warmup} warm-up + {request.runs} timed runs"
    )
    if all(board not in ctx.prepared.targets for board in pending):
        how = "every evaluation image on the host runner: the emulated board's accuracy reference, not timed"
    ctx.say(f"Measuring {artifact.name} on {names} ({how})")
    job = MeasureJob(
        model=artifact.path,
        eval_data=ensure_eval_npz(ctx),
        warmup=request.warmup,
        runs=request.runs,
        threads=request.threads,
        extra_args=runner_options(ctx.prepared.profile, threads=request.threads),
    )
    with ctx.prepared.task(f"Measuring {artifact.name} on {names}"):
        fleet = measure_fleet(pending, job)
    failures = []
    for outcome in fleet.boards:
        if outcome.measurement is None:
            failures.append(f"{artifact.name} on {outcome.target}: {outcome.error}")
            continue
        stem = LAYOUT.measurement_stem(artifact.name, outcome.target)
        result = outcome.measurement.result
        folder.write_json(f"{stem}.samples.json", result.get("latency_ms", {}).get("samples") or [])
        folder.write_json(
            f"{stem}.json", {"target": outcome.target, "device": outcome.measurement.device, "result": result}
        )
        if outcome.measurement.log:
            folder.sub(f"{stem}.log").write_text(outcome.measurement.log)
        folder.record(_key(artifact, outcome.target), f"{stem}.json")
    return failures


def _entry(ctx: RunContext, artifact: Artifact, target_name: str) -> dict[str, Any]:
    from edgecompress.reporting.schema import measurement_entry

    stem = LAYOUT.measurement_stem(artifact.name, target_name)
    saved = ctx.folder.read_json(f"{stem}.json")
    return measurement_entry(artifact.name, target_name, saved["result"], f"{stem}.samples.json")
