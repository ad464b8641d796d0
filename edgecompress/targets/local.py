"""Measure on this machine, the same way a board is measured.

The runner runs in its own Python process rather than in-process: that keeps
edgecompress's TensorFlow out of the runner's memory figures, lets a hung runtime be
killed on timeout, and exercises exactly the code path a board runs.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from edgecompress.errors import TargetError
from edgecompress.resources import runner_script
from edgecompress.targets.base import MeasureJob, Measurement, Target, attach_samples, printable
from edgecompress.targets.measurement_check import check_probe
from edgecompress.targets.rounds import RoundsJob
from edgecompress.targets.rounds import runner_args as rounds_runner_args

PROBE_TIMEOUT_S = 120.0
_TAIL_CHARS = 2000


class LocalTarget(Target):
    """This machine, via the board-side runner started with `python` (default: this interpreter)."""

    name = "local"

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable
        self._device: dict[str, Any] | None = None

    def probe(self) -> dict[str, Any]:
        completed = self._run_runner(["--probe"], timeout_s=PROBE_TIMEOUT_S, step="probe")
        return check_probe(self._parse(completed, step="probe"))

    def measure(self, job: MeasureJob) -> Measurement:
        if self._device is None:
            self._device = self.probe()
        with tempfile.TemporaryDirectory(prefix="edgecompress-local-") as scratch:
            samples_path = Path(scratch) / "latency_samples.json"
            completed = self._run_runner(
                _measure_args(job, samples_path), timeout_s=job.timeout_s, step=f"measure {job.model.name}"
            )
            result = attach_samples(
                self._parse(completed, step=f"measure {job.model.name}"), _read_samples(samples_path)
            )
        return Measurement(target=self.name, result=result, device=self._device, log=completed.stderr)

    def measure_rounds(self, job: RoundsJob) -> Measurement:
        if self._device is None:
            self._device = self.probe()
        step = f"timing rounds of {len(job.models)} models"
        completed = self._run_runner(
            rounds_runner_args(job, [str(m) for m in job.models], str(job.eval_data)),
            timeout_s=job.timeout_s,
            step=step,
        )
        return Measurement(
            target=self.name, result=self._parse(completed, step=step), device=self._device, log=completed.stderr
        )

    def _run_runner(self, args: list[str], timeout_s: float, step: str) -> subprocess.CompletedProcess[str]:
        command = [self.python, str(runner_script()), *args]
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise TargetError(
                f"local: step '{step}' did not finish within {timeout_s:g} s and was stopped."
                f"{_tail('Runner stderr so far', _text(exc.stderr))}",
                "Raise the measurement timeout, or lower --runs / use a smaller eval set.",
            ) from exc
        except OSError as exc:
            raise TargetError(
                f"local: step '{step}' could not start the runner with '{self.python}': {exc}.",
                "Point the local target at a working Python 3.8+ with NumPy and ai-edge-litert/onnxruntime.",
            ) from exc

    def _parse(self, completed: subprocess.CompletedProcess[str], step: str) -> dict[str, Any]:
        try:
            document = json.loads(completed.stdout)
        except (ValueError, RecursionError):
            raise TargetError(
                f"local: step '{step}' exited with code {completed.returncode} without a JSON answer."
                f"{_tail('Stdout', completed.stdout)}{_tail('Stderr', completed.stderr)}",
                f"Run it by hand to see why: {shlex.join(completed.args)}",
            ) from None
        if not isinstance(document, dict):
            raise TargetError(
                f"local: step '{step}' answered {type(document).__name__}, not a JSON object.",
                "The runner is out of date; reinstall edgecompress.",
            )
        error = document.get("error")
        if error is not None or completed.returncode != 0:
            if not isinstance(error, dict):
                error = {
                    "kind": "runtime_error",
                    "message": f"exit code {completed.returncode}, error {error!r}",
                    "fix": "",
                }
            stderr = _tail("Runner stderr", completed.stderr) if error.get("kind") == "runtime_error" else ""
            raise TargetError(
                f"local: step '{step}' failed ({error.get('kind')}): {error.get('message')}{stderr}",
                error.get("fix") or f"Run it by hand to see why: {shlex.join(completed.args)}",
            )
        return document


def _measure_args(job: MeasureJob, samples_path: Path) -> list[str]:
    args = [
        "--model", str(job.model), "--data", str(job.eval_data),
        "--warmup", str(job.warmup), "--runs", str(job.runs),
        "--samples-out", str(samples_path), "--progress",
    ]  # fmt: skip
    if job.threads is not None:
        args += ["--threads", str(job.threads)]
    return args + list(job.extra_args)


def _read_samples(path: Path) -> Any:
    """The samples file as written; its content is judged by measurement_check, not here."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise TargetError(
            f"local: the runner succeeded but its latency samples ({path.name}) are unreadable: {exc}.",
            "The runner is out of date; reinstall edgecompress.",
        ) from exc


def _text(stream: str | bytes | None) -> str:
    if isinstance(stream, bytes):
        return stream.decode("utf-8", "replace")
    return stream or ""


def _tail(label: str, text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    shown = "\n".join(printable(line) for line in text[-_TAIL_CHARS:].splitlines())  # escapes act on no terminal
    return f"\n{label} (last {_TAIL_CHARS} chars):\n{shown}"
