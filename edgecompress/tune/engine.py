"""Ray, the engine that runs trials: a local instance `tune` starts itself, or the cluster at an address.

Trials are Ray tasks (tune/worker.py): each builds one trial's run folder (fine-tuning and
export) in a Ray worker process. Ray retries a task whose worker died (a killed process, a
lost node) `retries` times; an error inside the trial is not retried, it is the trial's result.
The driver, this process, keeps the search (Optuna) and the boards.

Nothing here reaches the internet: usage statistics are off and no dashboard is started.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgecompress.errors import EdgeCompressError

#: small: a trial sends a request and gets a run folder's path back; /dev/shm may be small on CI machines
OBJECT_STORE_BYTES = 128 * 1024**2
#: set in every worker: no telemetry, TensorFlow's C++ notices off, and a trial given no GPU sees
#: none (Ray 2.60 leaves CUDA_VISIBLE_DEVICES alone for such a task, so its `--device auto` would
#: take a GPU another trial reserved; Ray's own switch restores the hiding)
WORKER_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "TF_CPP_MIN_LOG_LEVEL": "3", "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "1"}


class RayError(EdgeCompressError):
    """Ray could not be started or reached."""

    exit_code = 6


@dataclass
class Engine:
    """A connected Ray: where it is, how many CPUs it has, and the remote build function."""

    address: str  # "local" for an instance started here
    started_here: bool
    cpus: int
    nodes: int
    build: Any  # the ray.remote function of tune/worker.py:build_trial
    gpus: float = 0.0

    def submit(self, payload: dict[str, Any]) -> Any:
        return self.build.remote(payload)

    def shutdown(self) -> None:
        import ray

        ray.shutdown()


def start(
    address: str | None,
    *,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    retries: int = 1,
    local_cpus: int | None = None,
    say: Callable[[str], None] = lambda message: None,
) -> Engine:
    """Connect to the Ray cluster at `address` (or $RAY_ADDRESS); without one, start a local instance."""
    os.environ.update(WORKER_ENV)
    import ray

    from edgecompress.tune.worker import build_trial

    address = address or os.environ.get("RAY_ADDRESS") or None
    if address == "local":  # what a tune started without a cluster records; the same local settings apply
        address = None
    options: dict[str, Any] = {
        "runtime_env": {"env_vars": dict(WORKER_ENV)},
        "log_to_driver": False,
        "configure_logging": False,
        "include_dashboard": False,
    }
    try:
        if address:
            say(f"Connecting to the Ray cluster at {address}")
            ray.init(address=address, **options)
        else:
            cpus = local_cpus or os.cpu_count() or 1
            say(f"Starting a local Ray instance ({cpus} CPUs)")
            ray.init(num_cpus=cpus, object_store_memory=OBJECT_STORE_BYTES, **options)
    except Exception as error:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise RayError(
            f"Could not start or reach {where}: {type(error).__name__}: {error}",
            "Check the address (`ray status --address ADDR` on the head node), that the cluster runs the same Ray "
            "and Python versions as this machine, or leave out --ray-address to run on this machine.",
        ) from None
    try:
        resources = ray.cluster_resources()
        nodes = len([n for n in ray.nodes() if n.get("Alive")])
        _check_gpus(resources, gpus_per_trial, address)
        remote = ray.remote(
            num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=retries, retry_exceptions=False
        )(build_trial)
    except BaseException:
        ray.shutdown()  # started but unusable: leave no Ray processes behind
        raise
    gpus = float(resources.get("GPU", 0))
    say(
        f"Ray: {int(resources.get('CPU', 0))} CPUs, {gpus:g} GPUs on {nodes} node(s)"
        + (f" at {address}" if address else " (local)")
    )
    return Engine(address or "local", not address, int(resources.get("CPU", 0)), nodes, remote, gpus)


def _check_gpus(resources: dict[str, Any], per_trial: float, address: str | None) -> None:
    """A trial asking for more GPUs than the cluster has would wait for ever: refuse it now."""
    have = float(resources.get("GPU", 0))
    if per_trial > have:
        where = f"the Ray cluster at {address}" if address else "this machine"
        raise RayError(
            f"--gpus-per-trial {per_trial:g} asks for more GPUs than {where} has ({have:g}): no trial could start.",
            "Leave out --gpus-per-trial to fine-tune on CPUs, or point --ray-address at a cluster with GPU nodes "
            "(`ray status` lists its GPUs).",
        )


def describe_failure(error: BaseException) -> str:
    """A trial's Ray failure in words: its worker died (after retries), or the task itself raised."""
    import ray.exceptions as rex

    if isinstance(error, (rex.WorkerCrashedError, rex.NodeDiedError)):
        return f"its Ray worker died and the retries ran out ({type(error).__name__})"
    if isinstance(error, rex.TaskCancelledError):
        return "it was cancelled"
    if isinstance(error, rex.RayTaskError):
        cause = error.cause if getattr(error, "cause", None) is not None else error
        return f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1] if str(cause).strip() else ''}"
    return f"{type(error).__name__}: {error}"


__all__ = ["Engine", "RayError", "describe_failure", "start"]
