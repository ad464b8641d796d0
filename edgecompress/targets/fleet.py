"""Several boards measured at once, and how much they disagree.

Boards of the same model still differ (SD card, cooling, firmware, background load), so a
fleet report keeps every board's own figures and adds the spread across boards; one board
failing costs only its own row. Boards run in parallel threads: the work is waiting on the
network and on the boards, not on this machine's CPU.
"""

from __future__ import annotations

import contextvars
import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgecompress.config_files import explain_validation, read_mapping
from edgecompress.errors import EdgeCompressError, TargetError
from edgecompress.targets.base import MeasureJob, Measurement, Target
from edgecompress.targets.measurement_check import Expected, measure_checked

if TYPE_CHECKING:
    from edgecompress.targets.rounds import RoundsJob

T = TypeVar("T")
_WAKE_S = 0.2

#: figure in the spread -> where it sits in the runner's JSON
SPREAD_METRICS: dict[str, tuple[str, ...]] = {
    "latency_median_ms": ("latency_ms", "median"),
    "peak_rss_bytes": ("memory", "peak_rss_bytes"),
    "accuracy": ("accuracy", "overall"),
}


@dataclass
class BoardOutcome:
    """One board's part of a fleet run: its measurement, or the error that stopped it."""

    target: str
    measurement: Measurement | None = None
    error: EdgeCompressError | None = None

    @property
    def ok(self) -> bool:
        return self.measurement is not None

    def to_dict(self) -> dict[str, Any]:
        if self.measurement is not None:
            return {
                "target": self.target,
                "ok": True,
                "result": self.measurement.result,
                "device": self.measurement.device,
            }
        assert self.error is not None
        return {
            "target": self.target,
            "ok": False,
            "error": {"problem": self.error.problem, "fix": self.error.fix, "step": getattr(self.error, "step", None)},
        }


@dataclass
class FleetResult:
    """Every board's outcome in the order given, plus the spread of the boards that succeeded."""

    boards: list[BoardOutcome]
    spread: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def measurements(self) -> dict[str, Measurement]:
        return {b.target: b.measurement for b in self.boards if b.measurement is not None}

    @property
    def errors(self) -> dict[str, EdgeCompressError]:
        return {b.target: b.error for b in self.boards if b.error is not None}

    def to_dict(self) -> dict[str, Any]:
        return {"boards": [b.to_dict() for b in self.boards], "spread": self.spread}


def spread_across(measurements: Sequence[Measurement]) -> dict[str, dict[str, Any]]:
    """min / max / median / std (population) of each SPREAD_METRICS figure, with each board's value.

    A figure a board did not report (e.g. peak memory where /proc is missing) leaves that
    board out of that figure only.
    """
    spread: dict[str, dict[str, Any]] = {}
    for metric, path in SPREAD_METRICS.items():
        per_board = {m.target: value for m in measurements if (value := _dig(m.result, path)) is not None}
        values = list(per_board.values())
        if not values:
            continue
        spread[metric] = {
            "n": len(values),
            "min": min(values),
            "max": max(values),
            "median": statistics.median(values),
            "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
            "boards": per_board,
        }
    return spread


def measure_fleet(targets: Sequence[Target], job: MeasureJob, max_workers: int | None = None) -> FleetResult:
    """Measure `job` on every target in parallel; a TargetError on one board is kept, not raised.

    Every board's result passes measurement_check before it counts: a board that sends back
    impossible figures gets a failed outcome naming them, like any other board failure.
    """
    _require_distinct_names(targets)
    expected = Expected.for_job(job) if targets else None
    outcomes = []
    for target, value in run_in_parallel(targets, lambda t: measure_checked(t, job, expected), max_workers):
        if isinstance(value, Measurement):
            outcomes.append(BoardOutcome(target.name, measurement=value))
        else:
            outcomes.append(BoardOutcome(target.name, error=value))
    measured = [o.measurement for o in outcomes if o.measurement is not None]
    return FleetResult(outcomes, spread_across(measured))


def time_fleet_in_rounds(
    targets: Sequence[Target], job: RoundsJob
) -> dict[str, Measurement | None | EdgeCompressError]:
    """Every board times its interleaved rounds (targets.rounds) at the same time: they are separate machines.

    Each result is checked before it counts; a failure costs its own board only. None: a board
    with no wall clock to time (an emulator).
    """
    from edgecompress.targets.rounds import time_in_rounds

    _require_distinct_names(targets)
    return {target.name: value for target, value in run_in_parallel(targets, lambda t: time_in_rounds(t, job))}


def probe_fleet(
    targets: Sequence[Target], max_workers: int | None = None
) -> dict[str, dict[str, Any] | EdgeCompressError]:
    """Probe every board at once (a fleet of ten should not take ten probe times)."""
    _require_distinct_names(targets)
    return {target.name: value for target, value in run_in_parallel(targets, lambda t: t.probe(), max_workers)}


def run_in_parallel(
    targets: Sequence[Target], action: Callable[[Target], T], max_workers: int | None = None
) -> list[tuple[Target, T | EdgeCompressError]]:
    """`action` on each target in its own thread; user-facing errors are returned, bugs re-raised.

    Ctrl-C asks every target that can be cancelled to stop (SshTarget kills its remote
    runner), waits for the threads, and re-raises KeyboardInterrupt.
    """
    if not targets:
        return []
    pool = ThreadPoolExecutor(max_workers=max_workers or len(targets), thread_name_prefix="edgecompress-fleet")
    # each thread runs in a copy of the caller's context, so its log lines are the caller's run's (pipeline/run.py)
    futures: list[Future] = [pool.submit(contextvars.copy_context().run, action, target) for target in targets]
    try:
        while wait(futures, timeout=_WAKE_S).not_done:
            pass  # wake up now and then: a signal (Ctrl-C) is only handled between waits
    except KeyboardInterrupt:
        for target in targets:
            cancel = getattr(target, "cancel", None)
            if callable(cancel):
                cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    results: list[tuple[Target, T | EdgeCompressError]] = []
    for target, future in zip(targets, futures):
        error = future.exception()
        if error is None:
            results.append((target, future.result()))
        elif isinstance(error, EdgeCompressError):
            results.append((target, error))
        else:
            raise error
    return results


class FleetDefinition(BaseModel):
    """A fleet file: `fleet:` lists target names, .yaml paths (relative to the file) or ssh:// URLs."""

    model_config = ConfigDict(extra="forbid")

    fleet: list[str] = Field(min_length=1)
    description: str = ""


def expand_fleet_specs(specs: Sequence[str]) -> list[str]:
    """Replace each fleet file among the --target values by the targets it lists (one level deep)."""
    from edgecompress.targets.qemu import is_qemu_spec
    from edgecompress.targets.ssh_config import SSH_SCHEME, find_target_file

    expanded: list[str] = []
    for spec in specs:
        path = None if spec.startswith(SSH_SCHEME) or spec == "local" or is_qemu_spec(spec) else find_target_file(spec)
        fleet = _read_fleet(path) if path is not None else None
        if fleet is None or path is None:
            expanded.append(spec)
            continue
        for member in fleet.fleet:
            relative = path.parent / member
            is_file = member.endswith((".yaml", ".yml")) and not Path(member).is_absolute() and relative.is_file()
            expanded.append(str(relative) if is_file else member)
    return expanded


def fleet_targets(specs: Sequence[str], **options: Any) -> list[Target]:
    """Build every target the --target values (fleet files expanded) name; options as for resolve_target."""
    from edgecompress.targets.registry import resolve_target

    targets: list[Target] = []
    try:
        for spec in expand_fleet_specs(specs):
            targets.append(resolve_target(spec, **options))
    except BaseException:
        for target in targets:
            target.close()
        raise
    _require_distinct_names(targets)
    return targets


def _read_fleet(path: Path) -> FleetDefinition | None:
    """The fleet a file describes, or None when it is a single-target file (read by ssh_config)."""
    document = read_mapping(
        path,
        TargetError,
        "target or fleet file",
        "A fleet file holds `fleet:` (a list of target names, .yaml files or ssh:// URLs).",
    )
    if "fleet" not in document:
        return None
    try:
        return FleetDefinition(**document)
    except ValidationError as error:
        problems = "; ".join(explain_validation(error, FleetDefinition))
        raise TargetError(
            f"Fleet file {path}: {problems}",
            "A fleet file holds `fleet:` (a list of target names, .yaml files or ssh:// URLs) and an optional `description:`.",
        ) from None


def _require_distinct_names(targets: Sequence[Target]) -> None:
    seen: set[str] = set()
    for target in targets:
        if target.name in seen:
            raise TargetError(
                f"Two targets in the fleet are both called '{target.name}'; their figures would overwrite each other.",
                "Give each board its own target file (the file name, or `name:` in it, is the board's name).",
            )
        seen.add(target.name)


def _dig(document: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = document
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
