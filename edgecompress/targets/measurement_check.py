"""Checking what a board sends back before any of it can enter a report.

A board is a machine we do not control: its runner may be an old or edited copy, its
interpreter a wrapper that rewrites output, its runtime broken. So a result is held
against what the host knows on its own -- the model bytes it sent, the labels of the
evaluation set it wrote, the number of timed runs it asked for, the RAM the board's probe
reported -- and the board's summary figures are recomputed from the raw data it sent
(latency samples, per-image predictions) rather than believed. A result that fails is
rejected whole with the board and the figure named: the pipeline then keeps the run
`.failed` and resumable, and stores nothing from that measurement.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecompress.errors import TargetError
from edgecompress.targets.base import MeasureJob, Measurement, Target

#: figures the runner rounds (to 4 decimals) or computes from rounded samples (6 decimals)
ABS_TOLERANCE = 1e-3
REL_TOLERANCE = 1e-6
#: problems quoted in one error; the rest are counted
SHOWN_PROBLEMS = 5

#: latency statistic -> how to recompute it from the samples (the runner's own definitions)
LATENCY_STATS: dict[str, Callable[[np.ndarray], float]] = {
    "median": lambda s: float(np.percentile(s, 50)),
    "p90": lambda s: float(np.percentile(s, 90)),
    "p99": lambda s: float(np.percentile(s, 99)),
    "mean": lambda s: float(s.mean()),
    "std": lambda s: float(s.std()),
    "min": lambda s: float(s.min()),
    "max": lambda s: float(s.max()),
}
#: one-off timings (ms): finite and not negative (an import can take well under a rounding step)
TIMINGS_MS = ("import_ms", "load_ms", "first_inference_ms")

#: the probe's sections (objects), its texts (None where a system cannot say) and its byte counts
PROBE_SECTIONS = ("platform", "runtimes", "memory")
PROBE_TEXTS = ("runner_version", "python", "numpy")
PROBE_BYTES = ("memory.total_bytes", "memory.available_bytes", "disk_free_bytes")

REJECTED_FIX = (
    "Nothing from this measurement was stored. Figures like these do not come from edgecompress's runner "
    "working normally: check what `python` on the board really runs (a wrapper that rewrites output, an edited "
    "edgecompress_runner.py, a broken runtime build), then measure again."
)


class MeasurementRejected(TargetError):
    """A board's result failed the check; `problems` lists every figure that cannot be right."""

    step = "check"

    def __init__(self, target: str, model: str, problems: list[str]) -> None:
        shown = "; ".join(problems[:SHOWN_PROBLEMS])
        more = f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else ""
        super().__init__(
            f"[{target}] check failed: the result for {model} cannot be right, so none of it was kept: {shown}{more}.",
            REJECTED_FIX,
        )
        self.target = target
        self.problems = problems


@dataclass(frozen=True)
class Expected:
    """What the host knows about a measurement without asking the board."""

    model_name: str
    model_sha256: str
    model_bytes: int
    labels: np.ndarray  # int64, one per evaluation image, in the order sent
    class_names: tuple[str, ...]
    warmup: int
    runs: int

    @property
    def n_classes(self) -> int:
        return max(len(self.class_names), 2)  # a single-output (binary) model still has two classes

    @classmethod
    def for_job(cls, job: MeasureJob) -> Expected:
        """Hash the model and read the labels once per job; every board's result is checked against these."""
        model, data = Path(job.model), Path(job.eval_data)
        try:
            digest = hashlib.sha256()
            with model.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            with np.load(data, allow_pickle=False) as archive:
                labels = np.asarray(archive["y"]).astype(np.int64).reshape(-1)
                class_names = tuple(str(name) for name in np.asarray(archive["class_names"]).reshape(-1))
        except (OSError, KeyError, ValueError) as error:
            raise TargetError(
                f"Cannot read what is to be measured ({model.name}, {data.name}): {error}.",
                "Export the artifact and the eval data first (edgecompress deploy does both).",
            ) from None
        return cls(model.name, digest.hexdigest(), model.stat().st_size, labels, class_names, job.warmup, job.runs)


def check_measurement(measurement: Measurement, expected: Expected) -> Measurement:
    """Return `measurement` if every figure in it can be true; raise MeasurementRejected naming each one that cannot."""
    problems = _Problems(measurement.result if isinstance(measurement.result, dict) else {})
    if not isinstance(measurement.result, dict):
        problems.add(f"the result is {type(measurement.result).__name__}, not the runner's JSON object")
    elif "instructions" in measurement.result:  # firmware on an emulated board: instructions, not milliseconds
        _check_instructions(problems)
        _check_accuracy(problems, expected)
    elif "reference_for" in measurement.result:  # a baseline scored on the host for such a board: not timed
        _check_model(problems, expected)
        _check_accuracy(problems, expected)
    else:
        _check_model(problems, expected)
        _check_latency(problems, expected)
        _check_memory(problems, _board_ram(measurement.device))
        _check_accuracy(problems, expected)
        problems.count("threads", minimum=1)
    if problems:
        raise MeasurementRejected(measurement.target, expected.model_name, problems.found)
    return measurement


def check_probe(document: dict[str, Any]) -> dict[str, Any]:
    """Return the runner's `--probe` answer if it has the runner's shape; TargetError naming what does not.

    The probe decides what is sent and which runtime is asked for, and its RAM figure bounds
    the memory check, so a board's description of itself is checked like its measurements.
    """
    problems = _Problems(document)
    for key in PROBE_SECTIONS:
        if not isinstance(document.get(key), dict):
            problems.add(f"{key} is {_shown(document.get(key))}, not an object")
    for key in PROBE_TEXTS:
        if not isinstance(document.get(key, ""), (str, type(None))):
            problems.add(f"{key} is {_shown(document.get(key))}, not a version or name")
    if not isinstance(document.get("runtime_import_errors", {}), dict):
        problems.add(f"runtime_import_errors is {_shown(document.get('runtime_import_errors'))}, not an object")
    runtimes = document.get("runtimes")
    if isinstance(runtimes, dict):
        for name, version in runtimes.items():
            if not isinstance(version, (str, type(None))):
                problems.add(f"runtimes.{name} is {_shown(version)}, not a version")
    for path in PROBE_BYTES:
        if problems.get(path) is not None:
            problems.count(path, minimum=0)
    if problems:
        raise TargetError(
            "The board's description of itself (the runner's --probe) is not what edgecompress's runner sends: "
            + "; ".join(problems.found[:SHOWN_PROBLEMS])
            + ".",
            "Check what `python` on the board really runs (a wrapper that rewrites output, an edited "
            "edgecompress_runner.py): edgecompress sends its own runner and expects its answer unchanged.",
        )
    return document


def measure_checked(target: Target, job: MeasureJob, expected: Expected | None = None) -> Measurement:
    """`target.measure(job)`, let through only if it passes the check: the one door results enter by."""
    return check_measurement(target.measure(job), expected or Expected.for_job(job))


# --------------------------------------------------------------------------- the checks


def _check_model(problems: _Problems, expected: Expected) -> None:
    sha256 = problems.get("model.sha256")
    if sha256 is not None and sha256 != expected.model_sha256:
        problems.add(f"model.sha256 is {_shown(sha256)} but the model sent has {expected.model_sha256!r}")
    size = problems.count("model.bytes", minimum=0)
    if size is not None and size != expected.model_bytes:
        problems.add(f"model.bytes is {size} but the model sent has {expected.model_bytes} bytes")


def _check_latency(problems: _Problems, expected: Expected) -> None:
    for name in TIMINGS_MS:
        problems.number(name, minimum=0.0)
    runs = problems.count("latency_ms.runs", minimum=1)
    if runs is not None and runs != expected.runs:
        problems.add(f"latency_ms.runs is {runs} but {expected.runs} timed runs were asked for")
    warmup = problems.count("latency_ms.warmup", minimum=0)
    if warmup is not None and warmup != expected.warmup:
        problems.add(f"latency_ms.warmup is {warmup} but {expected.warmup} warm-up runs were asked for")
    samples = problems.get("latency_ms.samples")
    if not isinstance(samples, list):
        problems.add(f"latency_ms.samples is {_shown(samples)}, not a list of per-run latencies")
        return
    if len(samples) != expected.runs:
        problems.add(f"latency_ms.samples has {len(samples)} values but {expected.runs} timed runs were asked for")
    bad = [(i, s) for i, s in enumerate(samples) if not _is_number(s) or not math.isfinite(s) or s <= 0]
    if bad:
        index, value = bad[0]
        problems.add(
            f"latency_ms.samples[{index}] is {_shown(value)} ms; a latency must be a finite number above 0"
            + (f" ({len(bad)} such samples)" if len(bad) > 1 else "")
        )
        return
    values = np.asarray(samples, dtype=np.float64)
    for stat, recompute in LATENCY_STATS.items():
        reported = problems.number(f"latency_ms.{stat}", minimum=0.0, above=stat != "std")
        if reported is not None and values.size and not _close(reported, recompute(values)):
            problems.add(
                f"latency_ms.{stat} is {reported:g} ms but the {values.size} samples sent give {recompute(values):.6g} ms"
            )


def _check_instructions(problems: _Problems) -> None:
    """An emulated board's counts: whole samples, finite positive instruction figures in order."""
    problems.count("instructions.per_inference.samples", minimum=1)
    figures = {
        stat: problems.number(f"instructions.per_inference.{stat}", minimum=0.0, above=True)
        for stat in ("min", "median", "max")
    }
    if None not in figures.values() and not figures["min"] <= figures["median"] <= figures["max"]:  # type: ignore[operator]
        problems.add(
            f"instructions per inference are out of order (min {figures['min']}, median {figures['median']}, "
            f"max {figures['max']})"
        )
    if problems.get("latency_ms") not in ({}, None):
        problems.add("an emulated board reported wall-clock latency, which it cannot measure")


def _check_memory(problems: _Problems, ram: int | None) -> None:
    memory = problems.get("memory")
    if not isinstance(memory, dict):
        problems.add(f"memory is {_shown(memory)}, not the runner's memory figures")
        return
    for key in sorted(memory):
        if not key.endswith("_bytes") or memory[key] is None:  # None: the board has no /proc to read it from
            continue
        value = problems.count(f"memory.{key}", minimum=1)
        if value is not None and ram is not None and value > ram:
            problems.add(f"memory.{key} is {_human(value)}, more than the board's RAM ({_human(ram)})")


def _check_accuracy(problems: _Problems, expected: Expected) -> None:
    labels, n = expected.labels, int(expected.labels.size)
    reported_n = problems.count("accuracy.n", minimum=1)
    if reported_n is not None and reported_n != n:
        problems.add(f"accuracy.n is {reported_n} but the evaluation set sent has {n} images")
    predictions = _predictions(problems, n, expected.n_classes)
    if predictions is None:
        return
    hits = predictions == labels
    correct = int(hits.sum())
    reported_correct = problems.count("accuracy.correct", minimum=0)
    if reported_correct is not None and reported_correct != correct:
        problems.add(f"accuracy.correct is {reported_correct} but the predictions sent get {correct} of {n} right")
    overall = problems.number("accuracy.overall", minimum=0.0)
    if overall is not None and not _close(overall, correct / n):
        problems.add(f"accuracy.overall is {overall:g} but the predictions sent give {correct}/{n} = {correct / n:.6f}")
    per_class = problems.get("accuracy.per_class")
    if not isinstance(per_class, dict) or set(per_class) != {str(i) for i in range(expected.n_classes)}:
        problems.add(f"accuracy.per_class does not list exactly the {expected.n_classes} classes of the evaluation set")
    else:
        for index in range(expected.n_classes):
            _check_class(problems, index, expected, labels == index, hits)
    confusion = problems.get("accuracy.confusion")
    if confusion is not None:
        truth = np.zeros((expected.n_classes, expected.n_classes), dtype=np.int64)
        np.add.at(truth, (labels, predictions), 1)
        if _as_int_matrix(confusion) != truth.tolist():
            problems.add("accuracy.confusion does not match the predictions sent")


def _predictions(problems: _Problems, n: int, n_classes: int) -> np.ndarray | None:
    predictions = problems.get("accuracy.predictions")
    if not isinstance(predictions, list):
        problems.add(f"accuracy.predictions is {_shown(predictions)}, not a list with one class per image")
        return None
    if len(predictions) != n:
        problems.add(f"accuracy.predictions has {len(predictions)} values for the {n} images sent")
        return None
    bad = [
        (i, p)
        for i, p in enumerate(predictions)
        if not (isinstance(p, int) and not isinstance(p, bool) and 0 <= p < n_classes)
    ]
    if bad:
        index, value = bad[0]
        problems.add(f"accuracy.predictions[{index}] is {_shown(value)}, not a class index 0..{n_classes - 1}")
        return None
    return np.asarray(predictions, dtype=np.int64)


def _check_class(problems: _Problems, index: int, expected: Expected, members: np.ndarray, hits: np.ndarray) -> None:
    path = f"accuracy.per_class.{index}"
    entry = problems.get(path)
    if not isinstance(entry, dict):
        problems.add(f"{path} is {_shown(entry)}, not a class entry")
        return
    name = expected.class_names[index] if index < len(expected.class_names) else str(index)
    if entry.get("name") != name:
        problems.add(f"{path}.name is {_shown(entry.get('name'))} but class {index} of the evaluation set is {name!r}")
    size, correct = int(members.sum()), int(hits[members].sum())
    reported_size = problems.count(f"{path}.n", minimum=0)
    if reported_size is not None and reported_size != size:
        problems.add(f"{path}.n is {reported_size} but the evaluation set holds {size} images of class {name!r}")
    reported_correct = problems.count(f"{path}.correct", minimum=0)
    if reported_correct is not None and reported_correct != correct:
        problems.add(
            f"{path}.correct is {reported_correct} but the predictions sent get {correct} of class {name!r} right"
        )
    accuracy = entry.get("accuracy")
    if size == 0:
        if accuracy is not None:
            problems.add(f"{path}.accuracy is {_shown(accuracy)} for a class with no images")
    elif (value := problems.number(f"{path}.accuracy", minimum=0.0)) is not None and not _close(value, correct / size):
        problems.add(f"{path}.accuracy is {value:g} but the predictions sent give {correct}/{size}")


# --------------------------------------------------------------------------- reading the document


class _Problems:
    """Reads figures out of the runner's JSON by dotted path, noting every one that is missing or impossible."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.found: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.found)

    def add(self, problem: str) -> None:
        self.found.append(problem)

    def get(self, path: str) -> Any:
        value: Any = self.document
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def number(self, path: str, *, minimum: float, above: bool = False) -> float | None:
        """A finite number >= minimum (> minimum when `above`); None (and a problem noted) otherwise."""
        value = self.get(path)
        if not _is_number(value) or not math.isfinite(value) or value < minimum or (above and value <= minimum):
            bound = f"above {minimum:g}" if above else f"at least {minimum:g}"
            self.add(f"{path} is {_shown(value)}; it must be a finite number {bound}")
            return None
        return float(value)

    def count(self, path: str, *, minimum: int) -> int | None:
        """A whole number >= minimum; None (and a problem noted) otherwise."""
        value = self.get(path)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            self.add(f"{path} is {_shown(value)}; it must be a whole number of at least {minimum}")
            return None
        return value


def _board_ram(device: Any) -> int | None:
    """MemTotal as the board's probe reported it; None when the board could not say."""
    total = (
        device.get("memory", {}).get("total_bytes")
        if isinstance(device, dict) and isinstance(device.get("memory"), dict)
        else None
    )
    return total if isinstance(total, int) and not isinstance(total, bool) and total > 0 else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _close(reported: float, recomputed: float) -> bool:
    return abs(reported - recomputed) <= ABS_TOLERANCE + REL_TOLERANCE * abs(recomputed)


def _as_int_matrix(value: Any) -> list[list[int]] | None:
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) for row in value for v in row):
        return None
    return value


def _shown(value: Any) -> str:
    """A value from the board, short and inert (repr: quotes strings, escapes control characters)."""
    if value is None:
        return "missing"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _human(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


#: what targets.rounds_check reads a board's timing rounds with
Problems = _Problems
board_ram = _board_ram
shown = _shown

__all__ = [
    "Expected",
    "MeasurementRejected",
    "Problems",
    "board_ram",
    "check_measurement",
    "check_probe",
    "measure_checked",
    "shown",
]
