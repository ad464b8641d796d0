"""The board runner on a real Python 3.8, the oldest Python it promises, over SSH.

The board is this machine behind a real sshd (tests/sshd.py) whose `python` is a CPython 3.8
venv with NumPy 1.24 and the runtimes that still ship 3.8 wheels, tflite-runtime 2.14 and
ONNX Runtime 1.19 (`bash .ci/board-py38` makes it; .ci/run does, and exports its path as
EDGECOMPRESS_BOARD_PYTHON38). The runner's probe, its protocol with the host, the timing and
the accuracy scoring all run there; the host checks the answer as it checks any board's.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sshd import SshServer

from edgecompress.targets import MeasureJob
from edgecompress.targets.ssh import ssh_target_from_spec

pytestmark = [pytest.mark.slow, pytest.mark.ssh]
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = ROOT / ".ci" / "board-py38"


@pytest.fixture(scope="module")
def python38() -> str:
    """The board's Python 3.8: $EDGECOMPRESS_BOARD_PYTHON38, or the venv `.ci/board-py38` left."""
    given = os.environ.get("EDGECOMPRESS_BOARD_PYTHON38") or str(DEFAULT_VENV / "bin" / "python")
    if not Path(given).is_file():
        pytest.skip(f"no Python 3.8 board interpreter at {given}: `bash .ci/board-py38` makes one (needs pyenv's 3.8)")
    version = subprocess.run([given, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    assert version.stdout.strip() == "(3, 8)", f"{given} is not Python 3.8: {version.stdout}{version.stderr}"
    return given


def _board(server: SshServer, python: str, tmp_path: Path):  # noqa: ANN202
    known_hosts = server.write_known_hosts(tmp_path / "known_hosts")
    url = server.url(python=python, remote_dir=str(tmp_path / "board"))
    return ssh_target_from_spec(url, identity=server.user_key, known_hosts=known_hosts, retries=0)


def test_the_probe_on_python_38_names_its_numpy_and_runtimes(sshd: SshServer, python38: str, tmp_path: Path) -> None:
    with _board(sshd, python38, tmp_path) as board:
        probe = board.probe()
    assert probe["python"].startswith("3.8.") and probe["numpy"].startswith("1.24.")
    assert probe["runtimes"]["tflite_runtime"] == "2.14.0" and probe["runtimes"]["onnxruntime"].startswith("1.19.")
    assert probe["runtimes"]["ai_edge_litert"] is None  # LiteRT has no 3.8 wheels: tflite-runtime stands in


@pytest.mark.parametrize("artifact", ["tiny_tflite_fp32", "tiny_tflite_int8", "tiny_onnx"])
def test_a_model_is_measured_and_scored_on_python_38(
    artifact: str, sshd: SshServer, python38: str, eval_npz: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    model: Path = request.getfixturevalue(artifact)
    with _board(sshd, python38, tmp_path) as board:
        measurement = board.measure(MeasureJob(model, eval_npz, warmup=2, runs=10, threads=1))
    result = measurement.result
    expected = "onnxruntime" if model.suffix == ".onnx" else "tflite_runtime"
    assert result["runtime"]["name"] == expected
    assert result["latency_ms"]["runs"] == 10 and result["latency_ms"]["median"] > 0
    assert result["accuracy"]["n"] == 360 and result["accuracy"]["overall"] > 0.85  # the tiny digits model
    assert measurement.device["python"].startswith("3.8.")


def test_interleaved_timing_rounds_run_on_python_38(
    sshd: SshServer, python38: str, tiny_tflite_fp32: Path, tiny_tflite_int8: Path, eval_npz: Path, tmp_path: Path
) -> None:
    """The runner's --rounds (board state read around every round, the baseline twice) on the oldest Python."""
    from edgecompress.decision.timing import BoardTiming
    from edgecompress.targets.rounds import RoundsJob, time_in_rounds

    job = RoundsJob.split([tiny_tflite_fp32, tiny_tflite_int8], eval_npz, rounds=3, warmup=3, runs=15, threads=1)
    with _board(sshd, python38, tmp_path) as board:
        measurement = time_in_rounds(board, job)
    assert measurement is not None and measurement.device["python"].startswith("3.8.")
    rounds = measurement.result["round_results"]
    assert len(rounds) == 3 and all(r["state_before"]["time_s"] <= r["state_after"]["time_s"] for r in rounds)
    timing = BoardTiming.from_file({"target": "py38", "artifacts": ["fp32", "int8"], "result": measurement.result})
    assert [len(r) for r in timing.rounds("int8") or []] == [5, 5, 5] and timing.noise() is not None
