"""What the runner is asked to measure besides accuracy and latency, from the device profile.

- threads: the profile's core count (`--cores`; the runner caps it at the CPUs the board lets
  it use and says so), unless the user fixed `--threads`; plus a second timing at 1 thread
  (`--latency-threads 1`), so every report has both figures, labelled.
- the profile's accelerator (`--accelerator`): the runner tries its LiteRT delegate or
  onnxruntime execution provider and records which one ran and how many operations it took,
  or "cpu (accelerator not available: ...)".
- per-operator times (`--profile-ops`) where the runtime exposes them (onnxruntime).
"""

from __future__ import annotations

from typing import Any

#: profiled runs per artifact for the per-operator breakdown
PROFILE_OP_RUNS = 50


def runner_options(profile: Any, *, threads: int | None) -> tuple[str, ...]:
    """Extra runner arguments (MeasureJob.extra_args) for a device profile."""
    args: list[str] = []
    if threads is None:
        args += ["--cores", str(profile.cpu.cores)]
    args += ["--latency-threads", "1"]
    accelerator = getattr(profile, "accelerator", "none") or "none"
    if accelerator != "none":
        args += ["--accelerator", accelerator]
    args += ["--profile-ops", str(PROFILE_OP_RUNS)]
    return tuple(args)


__all__ = ["PROFILE_OP_RUNS", "runner_options"]
