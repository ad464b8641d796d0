"""Run a linked firmware on an emulated Cortex-M board (qemu-system-arm) and read what it did.

The firmware (firmware/tflm/emulator_main.cc) reads the quantized evaluation inputs through
semihosting, writes the raw output tensors and the SysTick ticks of every Invoke() back,
and prints one `edgecompress: ...` line per fact. QEMU runs with `-icount shift=0`: every
executed instruction advances virtual time by exactly 1 ns, so SysTick counts executed
instructions divided by a constant (40 on the 25 MHz MPS2 boards), which the firmware
measures with a loop of known length. Runs are deterministic: the same firmware and inputs
give the same counts.

Every run has a timeout and runs in its own process group, which is killed whole if the
emulator hangs; a crash, a fault or a timeout is raised as a TargetError with the console.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecompress.errors import TargetError
from edgecompress.micro.cores import Board
from edgecompress.micro.toolchain import qemu_system

INPUTS, OUTPUTS, TICKS = "edgecompress_inputs.bin", "edgecompress_outputs.bin", "edgecompress_ticks.bin"
_LINE = re.compile(r"edgecompress: (?P<kind>\w+)(?P<rest>.*)")
_PAIR = re.compile(r"(\w+)=(\S+)")
#: Emulated instructions per host second assumed when sizing a timeout: a floor well below
#: what QEMU's TCG reaches with -icount on a loaded 2-core machine.
_SLOW_IPS = 10_000_000
_TAIL = 3000
#: QEMU's options between the board and the kernel: no display, monitor or UART (the firmware talks
#: through semihosting), and -icount shift=0 so virtual time counts executed instructions.
_QEMU_FLAGS = (
    "-nographic",
    "-monitor",
    "none",
    "-serial",
    "null",
    "-semihosting-config",
    "enable=on,target=native",
    "-icount",
    "shift=0",
)


@dataclass(frozen=True)
class Calibration:
    """SysTick ticks -> executed instructions, from a loop of exactly 2 instructions per iteration."""

    short_iterations: int
    short_ticks: int
    long_iterations: int
    long_ticks: int
    systick_hz: int

    @property
    def instructions_per_tick(self) -> float:
        """The loop's extra instructions over the extra ticks; call overhead cancels out."""
        ticks = self.long_ticks - self.short_ticks
        return 2.0 * (self.long_iterations - self.short_iterations) / ticks if ticks > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "short_iterations": self.short_iterations,
            "short_ticks": self.short_ticks,
            "long_iterations": self.long_iterations,
            "long_ticks": self.long_ticks,
            "instructions_per_iteration": 2,
            "systick_hz": self.systick_hz,
            "instructions_per_tick": round(self.instructions_per_tick, 6),
        }


@dataclass
class EmulatorRun:
    """What one firmware run on the emulated board reported."""

    board: str
    command: list[str]
    samples: int
    outputs: np.ndarray  # (samples, output elements), the output tensor's dtype, raw
    ticks: np.ndarray  # (samples,) uint32 SysTick ticks per Invoke()
    calibration: Calibration
    arena_used: int
    arena_size: int
    stack_peak: int
    stack_reserved: int
    events: list[dict[str, Any]] = field(default_factory=list)
    console: str = ""
    seconds: float = 0.0

    @property
    def instructions(self) -> np.ndarray:
        return self.ticks.astype(np.float64) * self.calibration.instructions_per_tick


def run_firmware(
    elf: Path,
    board: Board,
    inputs: bytes,
    *,
    input_bytes: int,
    output_bytes: int,
    output_dtype: str,
    workdir: Path,
    timeout_s: float | None = None,
    instructions_hint: float | None = None,
) -> EmulatorRun:
    """Run `elf` on `board` over `inputs` (samples back to back) and return the outputs and counts.

    `instructions_hint` (instructions per inference, if known) sizes the timeout; the
    larger of it and `timeout_s` is used.
    """
    qemu = qemu_system()
    samples = _sample_count(inputs, input_bytes)
    _stage_inputs(workdir, inputs)
    command = [qemu, "-M", board.name, *_QEMU_FLAGS, "-kernel", str(elf.resolve())]
    limit = _timeout(samples, timeout_s, instructions_hint)
    started = time.monotonic()
    console, returncode = _run_killable(command, workdir, limit, board)
    seconds = time.monotonic() - started
    facts = parse_console(console)
    if "error" in facts or returncode != 0 or "done" not in facts:
        raise _failure(board, facts, console, returncode, command, workdir)
    outputs, ticks = _read_outputs(workdir, facts, board, samples, output_bytes, output_dtype)
    done, calibration, setup = facts["done"][0], facts["calibration"][0], facts["setup"][0]
    return EmulatorRun(
        board=board.name,
        command=command,
        samples=samples,
        outputs=outputs.reshape(samples, -1),
        ticks=ticks.copy(),
        calibration=_calibration(calibration),
        arena_used=int(done["arena_used"]),
        arena_size=int(setup["arena_size"]),
        stack_peak=int(done["stack_peak"]),
        stack_reserved=int(done["stack_reserved"]),
        events=_events(facts.get("event", [])),
        console=console,
        seconds=seconds,
    )


def _sample_count(inputs: bytes, input_bytes: int) -> int:
    """Samples in `inputs`; a partial sample means the set was quantized for another input tensor."""
    if input_bytes <= 0 or len(inputs) % input_bytes:
        raise TargetError(
            f"{len(inputs)} input bytes are not a whole number of {input_bytes}-byte samples.",
            "Quantize the evaluation set with the model's input tensor.",
        )
    return len(inputs) // input_bytes


def _stage_inputs(workdir: Path, inputs: bytes) -> None:
    """Write the inputs the firmware reads, removing an earlier run's outputs so they cannot pass for this run's."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in (OUTPUTS, TICKS):
        (workdir / name).unlink(missing_ok=True)
    (workdir / INPUTS).write_bytes(inputs)


def _read_outputs(
    workdir: Path, facts: dict[str, Any], board: Board, samples: int, output_bytes: int, output_dtype: str
) -> tuple[np.ndarray, np.ndarray]:
    """The output and tick files, refused unless their sizes agree with the console and the inputs."""
    outputs = np.frombuffer((workdir / OUTPUTS).read_bytes(), dtype=np.dtype(output_dtype))
    ticks = np.frombuffer((workdir / TICKS).read_bytes(), dtype="<u4")
    done = facts["done"][0]
    if (
        int(done["samples"]) != samples
        or ticks.size != samples
        or outputs.size * outputs.itemsize != samples * output_bytes
    ):
        raise TargetError(
            f"The firmware on {board.name} reported {done['samples']} samples, wrote {ticks.size} timings and "
            f"{outputs.size * outputs.itemsize} output bytes for {samples} inputs: its files cannot be trusted.",
            f"Look at the console in {workdir} and re-run.",
        )
    return outputs, ticks


def _calibration(row: dict[str, str]) -> Calibration:
    """The firmware's calibration line, which turns SysTick ticks into executed instructions."""
    return Calibration(
        int(row["short_iterations"]),
        int(row["short_ticks"]),
        int(row["long_iterations"]),
        int(row["long_ticks"]),
        int(row["systick_hz"]),
    )


def parse_console(console: str) -> dict[str, list[dict[str, str]]]:
    """`edgecompress: kind k=v ...` lines grouped by kind (values are strings; the host checks them)."""
    facts: dict[str, list[dict[str, str]]] = {}
    for line in console.splitlines():
        match = _LINE.search(line)
        if match is None:
            continue
        text = match["kind"] + match["rest"] if match["rest"].startswith("=") else match["rest"]
        facts.setdefault(match["kind"], []).append(dict(_PAIR.findall(text)))
    return facts


def _events(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    events = []
    for row in rows:
        total = (int(row["ticks_total_hi"]) << 32) | int(row["ticks_total_lo"])
        events.append(
            {
                "index": int(row["index"]),
                "depth": int(row["depth"]),
                "tag": row["tag"],
                "ticks_total": total,
                "samples": int(row["samples"]),
            }
        )
    return events


def _timeout(samples: int, timeout_s: float | None, instructions_hint: float | None) -> float:
    estimate = 60.0 + (samples * instructions_hint / _SLOW_IPS if instructions_hint else 0.0)
    return max(timeout_s or 0.0, estimate)


def _run_killable(command: list[str], workdir: Path, timeout_s: float, board: Board) -> tuple[str, int]:
    """Run QEMU in its own process group; on timeout the whole group is killed."""
    process = subprocess.Popen(
        command,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        output, _ = process.communicate()
        text = output.decode("utf-8", "replace")
        (workdir / "console.txt").write_text(text)
        raise TargetError(
            f"The emulated {board.name} did not finish within {timeout_s:.0f} s and was stopped "
            f"(QEMU's process group was killed).{_tail(text)}",
            "A firmware that hangs is a board failure: check the console above; a very large evaluation set may "
            "need a longer timeout. The run folder is kept; finish it with --resume.",
        ) from None
    except BaseException:
        _kill_group(process)
        raise
    text = output.decode("utf-8", "replace")
    (workdir / "console.txt").write_text(text)
    return text, process.returncode


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _failure(
    board: Board, facts: dict[str, Any], console: str, returncode: int, command: list[str], workdir: Path
) -> TargetError:
    error = (facts.get("error") or [{}])[0]
    if error.get("error") == "fault" or "Lockup" in console:
        what = f"the firmware crashed (CPU exception {error.get('exception', '?')})"
    elif error.get("error") == "allocate_tensors":
        what = "the tensor arena is too small for the model on the 32-bit core (AllocateTensors failed)"
    elif error:
        what = f"the firmware stopped with error '{error.get('error')}'"
    else:
        what = f"QEMU exited with code {returncode} before the firmware finished"
    return TargetError(
        f"On the emulated {board.name}, {what}.{_tail(console)}",
        f"Re-run it by hand in {workdir}: {shlex.join(command)}",
    )


def _tail(text: str) -> str:
    text = text.strip()
    return f"\nConsole (last {_TAIL} chars):\n{text[-_TAIL:]}" if text else ""
