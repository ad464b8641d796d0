"""Interleaved timing rounds on a real board (this machine, through the runner in its own process), and the check
that stands between what a board sends back and a report."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from edgecompress.decision import statistics as stats
from edgecompress.decision.timing import BoardTiming
from edgecompress.targets.base import Measurement
from edgecompress.targets.local import LocalTarget
from edgecompress.targets.measurement_check import MeasurementRejected
from edgecompress.targets.rounds import RoundsJob, time_in_rounds
from edgecompress.targets.rounds_check import check_rounds, round_order


@pytest.fixture(scope="module")
def timed(
    tiny_tflite_fp32: Path, tiny_tflite_int8: Path, tiny_onnx: Path, eval_npz: Path
) -> tuple[RoundsJob, Measurement]:
    job = RoundsJob.split(
        [tiny_tflite_fp32, tiny_tflite_int8, tiny_onnx], eval_npz, rounds=4, warmup=8, runs=30,
        threads=1, extra_args=("--latency-threads", "2"),
    )  # fmt: skip
    with LocalTarget() as target:
        return job, time_in_rounds(target, job)


def test_every_model_is_timed_once_per_round_in_a_rotated_order(timed: tuple[RoundsJob, Measurement]) -> None:
    job, measurement = timed
    document = measurement.result

    assert (job.rounds, job.warmup, job.runs) == (4, 2, 8)  # 8 warm-up and 30 timed runs in all, spread over 4 rounds
    assert document["slots"] == [{"model": 0, "copy": 0}, {"model": 1, "copy": 0},
                                 {"model": 0, "copy": 1}, {"model": 2, "copy": 0}]  # fmt: skip
    assert [r["order"] for r in document["round_results"]] == [round_order(i, 4) for i in range(4)]
    assert document["thread_counts"][0] == 1 and document["threads"] == 1
    for result in document["round_results"]:
        assert len(result["timings"]) == 4 * len(document["thread_counts"])
        assert all(len(t["samples"]) == 8 and min(t["samples"]) > 0 for t in result["timings"])
        # the tiny models run in microseconds: each sample averages enough calls to span ~1 ms, so a
        # scheduler slice taken by another process cannot cover a whole slot
        assert all(t["calls"] > 1 for t in result["timings"])
        assert all(t["calls"] * np.median(t["samples"]) > 0.25 for t in result["timings"])
        assert result["state_before"]["load_average"] is not None and result["state_after"]["memory_available_bytes"]
    assert document["min_sample_ms"] == 1.0
    assert "round 4/4" in measurement.log


def test_an_artifacts_latency_is_the_median_of_its_round_medians(timed: tuple[RoundsJob, Measurement]) -> None:
    _, measurement = timed
    saved = {"target": "local", "artifacts": ["fp32", "int8", "onnx"], "result": measurement.result}
    timing = BoardTiming.from_file(saved)

    rounds = timing.rounds("int8")
    latency = timing.latency("int8")
    assert len(rounds) == 4 and latency["runs"] == 32 and latency["rounds"] == 4
    assert latency["median"] == round(float(np.median([np.median(r) for r in rounds])), 6)
    assert timing.noise() is not None and timing.noise().fraction >= 0
    section = timing.section("measurements/rounds@local.json")
    assert section["noise_pair"]["equal"]  # the baseline against itself: equally fast, by construction
    assert section["artifacts"]["onnx"]["energy"]["measured"] is False
    assert [row["threads"] for row in timing.latency_by_threads("fp32")] == measurement.result["thread_counts"][1:]
    interval = stats.rounds_interval(rounds)
    assert interval.low <= latency["median"] <= interval.high


def _rejected(job: RoundsJob, measurement: Measurement, change) -> str:  # noqa: ANN001 - a function editing a copy
    tampered = copy.deepcopy(measurement)
    change(tampered.result)
    with pytest.raises(MeasurementRejected) as raised:
        check_rounds(tampered, job)
    return raised.value.problem


def test_a_board_that_sends_impossible_rounds_is_refused(timed: tuple[RoundsJob, Measurement]) -> None:
    job, measurement = timed
    assert check_rounds(measurement, job) is measurement

    def edit(path: str, value):  # noqa: ANN001, ANN202
        def change(document: dict) -> None:
            keys = path.split(".")
            target = document
            for key in keys[:-1]:
                target = target[int(key)] if key.isdigit() else target[key]
            target[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value

        return change

    cases = {
        "models.1.sha256": ("0" * 64, "models[1] is not"),
        "round_results.2.order": ([0, 1, 2, 3], "is not round 2 in its fixed order [2, 3, 0, 1]"),
        "round_results.0.timings.0.samples.3": (-0.01, "a latency must be a finite number above 0"),
        "round_results.1.state_before.temperatures_c": ({"zone": 900.0}, "not a temperature in degrees C"),
        "round_results.1.state_after.memory_available_bytes": (2**60, "not bytes within the board's RAM"),
        "round_results.3.state_after.cpufreq": ({"cpu0": {"khz": -5}}, "not a clock in kHz"),
        "runs": (9, "runs is 9 but 8 was asked for"),
        "round_results.1.timings.2.calls": (0, "not a count of calls each sample averages"),
        "slots": ([{"model": 0, "copy": 0}], "not every model once and the first twice"),
    }
    for path, (value, problem) in cases.items():
        assert problem in _rejected(job, measurement, edit(path, value)), path
    window = {
        "slot": 1,
        "idle": {"seconds": 0.5, "watts": [3.0]},
        "active": {"seconds": 0.5, "inferences": 0, "watts": [-1.0]},
    }
    problem = _rejected(job, measurement, edit("round_results.0.energy", [window]))
    assert "active.watts is [-1.0], not power readings" in problem and "not a count of inferences" in problem
    assert json.dumps(measurement.result)  # the original was never touched


def test_the_runner_refuses_rounds_it_cannot_time(tiny_tflite_fp32: Path, eval_npz: Path, tmp_path: Path) -> None:
    from test_runner import run_runner

    missing, completed = run_runner("--rounds", 2, "--model", tiny_tflite_fp32, "--model", tmp_path / "gone.tflite",
                                    "--data", eval_npz)  # fmt: skip
    assert (
        completed.returncode == 4
        and missing["error"]["message"] == f"Model file {tmp_path / 'gone.tflite'} does not exist."
    )
    several, completed = run_runner("--model", tiny_tflite_fp32, "--model", tiny_tflite_fp32, "--data", eval_npz)
    assert completed.returncode == 2 and "without --rounds" in several["error"]["message"]
    cooled, completed = run_runner("--rounds", 2, "--model", tiny_tflite_fp32, "--data", eval_npz, "--cooldown", "-1")
    assert completed.returncode == 2 and "--cooldown" in cooled["error"]["message"]
