"""`--target local`: the runner in a separate process on this machine, as a board would run it."""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
import time
from pathlib import Path

import pytest

from edgecompress.errors import TargetError
from edgecompress.targets import MeasureJob, resolve_target
from edgecompress.targets.local import LocalTarget


def test_local_is_resolved_from_the_target_spec() -> None:
    target = resolve_target("local")

    assert isinstance(target, LocalTarget)
    assert target.name == "local" and target.python == sys.executable


def test_probe_describes_this_machine() -> None:
    device = LocalTarget().probe()

    assert device["python"] == ".".join(map(str, sys.version_info[:3]))
    assert device["runtimes"]["ai_edge_litert"] == importlib.metadata.version("ai-edge-litert")
    assert device["runtimes"]["onnxruntime"] == importlib.metadata.version("onnxruntime")


def test_measure_round_trip(tiny_tflite_int8: Path, eval_npz: Path) -> None:
    job = MeasureJob(model=tiny_tflite_int8, eval_data=eval_npz, warmup=3, runs=25, threads=1)

    with LocalTarget() as target:
        measurement = target.measure(job)

    result = measurement.result
    assert measurement.target == "local"
    assert result["threads"] == 1
    assert result["model"]["path"] == str(tiny_tflite_int8)
    assert result["accuracy"]["n"] == 360 and result["accuracy"]["overall"] > 0.9
    samples = result["latency_ms"]["samples"]
    assert len(samples) == 25 and min(samples) == pytest.approx(result["latency_ms"]["min"], abs=1e-3)
    assert measurement.device["runtimes"]["ai_edge_litert"]
    assert "timed runs 25" in measurement.log  # the runner's progress, kept for the report


def test_runner_error_becomes_target_error_with_step_and_fix(eval_npz: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "half_copied.tflite"
    corrupt.write_bytes(b"TFL3" + b"\x00" * 20)

    with pytest.raises(TargetError) as caught:
        LocalTarget().measure(MeasureJob(model=corrupt, eval_data=eval_npz))

    assert "measure half_copied.tflite" in caught.value.problem
    assert "bad_model" in caught.value.problem
    assert "re-export" in caught.value.fix


def test_timeout_stops_the_runner_and_says_so(tiny_tflite_fp32: Path, eval_npz: Path) -> None:
    endless = MeasureJob(model=tiny_tflite_fp32, eval_data=eval_npz, runs=10**8, timeout_s=2.0)
    started = time.monotonic()

    with pytest.raises(TargetError) as caught:
        LocalTarget().measure(endless)

    assert time.monotonic() - started < 30
    assert "did not finish within 2 s" in caught.value.problem
    assert "timeout" in caught.value.fix


def test_an_interpreter_that_is_not_python_is_reported() -> None:
    with pytest.raises(TargetError) as caught:
        LocalTarget(python=shutil.which("echo")).probe()  # answers, but not in JSON
    assert "without a JSON answer" in caught.value.problem

    with pytest.raises(TargetError) as caught:
        LocalTarget(python="/nonexistent/python3").probe()
    assert "could not start the runner" in caught.value.problem
