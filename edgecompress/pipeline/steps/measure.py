"""Step 8: every artifact on every target, then every board's artifacts timed against each other in rounds.

First each artifact is measured on its own (accuracy, memory, load time, the accelerator that
ran it); then each board times all its artifacts together in interleaved rounds
(targets.rounds), which is where every latency figure of the report comes from. Each finished
(artifact, board) pair and each board's rounds are kept for --resume.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from edgecompress.errors import EdgeCompressError, TargetError
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
        if not failures:
            failures += _time_in_rounds(ctx)
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


def _per_round(total: int, rounds: int) -> int:
    return math.ceil(total / rounds) if total else 0


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
    timed = artifact.path.suffix in (".tflite", ".onnx")
    how = "accuracy, memory and load time" if timed else "every evaluation image; executed instructions counted"
    if all(board not in ctx.prepared.targets for board in pending):
        how = "every evaluation image on the host runner: the emulated board's accuracy reference, not timed"
    ctx.say(f"Measuring {artifact.name} on {names} ({how})")
    job = MeasureJob(
        model=artifact.path,
        eval_data=ensure_eval_npz(ctx),
        # its own latency is a first look: the report's latency figures come from the rounds
        warmup=_per_round(request.warmup, request.rounds),
        runs=max(1, _per_round(request.runs, request.rounds)),
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
        folder.write_json(
            f"{stem}.json", {"target": outcome.target, "device": outcome.measurement.device, "result": result}
        )
        if outcome.measurement.log:
            folder.sub(f"{stem}.log").write_text(outcome.measurement.log)
        folder.record(_key(artifact, outcome.target), f"{stem}.json")
    return failures


def _timed_artifacts(ctx: RunContext) -> list[Artifact]:
    """The artifacts a board times (model files, not firmware), the baseline first: it gets the noise pair."""
    timed = [a for a in ctx.artifacts if a.path.suffix in (".tflite", ".onnx")]
    return sorted(timed, key=lambda a: a.name != BASELINE)


def _time_in_rounds(ctx: RunContext) -> list[str]:
    """Every board with no record of its rounds times its artifacts against each other; return what failed."""
    from edgecompress.targets.fleet import time_fleet_in_rounds
    from edgecompress.targets.measure_options import rounds_options
    from edgecompress.targets.rounds import RoundsJob

    request, folder = ctx.request, ctx.folder
    artifacts = _timed_artifacts(ctx)
    boards = [
        t
        for t in ctx.prepared.targets
        if artifacts and all(t.accepts(a.path) for a in artifacts) and not folder.is_done(f"rounds@{t.name}")
    ]
    if not boards:
        return []
    job = RoundsJob.split(
        [a.path for a in artifacts],
        ensure_eval_npz(ctx),
        rounds=request.rounds,
        warmup=request.warmup,
        runs=request.runs,
        threads=request.threads,
        cooldown_s=request.cooldown,
        extra_args=rounds_options(ctx.prepared.profile, threads=request.threads),
    )
    names = ", ".join(t.name for t in boards)
    ctx.say(
        f"Timing {len(artifacts)} artifacts on {names} in {job.rounds} interleaved rounds "
        f"({job.warmup} warm-up + {job.runs} timed runs each per round, the order rotated, {artifacts[0].name} twice)"
    )
    with ctx.prepared.task(f"Timing in rounds on {names}"):
        found = time_fleet_in_rounds(boards, job)
    failures = []
    for board, value in found.items():
        if isinstance(value, EdgeCompressError):
            failures.append(f"timing rounds on {board}: {value}")
        elif value is not None:
            _keep_rounds(ctx, board, [a.name for a in artifacts], value)
    return failures


def _keep_rounds(ctx: RunContext, board: str, names: list[str], measurement: Any) -> None:
    """measurements/rounds@<board>.json as the board sent it, and each artifact's samples per round."""
    from edgecompress.decision.timing import BoardTiming

    folder, stem = ctx.folder, LAYOUT.rounds_stem(board)
    saved = {"target": board, "artifacts": names, "device": measurement.device, "result": measurement.result}
    folder.write_json(f"{stem}.json", saved)
    if measurement.log:
        folder.sub(f"{stem}.log").write_text(measurement.log)
    timing = BoardTiming.from_file(saved)
    for name in names:
        rounds = {"unit": "ms", "kind": "rounds", "threads": timing.threads, "rounds": timing.rounds(name)}
        folder.write_json(f"{LAYOUT.measurement_stem(name, board)}.samples.json", rounds)
    folder.record(f"rounds@{board}", f"{stem}.json")


def _entry(ctx: RunContext, artifact: Artifact, target_name: str) -> dict[str, Any]:
    from edgecompress.reporting.schema import measurement_entry

    stem = LAYOUT.measurement_stem(artifact.name, target_name)
    saved = ctx.folder.read_json(f"{stem}.json")
    samples = f"{stem}.samples.json" if (ctx.folder.path / f"{stem}.samples.json").is_file() else None
    return measurement_entry(artifact.name, target_name, saved["result"], samples)
