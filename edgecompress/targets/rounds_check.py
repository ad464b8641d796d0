"""Checking a board's timing rounds before any of it can enter a report.

As with a single measurement (targets.measurement_check), the board is held to what the host
knows on its own: the model files it sent (bytes and SHA-256, in order), the rounds, warm-up
and timed runs it asked for, the slots and the order each round must have (the rotation is
fixed), and the board's RAM. Every latency is a finite positive number; every reading of the
board's state is a plausible figure of its kind (a clock in kHz, a temperature in degrees
Celsius, a load average, bytes of free memory); every power reading is finite and not
negative. Summary figures are never taken from the board: the host computes them from the
raw samples (decision.timing). A document that fails is rejected whole, naming the figures.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecompress.targets.base import Measurement
from edgecompress.targets.measurement_check import MeasurementRejected, Problems, board_ram, shown

if TYPE_CHECKING:
    from edgecompress.targets.rounds import RoundsJob

#: plausible ranges of what a board reads about itself
MAX_KHZ = 10_000_000  # 10 GHz
TEMPERATURE_C = (-60.0, 200.0)
MAX_WATTS = 10_000.0
#: the runner averages at most this many back-to-back calls in one timed sample (its MAX_CALLS_PER_SAMPLE)
MAX_CALLS_PER_SAMPLE = 1000
THROTTLE_FLAGS = {"under-voltage", "arm frequency capped", "throttled", "soft temperature limit"}
WHAT = "the timing rounds"


def slot_plan(n_models: int) -> list[dict[str, int]]:
    """The slots the runner must use with --noise-pair: every model once, the first a second time half a round on."""
    slots = [{"model": index, "copy": 0} for index in range(n_models)]
    slots.insert((n_models + 2) // 2, {"model": 0, "copy": 1})
    return slots


def round_order(index: int, n_slots: int) -> list[int]:
    return [(index + i) % n_slots for i in range(n_slots)]


def check_rounds(measurement: Measurement, job: RoundsJob) -> Measurement:
    """`measurement` if every figure in it can be true; MeasurementRejected naming each one that cannot."""
    document = measurement.result if isinstance(measurement.result, dict) else {}
    problems = Problems(document)
    if not document:
        problems.add(f"the result is {type(measurement.result).__name__}, not the runner's JSON object")
    else:
        _check_shape(problems, job)
        counts = _thread_counts(problems, job)
        ram = board_ram(measurement.device)
        for index, result in enumerate(document.get("round_results") or []):
            _check_round(problems, index, result, job, counts, ram)
    if problems:
        raise MeasurementRejected(measurement.target, WHAT, problems.found)
    return measurement


def _check_shape(problems: Problems, job: RoundsJob) -> None:
    if problems.get("kind") != "rounds":
        problems.add(f"kind is {shown(problems.get('kind'))}, not 'rounds'")
    for key, wanted in (("rounds", job.rounds), ("warmup", job.warmup), ("runs", job.runs)):
        if problems.get(key) != wanted:
            problems.add(f"{key} is {shown(problems.get(key))} but {wanted} was asked for")
    models = problems.get("models")
    if not isinstance(models, list) or len(models) != len(job.models):
        problems.add(f"models lists {shown(models)}, not the {len(job.models)} models sent")
    else:
        for index, (facts, path) in enumerate(zip(models, job.models)):
            _check_model(problems, index, facts, path)
    if problems.get("slots") != slot_plan(len(job.models)):
        problems.add(f"slots are {shown(problems.get('slots'))}, not every model once and the first twice")
    results = problems.get("round_results")
    if not isinstance(results, list) or len(results) != job.rounds:
        problems.add(
            f"round_results has {len(results) if isinstance(results, list) else 'no'} rounds, not {job.rounds}"
        )


def _check_model(problems: Problems, index: int, facts: Any, path: Path) -> None:
    if not isinstance(facts, dict):
        problems.add(f"models[{index}] is {shown(facts)}, not a model's facts")
        return
    data = path.read_bytes()
    if facts.get("sha256") != hashlib.sha256(data).hexdigest() or facts.get("bytes") != len(data):
        problems.add(f"models[{index}] is not {path.name} as sent (its bytes or SHA-256 differ)")


def _thread_counts(problems: Problems, job: RoundsJob) -> list[int]:
    counts = problems.get("thread_counts")
    threads = problems.count("threads", minimum=1)
    if (
        not isinstance(counts, list)
        or not counts
        or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in counts)
        or len(set(counts)) != len(counts)
        or counts[0] != threads
        or (job.threads is not None and threads != job.threads)
    ):
        problems.add(f"thread_counts is {shown(counts)}: distinct whole numbers starting with threads ({threads})")
        return []
    return counts


def _check_round(
    problems: Problems, index: int, result: Any, job: RoundsJob, counts: list[int], ram: int | None
) -> None:
    where = f"round_results[{index}]"
    if not isinstance(result, dict):
        problems.add(f"{where} is {shown(result)}, not a round")
        return
    n_slots = len(job.models) + 1
    if result.get("round") != index or result.get("order") != round_order(index, n_slots):
        problems.add(f"{where} is not round {index} in its fixed order {round_order(index, n_slots)}")
    wanted = sorted((slot, count) for slot in range(n_slots) for count in counts)
    timings = result.get("timings")
    if not isinstance(timings, list) or not all(isinstance(t, dict) for t in timings):
        problems.add(f"{where}.timings is {shown(timings)}, not a list of timed slots")
        return
    if sorted((t.get("slot"), t.get("threads")) for t in timings) != wanted:
        problems.add(f"{where}.timings does not hold every slot once at each thread count {counts}")
    for position, timing in enumerate(timings):
        _check_samples(problems, f"{where}.timings[{position}].samples", timing.get("samples"), job.runs)
        calls = timing.get("calls", 1)
        if not isinstance(calls, int) or isinstance(calls, bool) or not 1 <= calls <= MAX_CALLS_PER_SAMPLE:
            problems.add(
                f"{where}.timings[{position}].calls is {shown(calls)}, not a count of calls each sample averages "
                f"(1 to {MAX_CALLS_PER_SAMPLE})"
            )
    for key in ("state_before", "state_after"):
        _check_state(problems, f"{where}.{key}", result.get(key), ram)
    for position, window in enumerate(result.get("energy") or []):
        _check_energy(problems, f"{where}.energy[{position}]", window, n_slots)


def _check_samples(problems: Problems, where: str, samples: Any, runs: int) -> None:
    if not isinstance(samples, list) or len(samples) != runs:
        problems.add(f"{where} is {shown(samples)}, not the {runs} timed runs asked for")
        return
    bad = [s for s in samples if not _finite(s) or s <= 0]
    if bad:
        problems.add(f"{where} holds {shown(bad[0])} ms; a latency must be a finite number above 0")


def _check_state(problems: Problems, where: str, state: Any, ram: int | None) -> None:
    if not isinstance(state, dict):
        problems.add(f"{where} is {shown(state)}, not the board's state")
        return
    for core, clock in (state.get("cpufreq") or {}).items():
        khz = clock.get("khz") if isinstance(clock, dict) else None
        if not isinstance(khz, int) or isinstance(khz, bool) or not 0 < khz <= MAX_KHZ:
            problems.add(f"{where}.cpufreq[{core!r}] reads {shown(clock)}, not a clock in kHz")
    for sensor, celsius in (state.get("temperatures_c") or {}).items():
        if not _finite(celsius) or not TEMPERATURE_C[0] <= celsius <= TEMPERATURE_C[1]:
            problems.add(f"{where}.temperatures_c[{sensor!r}] is {shown(celsius)}, not a temperature in degrees C")
    load = state.get("load_average")
    if load is not None and (
        not isinstance(load, list) or len(load) != 3 or not all(_finite(v) and v >= 0 for v in load)
    ):
        problems.add(f"{where}.load_average is {shown(load)}, not three load averages")
    free = state.get("memory_available_bytes")
    if free is not None and (not isinstance(free, int) or free < 0 or (ram is not None and free > ram)):
        problems.add(f"{where}.memory_available_bytes is {shown(free)}: not bytes within the board's RAM")
    throttled = state.get("throttled")
    if throttled is not None and not (
        isinstance(throttled, dict)
        and set(throttled.get("now") or []) | set(throttled.get("since_boot") or []) <= THROTTLE_FLAGS
    ):
        problems.add(f"{where}.throttled is {shown(throttled)}, not vcgencmd's throttling conditions")
    counts = state.get("throttle_counts") or {}
    if not isinstance(counts, dict) or not all(isinstance(v, int) and v >= 0 for v in counts.values()):
        problems.add(f"{where}.throttle_counts is {shown(counts)}, not event counts")


def _check_energy(problems: Problems, where: str, window: Any, n_slots: int) -> None:
    if not isinstance(window, dict) or not isinstance(window.get("slot"), int) or not 0 <= window["slot"] < n_slots:
        problems.add(f"{where} is {shown(window)}, not a power window of a slot")
        return
    for part in ("idle", "active"):
        block: dict[str, Any] = window[part] if isinstance(window.get(part), dict) else {}
        watts = block.get("watts")
        if not isinstance(watts, list) or not watts or not all(_finite(w) and 0 <= w <= MAX_WATTS for w in watts):
            problems.add(f"{where}.{part}.watts is {shown(watts)}, not power readings in watts")
        if not _finite(block.get("seconds")) or block["seconds"] <= 0:
            problems.add(f"{where}.{part}.seconds is {shown(block.get('seconds'))}, not a duration")
    count = (window.get("active") or {}).get("inferences") if isinstance(window.get("active"), dict) else None
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        problems.add(f"{where}.active.inferences is {shown(count)}, not a count of inferences")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


__all__ = ["check_rounds", "round_order", "slot_plan"]
