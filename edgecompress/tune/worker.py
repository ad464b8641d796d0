"""What runs in a Ray worker: one trial's build, i.e. the deploy steps before Measure.

The run folder is written where the request says (the tune folder, on a file system the
driver sees too); the driver then resumes the same folder to measure it on the boards, so no
step exists twice. A retried task (its first worker died) resumes the folder the dead one
left, repeating only what that one had not recorded. Errors inside the trial come back as
data, not as exceptions, so Ray does not retry them and the driver records them.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from edgecompress.run_layout import FAILED, PARTIAL

#: the driver's folder of worker records: <tune dir>/workers/<trial>/attempt-N.json
WORKERS = "workers"


def worker_threads() -> dict[str, Any]:
    """Give TensorFlow (and OpenMP) as many threads as CPUs Ray gave this task, before TF is imported."""
    from edgecompress._tf import limit_threads

    cpus = os.cpu_count() or 1  # outside Ray (the benchmark's in-process comparison): the machine's CPUs
    if _in_ray():
        import ray

        cpus = max(1, int(round(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
    return limit_threads(cpus)


def _in_ray() -> bool:
    """True in a Ray worker (asking Ray's runtime context outside one would start a Ray instance)."""
    import sys

    return "ray" in sys.modules and bool(sys.modules["ray"].is_initialized())


def _assigned_gpus() -> float | None:
    """GPUs Ray reserved for this task (--gpus-per-trial); None outside Ray."""
    if not _in_ray():
        return None
    import ray

    return float(ray.get_runtime_context().get_assigned_resources().get("GPU", 0))


def _node_id() -> str | None:
    if not _in_ray():
        return None
    import ray

    return str(ray.get_runtime_context().get_node_id())


def existing_folder(output: Path, name: str) -> Path | None:
    """The trial's run folder if an earlier attempt left one (finished, partial or failed)."""
    for suffix in ("", PARTIAL, FAILED):
        path = output / f"{name}{suffix}"
        if path.is_dir():
            return path
    return None


def build_trial(payload: dict[str, Any]) -> dict[str, Any]:
    """Build (or finish building) one trial's run folder, stopping before Measure.

    `payload`: {"request": DeployRequest as JSON, "tune_dir": str}. Returns where the run
    folder is, which process built it, and the error when the trial failed.
    """
    started = time.time()
    threads = worker_threads()  # before anything imports TensorFlow
    from edgecompress import pipeline
    from edgecompress.pipeline.request import DeployRequest

    request = DeployRequest(**payload["request"])
    name = str(request.run_name)
    record_dir = Path(payload["tune_dir"]) / WORKERS / name
    record_dir.mkdir(parents=True, exist_ok=True)
    attempt = len(list(record_dir.glob("attempt-*.json"))) + 1
    worker = {
        "pid": os.getpid(),
        "node_id": _node_id(),
        "host": socket.gethostname(),
        "attempt": attempt,
        "threads": threads,
        "gpus": _assigned_gpus(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "started": started,
    }
    (record_dir / f"attempt-{attempt}.json").write_text(json.dumps(worker))
    outcome: dict[str, Any] = {"worker": worker}
    try:
        found = existing_folder(Path(request.output), name)
        result_dir: Path | None
        if found is not None and not found.name.endswith((PARTIAL, FAILED)):
            result_dir = found  # finished before (a resumed tune): nothing to build
        elif found is not None:
            result_dir = pipeline.resume(found, stop_before="measure").run_dir
        else:
            result_dir = pipeline.run(request, stop_before="measure").run_dir
        outcome["run_dir"] = str(result_dir)
    except Exception as error:  # noqa: BLE001 - a bug still ends only this trial; the search goes on
        outcome["error"] = _failure(error, existing_folder(Path(request.output), name))
    outcome["worker"]["seconds"] = round(time.time() - started, 2)
    (record_dir / f"attempt-{attempt}.json").write_text(json.dumps(outcome["worker"]))
    return outcome


def _failure(error: Exception, run_dir: Path | None) -> dict[str, Any]:
    """A failed trial as data (Ray would retry an exception): a user's error as such, anything else as a bug."""
    from edgecompress.errors import EdgeCompressError

    if isinstance(error, EdgeCompressError):
        failure = {"type": type(error).__name__, "problem": error.problem, "fix": error.fix}
    else:
        import traceback

        failure = {
            "type": type(error).__name__,
            "problem": f"{type(error).__name__}: {error}",
            "fix": "This is a bug in edgecompress; the trial's deploy.log and the traceback say where.",
            "traceback": traceback.format_exc(limit=12),
        }
    return {**failure, "run_dir": str(run_dir) if run_dir else None}


__all__ = ["WORKERS", "build_trial", "existing_folder", "worker_threads"]
