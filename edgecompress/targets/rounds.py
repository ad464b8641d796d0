"""Timing every artifact of a board against each other, in interleaved rounds.

Artifacts timed one after another are at the mercy of the board: one that heats up, throttles
or gets a background job half-way makes whichever artifact came later look slower. So after
each artifact's own measurement (accuracy, memory, load time), a board times all of its
artifacts together: `rounds` rounds, each artifact once per round with a few warm-up runs
and its share of the timed runs, the order rotated every round, the baseline twice per
round (half a round apart) so the board's own timing noise is measured alongside. The
runner does it in one process (`--rounds`, firmware/runner/README.md); this module says what
to ask for, and lets through only what passes
targets.rounds_check.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgecompress.targets.base import Measurement, Target

#: seconds of idle and of inferring power per artifact and round, on boards that expose power
ENERGY_WINDOW_S = 0.5


@dataclass(frozen=True)
class RoundsJob:
    """Every model a board times against the others; the first is the baseline (timed twice per round).

    `warmup` and `runs` are per model per round: `split` divides a deploy's totals over the rounds.
    """

    models: tuple[Path, ...]
    eval_data: Path
    rounds: int = 5
    warmup: int = 4
    runs: int = 20
    threads: int | None = None
    cooldown_s: float = 0.0
    energy_window_s: float = ENERGY_WINDOW_S
    timeout_s: float = 900.0
    extra_args: tuple[str, ...] = ()

    @classmethod
    def split(
        cls, models: Sequence[Path], eval_data: Path, *, rounds: int, warmup: int, runs: int, **options: object
    ) -> RoundsJob:
        """`warmup` and `runs` in all, spread over `rounds` (at least one timed run per round; a warm-up
        in every round where there is any warm-up, since a model's caches go cold while the others run)."""
        names = [Path(m).name for m in models]
        if len(set(names)) != len(names):
            raise ValueError(f"models to time together need distinct file names: {names}")
        per_round_warmup = math.ceil(warmup / rounds) if warmup else 0
        return cls(
            tuple(Path(m) for m in models),
            Path(eval_data),
            rounds=rounds,
            warmup=per_round_warmup,
            runs=max(1, math.ceil(runs / rounds)),
            **options,  # type: ignore[arg-type]
        )


def runner_args(job: RoundsJob, models: Sequence[str], data: str) -> list[str]:
    """The runner's command line for `job`, with the models and data named as the board sees them."""
    args = ["--rounds", str(job.rounds), "--noise-pair", "--data", data]
    for model in models:
        args += ["--model", model]
    args += ["--warmup", str(job.warmup), "--runs", str(job.runs), "--cooldown", f"{job.cooldown_s:g}"]
    args += ["--energy-window", f"{job.energy_window_s:g}", "--progress"]
    if job.threads is not None:
        args += ["--threads", str(job.threads)]
    return args + list(job.extra_args)


def time_in_rounds(target: Target, job: RoundsJob) -> Measurement | None:
    """`target.measure_rounds(job)`, checked; None for a board without a wall clock to time (an emulator)."""
    from edgecompress.targets.rounds_check import check_rounds

    measurement = target.measure_rounds(job)
    return None if measurement is None else check_rounds(measurement, job)


__all__ = ["ENERGY_WINDOW_S", "RoundsJob", "runner_args", "time_in_rounds"]
