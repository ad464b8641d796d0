"""What the runner is asked to measure besides accuracy and latency, from the device profile.

- threads: the profile's core count (`--cores`; the runner caps it at the CPUs the board lets
  it use and says so), unless the user fixed `--threads`; the timing rounds also time every
  artifact at 1 thread (`--latency-threads 1`), so every report has both figures, labelled.
- the profile's accelerator (`--accelerator`): the runner tries its LiteRT delegate or
  onnxruntime execution provider and records which one ran and how many operations it took,
  or "cpu (accelerator not available: ...)".
- per-operator times (`--profile-ops`) where the runtime exposes them (onnxruntime).
"""

from __future__ import annotations

from typing import Any

#: profiled runs per artifact for the per-operator breakdown
PROFILE_OP_RUNS = 50


def _common(profile: Any, threads: int | None) -> list[str]:
    args: list[str] = []
    if threads is None:
        args += ["--cores", str(profile.cpu.cores)]
    accelerator = getattr(profile, "accelerator", "none") or "none"
    if accelerator != "none":
        args += ["--accelerator", accelerator]
    return args


def runner_options(profile: Any, *, threads: int | None) -> tuple[str, ...]:
    """Extra runner arguments (MeasureJob.extra_args) of one artifact's own measurement for a device profile."""
    return tuple(_common(profile, threads) + ["--profile-ops", str(PROFILE_OP_RUNS)])


def rounds_options(profile: Any, *, threads: int | None) -> tuple[str, ...]:
    """Extra runner arguments (RoundsJob.extra_args) of a board's timing rounds: the same threads and
    accelerator, and every round also at one thread."""
    return tuple(_common(profile, threads) + ["--latency-threads", "1"])


__all__ = ["PROFILE_OP_RUNS", "rounds_options", "runner_options"]
