"""Run a .tflite in the real TFLite Micro interpreter: tensor arena, outputs and accuracy.

The `tflite-micro` package wraps the same C++ interpreter and reference kernels that run on
a microcontroller, with a recording allocator that reports what the arena really held.
Accuracy is scored with the board-side runner's own functions (`firmware/runner`), so a
TFLM figure and a LiteRT figure from any device are computed the same way.

Arena safety margin (applied by `arena_with_margin`): the measured figure comes from a
64-bit host build with reference kernels, and the device differs in ways that cut both
ways -- 32-bit pointers make the interpreter's own structs smaller, while optimized kernels
(CMSIS-NN, ESP-NN) ask for scratch buffers the reference kernels do not (CMSIS-NN's int8
convolution wants 2 x 2 x kh x kw x in_channels bytes: 1,152 B for the reference CIFAR CNN's
second conv, under 3 % of its 45 KB arena). A margin of ARENA_MARGIN_FRACTION of the
measured minimum, never less than ARENA_MARGIN_MIN_BYTES, covers those scratch buffers and
the drift between TFLM versions; the firmware prints `arena_used_bytes()` on first boot so
the figure can be confirmed on the board.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import functools
import importlib.util
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecompress.errors import DataError, ModelError
from edgecompress.resources import runner_script

ARENA_MARGIN_FRACTION = 0.15
ARENA_MARGIN_MIN_BYTES = 1024
#: TFLM aligns the arena start and every buffer to 16 bytes; sizes are rounded to match.
ARENA_ALIGNMENT = 16
#: An arena no microcontroller model outgrows: a model TFLM refuses even here is refused for
#: what it is, not for its arena. (Untouched pages of it are never committed by the OS.)
_GENEROUS_ARENA = 64 << 20

_TOTAL_LINE = re.compile(r"Arena allocation (?P<part>total|head|tail) (?P<bytes>\d+) bytes")
_KIND_LINE = re.compile(r"'(?P<kind>[^']+)' used (?P<bytes>\d+) bytes")


# --------------------------------------------------------------------------- plumbing


@functools.cache
def runner_module() -> Any:
    """The board-side runner, imported as a module so accuracy maths is shared, not copied."""
    spec = importlib.util.spec_from_file_location("_edgecompress_runner", runner_script())
    assert spec is not None and spec.loader is not None, "the runner ships with edgecompress"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class _NativeLog:
    text = ""


@contextlib.contextmanager
def native_log() -> Iterator[_NativeLog]:
    """Collect what the C++ interpreter writes to fd 2 (MicroPrintf) instead of letting it spill."""
    log = _NativeLog()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield log
        finally:
            with contextlib.suppress(Exception):
                ctypes.CDLL(None).fflush(None)
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            log.text = sink.read().decode("utf-8", "replace")


def _runtime() -> Any:
    from tflite_micro import runtime

    return runtime


def tflm_version() -> str:
    import tflite_micro

    return str(tflite_micro.__version__)


def open_interpreter(model: bytes, arena_bytes: int) -> Any:
    """A TFLM interpreter (recording allocator) over `model` with an arena of `arena_bytes`.

    A model TFLM cannot prepare raises ModelError naming the layer (from the interpreter's
    own log); an arena the log calls too small raises ArenaTooSmall. Some shortages only
    show as a kernel failing to prepare, which is why `runs_in_arena` exists for probing.
    """
    runtime = _runtime()
    with native_log() as log:
        try:
            return runtime.Interpreter.from_bytes(bytes(model), arena_size=int(arena_bytes))
        except RuntimeError:
            pass
    _raise_for_failed_allocation(model, log.text)
    raise AssertionError("unreachable")


class ArenaTooSmall(Exception):
    """The interpreter could not fit the model's tensors into the arena it was given."""


_ARENA_SHORTAGE = (
    "Failed to allocate",
    "Failed to resize buffer",
    "too small",
    "Arena size is too small",
    "Unable to allocate",
    "Too many buffers",
)


def _raise_for_failed_allocation(model: bytes, log: str) -> None:
    from edgecompress.micro.ops import explain_prepare_failure

    if any(marker in log for marker in _ARENA_SHORTAGE):
        raise ArenaTooSmall(log)
    explained = explain_prepare_failure(model, log)
    if explained is not None:
        raise explained
    raise ModelError(
        "TFLite Micro could not load the model: " + (" ".join(log.split()) or "no message from the interpreter."),
        "Check that the model is a full-integer (or float32) .tflite using only TFLM-supported ops.",
    )


# --------------------------------------------------------------------------- model I/O


@dataclass(frozen=True)
class TensorIo:
    """An input or output tensor as the firmware sees it."""

    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int
    name: str = ""  # the tensor's name in the .tflite (for messages; TFLM's details do not carry it)

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def bytes(self) -> int:
        return self.elements * np.dtype(self.dtype).itemsize

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "shape": list(self.shape), "bytes": self.bytes}


@dataclass(frozen=True)
class ModelIo:
    input: TensorIo
    output: TensorIo

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input.to_dict(), "output": self.output.to_dict()}


def _tensor_io(details: dict[str, Any], name: str) -> TensorIo:
    quant = details.get("quantization_parameters") or {}
    scales, zero_points = list(quant.get("scales", [])), list(quant.get("zero_points", []))
    return TensorIo(
        shape=tuple(int(d) for d in details["shape"]),
        dtype=np.dtype(details["dtype"]).name,
        scale=float(scales[0]) if scales else 0.0,
        zero_point=int(zero_points[0]) if zero_points else 0,
        name=name,
    )


def model_io(interpreter: Any, model: bytes | None = None) -> ModelIo:
    """The first input and output as the firmware sees them; names are read from `model` when given."""
    names = ("", "")
    if model is not None:
        from edgecompress.micro.graph import read_model

        graph = read_model(model).subgraphs[0]
        names = (graph.inputs[0].name or "", graph.outputs[0].name or "")
    return ModelIo(
        _tensor_io(interpreter.get_input_details(0), names[0]),
        _tensor_io(interpreter.get_output_details(0), names[1]),
    )


# --------------------------------------------------------------------------- arena


@dataclass(frozen=True)
class ArenaMeasurement:
    """How much tensor arena the model needs, measured in TFLM on this host."""

    recorded_bytes: int  # RecordingMicroAllocator's 'Arena allocation total' after one Invoke
    minimum_bytes: int  # smallest arena this TFLM build accepted (searched; includes alignment slack)
    margin_bytes: int
    with_margin_bytes: int
    breakdown: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "margin_rule": f"max({ARENA_MARGIN_FRACTION:.0%} of minimum, {ARENA_MARGIN_MIN_BYTES} B), "
            f"rounded up to {ARENA_ALIGNMENT} B",
            "measured_with": f"tflite-micro {tflm_version()} (host build, reference kernels)",
        }


def arena_margin(minimum_bytes: int) -> int:
    return max(math.ceil(minimum_bytes * ARENA_MARGIN_FRACTION), ARENA_MARGIN_MIN_BYTES)


def arena_with_margin(minimum_bytes: int) -> int:
    return _align(minimum_bytes + arena_margin(minimum_bytes))


def _align(n: int) -> int:
    return -(-n // ARENA_ALIGNMENT) * ARENA_ALIGNMENT


def _zeros_input(interpreter: Any) -> np.ndarray:
    details = interpreter.get_input_details(0)
    return np.zeros(tuple(int(d) for d in details["shape"]), dtype=details["dtype"])


def runs_in_arena(model: bytes, arena_bytes: int) -> bool:
    """True when the model prepares and runs in `arena_bytes`; only asked of models known to run.

    A too-small arena surfaces in many ways (allocation failures, a kernel's scratch-buffer
    request failing its check), so for a model that runs in a larger arena any refusal
    means the arena was too small. Each probe runs in a forked child because the pinned
    tflite-micro wrapper can crash (SIGSEGV) on an arena a few bytes short of the minimum.
    """
    if not hasattr(os, "fork"):
        return _runs_here(model, arena_bytes)
    _runtime()  # imported before the fork: a first import in the child crashes once TensorFlow has run here
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child: report by exit code only, never return into the caller's stack
        code = 1
        try:
            faulthandler.disable()  # an expected crash must not print a fatal-error report
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            code = 0 if _runs_here(model, arena_bytes) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _runs_here(model: bytes, arena_bytes: int) -> bool:
    try:
        interpreter = open_interpreter(model, arena_bytes)
    except (ArenaTooSmall, ModelError):
        return False
    with native_log():
        interpreter.set_input(_zeros_input(interpreter), 0)
        interpreter.invoke()
    return True


def _open_roomy(model: bytes) -> tuple[Any, int]:
    """Open the model in an arena that surely fits, so a failure there is the model's fault.

    Tries a modest arena first (cheap for small models), then a generous one, each probed in
    a child process first (a size near the minimum can crash the wrapper); a model refused
    even in the generous arena is opened here to raise the interpreter's own explanation.
    """
    modest = _align(max(len(model) // 4, 64 * 1024))
    generous = _align(max(_GENEROUS_ARENA, 16 * len(model)))
    for size in (modest, generous):
        if runs_in_arena(model, size):
            return open_interpreter(model, size), size
    try:
        open_interpreter(model, generous)
    except ArenaTooSmall as error:
        raise ModelError(
            f"TFLite Micro could not fit the model into a {generous:,}-byte arena.",
            "The model is far too large for a microcontroller; shrink it.",
        ) from error
    raise ModelError(
        "TFLite Micro could not run the model once (it failed in a child process).",
        "Run the model in the tflite-micro interpreter directly to see the failure.",
    )


def measure_arena(model: bytes) -> ArenaMeasurement:
    """Record the arena after one inference, then find the smallest arena the interpreter accepts.

    The recorder's total leaves out the alignment of the arena start and temporary
    allocations made while preparing kernels (a 9,000-unit int8 Dense layer needs 33 % more
    than the total says), so the size that really works is searched for (bisection, about a
    dozen interpreter constructions) rather than assumed.
    """
    interpreter, works = _open_roomy(model)
    with native_log() as log:
        interpreter.set_input(_zeros_input(interpreter), 0)
        interpreter.invoke()
        interpreter.print_allocations()
    recorded, breakdown = _parse_allocations(log.text)
    low, high = recorded, works  # the recorder's total is a floor; `works` is known to run
    if runs_in_arena(model, recorded):
        high = recorded
    while high - low > ARENA_ALIGNMENT:
        middle = _align((low + high) // 2)
        if middle >= high:
            break
        if runs_in_arena(model, middle):
            high = middle
        else:
            low = middle
    return ArenaMeasurement(recorded, high, arena_margin(high), arena_with_margin(high), breakdown)


def _parse_allocations(text: str) -> tuple[int, dict[str, int]]:
    totals = {m["part"]: int(m["bytes"]) for m in _TOTAL_LINE.finditer(text)}
    if "total" not in totals:
        raise ModelError(
            "TFLite Micro's recording allocator reported no arena total.",
            "This tflite-micro build may lack the recording allocator; reinstall the pinned version.",
        )
    breakdown = {f"arena_{part}": value for part, value in totals.items() if part != "total"}
    breakdown.update({m["kind"]: int(m["bytes"]) for m in _KIND_LINE.finditer(text)})
    return totals["total"], breakdown


# --------------------------------------------------------------------------- inference runs


@dataclass
class RunResult:
    """Scores for every eval sample and the runner-format accuracy computed from them."""

    runtime: str
    accuracy: dict[str, Any]
    scores: np.ndarray  # (n, outputs) float32, dequantized
    predicted: np.ndarray  # (n,) class index, by the runner's rule for the eval set's output_kind
    output_scale: float

    def to_dict(self) -> dict[str, Any]:
        return {"runtime": self.runtime, **{k: v for k, v in self.accuracy.items() if k != "batch"}}


class _TflmSession:
    """Duck-types the runner's Session (batch, run, try_batch) over the TFLM interpreter."""

    batch = 1

    def __init__(self, interpreter: Any) -> None:
        self.interpreter = interpreter
        self.io = model_io(interpreter)

    def run(self, x: np.ndarray) -> np.ndarray:
        runner = runner_module()
        rows = []
        for row in x:
            self.interpreter.set_input(
                runner.quantize(row[None, ...], self.io.input.dtype, (self.io.input.scale, self.io.input.zero_point)), 0
            )
            self.interpreter.invoke()
            rows.append(
                runner.dequantize(
                    self.interpreter.get_output(0), (self.io.output.scale, self.io.output.zero_point)
                ).reshape(1, -1)
            )
        return np.concatenate(rows)

    def try_batch(self, batch: int) -> bool:
        return batch == 1


class _Recording:
    """Keeps every score a session returns, so two runtimes can be compared sample by sample."""

    batch = 1

    def __init__(self, session: Any) -> None:
        self.session = session
        self.scores: list[Any] = []

    def run(self, x: np.ndarray) -> np.ndarray:
        scores = self.session.run(x)
        self.scores.append(scores)
        return scores

    def try_batch(self, batch: int) -> bool:
        return batch == 1


def _evaluate(session: Any, eval_npz: Path, runtime: str, output_scale: float) -> RunResult:
    runner = runner_module()
    try:
        data = runner.EvalData(str(eval_npz))
        recording = _Recording(session)
        reference = session.run(data.head(1))[0]
        with native_log():
            accuracy = runner.evaluate(recording, data, 1, reference, lambda message: None)
    except runner.RunnerError as error:
        raise DataError(error.message, error.fix) from error
    scores = np.concatenate(recording.scores)
    if accuracy is None:  # an eval set of another task: no classes to score; the host judges the outputs
        accuracy = {"n": int(len(scores)), "overall": None, "per_class": {}}
        return RunResult(runtime, accuracy, scores, scores.argmax(axis=1), output_scale)
    return RunResult(runtime, accuracy, scores, runner.predict(scores, data.output_kind), output_scale)


def evaluate_tflm(model: bytes, eval_npz: Path, arena_bytes: int) -> RunResult:
    """Accuracy of `model` in TFLM with exactly `arena_bytes` of arena, on every eval sample."""
    try:
        interpreter = open_interpreter(model, arena_bytes)
    except ArenaTooSmall as error:
        raise ModelError(
            f"TFLite Micro could not run the model in {arena_bytes:,} bytes of arena.",
            "This is a bug in the arena measurement; report it with the model.",
        ) from error
    session = _TflmSession(interpreter)
    _check_input_shape(session.io.input, eval_npz)
    return _evaluate(session, eval_npz, f"tflite-micro {tflm_version()}", session.io.output.scale)


def evaluate_litert(model_path: Path, eval_npz: Path) -> RunResult:
    """Accuracy of the same file in LiteRT, with its built-in kernels and no XNNPACK delegate.

    XNNPACK rounds int8 arithmetic differently from TFLM's reference kernels; the built-in
    kernels agree with TFLM bit for bit, so any remaining difference is a real one.
    """
    from ai_edge_litert import interpreter as litert

    runner = runner_module()
    interpreter_class = functools.partial(
        litert.Interpreter, experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    with native_log():
        session = runner.TfliteSession(
            interpreter_class, "ai_edge_litert", runner._installed_version("ai-edge-litert"), str(model_path), 1
        )
    scale = float(session.interpreter.get_output_details()[0]["quantization"][0])
    return _evaluate(session, eval_npz, "ai_edge_litert (builtin kernels, no XNNPACK)", scale)


def _check_input_shape(expected: TensorIo, eval_npz: Path) -> None:
    runner = runner_module()
    try:
        data = runner.EvalData(str(eval_npz))
    except runner.RunnerError as error:
        raise DataError(error.message, error.fix) from error
    if tuple(data.shape[1:]) != tuple(expected.shape[1:]):
        raise DataError(
            f"Eval data {eval_npz} holds samples of shape {list(data.shape[1:])}, but the model takes {list(expected.shape[1:])}.",
            "Write the eval .npz with the model's input shape (edgecompress.data.write_eval_npz does).",
        )


def compare_runs(a: RunResult, b: RunResult) -> dict[str, Any]:
    """How far two runtimes' outputs and accuracies are apart, in output quantization steps."""
    diff = np.abs(a.scores.astype(np.float64) - b.scores.astype(np.float64))
    steps = diff / a.output_scale if a.output_scale else diff
    return {
        "runtimes": [a.runtime, b.runtime],
        "accuracy": [a.accuracy["overall"], b.accuracy["overall"]],
        "accuracy_difference": None
        if a.accuracy["overall"] is None or b.accuracy["overall"] is None
        else round(abs(a.accuracy["overall"] - b.accuracy["overall"]), 6),
        "identical_outputs": bool(np.array_equal(a.scores, b.scores)),
        "max_abs_diff_quant_steps": float(np.round(steps.max(), 3)) if steps.size else 0.0,
        "samples_with_any_difference": int(np.any(diff > 0, axis=1).sum()),
        "decision_agreement": float(np.mean(a.predicted == b.predicted)),
    }
