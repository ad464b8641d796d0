"""Verdicts on latency timed in interleaved rounds: drift, the board's noise floor, and the preference's tolerances.

Each run folder is written the way deploy writes one -- the runner's rounds document in
measurements/rounds@<board>.json, each artifact's samples per round, report.json from
`build_report` -- with timings chosen so the expected verdict is known: a board that slows down
from round to round, a noisy board, artifacts truly faster by a known factor.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgecompress.decision import statistics as stats
from edgecompress.decision.judging import Judging
from edgecompress.decision.timing import BoardTiming, TimedInRounds, rounds_ratio
from edgecompress.evaluation import tally
from edgecompress.profiles import load_profile
from edgecompress.reporting import write_all
from edgecompress.reporting.schema import build_report, measurement_entry
from edgecompress.run_layout import LAYOUT
from edgecompress.targets.rounds_check import round_order, slot_plan

CLASSES = [f"c{i}" for i in range(10)]
N = 2000
LABELS = np.arange(N) % 10
BASELINE = "baseline-fp32"


def predictions(right: np.ndarray) -> list[int]:
    """Right where `right` is True, else the next class."""
    return np.where(right, LABELS, (LABELS + 1) % 10).tolist()


def board_state(khz: int) -> dict[str, Any]:
    return {"cpufreq": {"cpu0": {"khz": khz, "max_khz": 1_800_000, "governor": "ondemand"}},
            "temperatures_c": {"thermal_zone0 (cpu-thermal)": 61.0}, "load_average": [0.4, 0.5, 0.5]}  # fmt: skip


def rounds_result(
    medians: dict[str, float], drift: list[float], *, jitter: float = 0.0, runs: int = 20, seed: int = 0
) -> dict[str, Any]:
    """The runner's rounds document: each slot's runs around its median x the round's drift (x 1 +- jitter)."""
    rng = np.random.default_rng(seed)
    names = list(medians)
    slots = slot_plan(len(names))
    results = []
    for index, factor in enumerate(drift):
        timings = []
        for slot in round_order(index, len(slots)):
            level = medians[names[slots[slot]["model"]]] * factor * (1 + jitter * rng.uniform(-1, 1))
            values = level * (1 + 0.002 * rng.standard_normal(runs))
            timings.append({"slot": slot, "threads": 1, "samples": values.round(6).tolist()})
        order = round_order(index, len(slots))
        clock = int(1_800_000 / factor)  # a board slowed down by `factor` runs its clock that much lower
        results.append({"round": index, "order": order, "seconds": 0.1, "timings": timings,
                        "state_before": board_state(1_800_000), "state_after": board_state(clock)})  # fmt: skip
    return {
        "kind": "rounds", "runner_version": "3", "threads": 1, "thread_counts": [1], "rounds": len(drift),
        "warmup": 2, "runs": runs, "cooldown_s": 0.0, "energy_window_s": None, "board": {"power": None},
        "models": [{"path": f"{n}.tflite"} for n in names], "slots": slots, "round_results": results,
    }  # fmt: skip


def make_run(
    folder: Path,
    artifacts: dict[str, dict[str, Any]],
    *,
    drift: list[float],
    jitter: float = 0.0,
    seed: int = 0,
    target: str = "pi",
) -> Path:
    """A finished run folder timed in rounds. artifacts: name -> {bytes, right (bool per image), median (ms), sha?}."""
    (folder / LAYOUT.artifacts).mkdir(parents=True)
    (folder / LAYOUT.measurements).mkdir()
    np.savez(folder / LAYOUT.eval, x=np.zeros((N, 2), np.float32), y=LABELS, class_names=np.array(CLASSES),
             output_kind=np.array("softmax"))  # fmt: skip
    document = rounds_result({n: a["median"] for n, a in artifacts.items()}, drift, jitter=jitter, seed=seed)
    saved = {"target": target, "artifacts": list(artifacts), "device": {}, "result": document}
    (folder / f"{LAYOUT.rounds_stem(target)}.json").write_text(json.dumps(saved))
    timing = BoardTiming.from_file(saved)
    described, measured = [], []
    for name, spec in artifacts.items():
        sha = spec.get("sha") or hashlib.sha256(name.encode()).hexdigest()
        described.append({"name": name, "kind": "int8", "description": name, "format": "tflite",
                          "path": f"{name}.tflite", "sha256": sha, "file_bytes": spec["bytes"],
                          "gzip_bytes": spec["bytes"], "fits_budget": True})  # fmt: skip
        result = {
            "runtime": {"name": "ai_edge_litert", "version": "2.3.0"},
            "model": {"sha256": sha},
            "latency_ms": {"median": spec["median"], "runs": 5, "warmup": 1},  # its own first look: replaced
            "memory": {"peak_rss_bytes": 50_000_000},
            "accuracy": tally(predictions(spec["right"]), LABELS, CLASSES),
        }
        stem = LAYOUT.measurement_stem(name, target)
        (folder / f"{stem}.json").write_text(json.dumps({"target": target, "result": result}))
        rounds = {"unit": "ms", "kind": "rounds", "threads": 1, "rounds": timing.rounds(name)}
        (folder / f"{stem}.samples.json").write_text(json.dumps(rounds))
        measured.append(measurement_entry(name, target, result, f"{stem}.samples.json"))
    report = build_report(
        edgecompress_version="test", command=["edgecompress", "deploy"], request={},
        profile=load_profile("rpi4").to_dict(), model={"path": "model.h5", "sha256": "0" * 64, "output_kind": "softmax"},
        data={"source": "hand-made", "classes": CLASSES, "scaling": "0-1"}, host={}, targets=[{"name": target}],
        keras_reference={}, baseline=BASELINE, artifacts=described, measurements=measured, micro=None,
        significance=None, plan=None,
    )  # fmt: skip
    (folder / LAYOUT.report).write_text(json.dumps(report))
    return folder


def judged(folder: Path, **overrides: Any) -> dict[str, Any]:
    return write_all(folder, judging=Judging(overrides)).report


def right_on(count: int, *, skip: int = 0) -> np.ndarray:
    mask = np.zeros(N, dtype=bool)
    mask[skip : skip + count] = True
    return mask


STEADY = [1.0, 1.0, 1.0, 1.0, 1.0]
#: a board that heats up and throttles: every artifact of a round slows alike
HEATING = [1.0, 1.3, 1.7, 2.2, 2.8]


def test_a_significant_accuracy_gain_wins_among_artifacts_within_the_size_tolerance(tmp_path: Path) -> None:
    """The CIFAR-10 ResNet case: ptq-int8 95,904 B at 74.60 %, cqat 100,088 B at 82.40 %, as fast."""
    cqat = right_on(1496 - 40, skip=40) | right_on(192, skip=1500)  # 40 of ptq's right images wrong, 192 others right
    run = make_run(
        tmp_path / "run",
        {
            BASELINE: {"bytes": 380_000, "right": right_on(1496), "median": 1.00},
            "ptq-int8": {"bytes": 95_904, "right": right_on(1492), "median": 0.40},
            "cqat": {"bytes": 100_088, "right": cqat, "median": 0.401},
        },
        drift=STEADY,
        jitter=0.01,
    )
    assert (cqat.sum(), right_on(1492).sum()) == (1648, 1492)  # 82.40 % and 74.60 % of 2,000
    verdict = judged(run)["verdict"]

    assert verdict["recommended"] == "cqat"
    reason = verdict["reason"]
    assert "ptq-int8 is as small as cqat (95,904 bytes and 100,088 bytes: within the 5 % size tolerance)" in reason
    assert "ptq-int8 is equally fast as cqat (their ratio is within 3x the timing noise of ±" in reason
    p = stats.mcnemar_exact(right_on(1492), cqat).p_value
    assert p < 1e-20 and f"McNemar p = {p:.2g}" in reason
    assert "a significant accuracy gain over ptq-int8 (accuracy 74.60%" in reason
    assert "decided among artifacts within the size and latency tolerances" in reason
    # a stricter size tolerance keeps the old order: 4.4 % more bytes are then too many
    assert judged(run, size_tolerance_percent=2)["verdict"]["recommended"] == "ptq-int8"


def test_a_board_that_slows_down_between_rounds_does_not_move_a_comparison(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "run",
        {
            BASELINE: {"bytes": 400_000, "right": right_on(1800), "median": 2.0},
            "same-speed": {"bytes": 100_000, "right": right_on(1800), "median": 2.0},
            "faster": {"bytes": 200_000, "right": right_on(1800), "median": 1.6},  # truly 1.25x faster
        },
        drift=HEATING,
    )
    report = judged(run, prefer="latency")
    (target,) = report["verdict"]["targets"]
    entries = {e["artifact"]: e["evidence"] for e in target["artifacts"]}

    assert entries["same-speed"]["speed_vs_baseline"]["equal"]
    assert entries["faster"]["speed_vs_baseline"]["words"] == "1.25x faster than baseline-fp32"
    low, high = entries["faster"]["speed_vs_baseline"]["low"], entries["faster"]["speed_vs_baseline"]["high"]
    assert 1.2 < low <= 1.25 <= high < 1.3  # paired round by round: the drift cancels
    # unpaired, the drift swamps the difference: the two intervals of the medians overlap
    baseline, faster = entries[BASELINE]["latency_interval"], entries["faster"]["latency_interval"]
    assert faster["high"] > baseline["low"] and faster["rounds"] == 5
    assert report["verdict"]["recommended"] == "faster"
    assert report["timing"][0]["order"][1] == ["same-speed", f"{BASELINE} (again)", "faster", BASELINE]


def test_no_artifact_is_called_faster_by_less_than_the_boards_noise(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "run",
        {
            BASELINE: {"bytes": 400_000, "right": right_on(1800), "median": 1.0},
            "five-percent": {"bytes": 100_000, "right": right_on(1800), "median": 0.95},
        },
        drift=STEADY,
        jitter=0.08,  # every slot of every round lands within +-8 % of its level
        seed=3,
    )
    report = judged(run)
    verdict = report["verdict"]
    noise = verdict["targets"][0]["timing_noise"]

    assert 0.05 < noise["fraction"] < 0.25 and noise["artifact"] == BASELINE
    speed = verdict["targets"][0]["artifacts"][1]["evidence"]["speed_vs_baseline"]
    assert speed["equal"] and speed["words"].startswith("equally fast as baseline-fp32")
    assert report["timing"][0]["noise"]["percent"] == noise["percent"]
    aa = report["timing"][0]["noise_pair"]
    assert aa["equal"] and aa["words"].startswith(f"{BASELINE} (again) is equally fast as {BASELINE}")
    from edgecompress.decision.verdict import summary_lines

    assert f"Timing noise on pi: ±{noise['percent']:.1f} % (the baseline against itself)" in "\n".join(
        summary_lines(verdict)
    )


@pytest.mark.parametrize("tolerance, winner", [(3, "small"), (0.5, "fast")])
def test_latency_preference_ties_within_the_tolerance_times_the_noise(
    tmp_path: Path, tolerance: float, winner: str
) -> None:
    run = make_run(
        tmp_path / "run",
        {
            BASELINE: {"bytes": 400_000, "right": right_on(1800), "median": 1.0},
            "fast": {"bytes": 200_000, "right": right_on(1800), "median": 0.80},
            "small": {"bytes": 100_000, "right": right_on(1800), "median": 0.90},  # 1.125x slower than fast
        },
        drift=STEADY,
        jitter=0.06,
        seed=5,
    )
    verdict = judged(run, prefer="latency", latency_tolerance=tolerance)["verdict"]
    noise = verdict["targets"][0]["timing_noise"]["fraction"]

    assert 0.05 < noise < 0.3  # 3x the noise covers a 12.5 % difference; half of it does not
    assert verdict["recommended"] == winner
    if winner == "small":
        assert f"within {tolerance:g}x the timing noise of ±" in verdict["reason"]


def test_latencies_of_different_runs_are_compared_through_their_own_baselines(tmp_path: Path) -> None:
    """A tune compares trials measured minutes apart: a board twice as slow in the second run changes nothing."""
    first = make_run(tmp_path / "a", {BASELINE: {"bytes": 1, "right": right_on(9), "median": 1.0},
                                      "x": {"bytes": 1, "right": right_on(9), "median": 0.5}}, drift=STEADY)  # fmt: skip
    second = make_run(tmp_path / "b", {BASELINE: {"bytes": 1, "right": right_on(9), "median": 2.0},
                                       "y": {"bytes": 1, "right": right_on(9), "median": 1.0}}, drift=STEADY, seed=1)  # fmt: skip

    def timed(folder: Path, name: str) -> TimedInRounds:
        timing = BoardTiming.from_file(json.loads((folder / f"{LAYOUT.rounds_stem('pi')}.json").read_text()))
        return timing.timed(name, timing.noise())

    x, y = timed(first, "x"), timed(second, "y")
    ratio = rounds_ratio(x, y)
    assert not ratio.paired and ratio.low <= 1.0 <= ratio.high and ratio.ratio == pytest.approx(1.0, abs=0.01)
    assert stats.latency_order(ratio, 0.0, 3.0) == 0  # equally fast, though y's median is twice x's
    assert rounds_ratio(x, timed(first, BASELINE)).paired


def test_a_round_in_which_the_clock_fell_marks_every_latency_of_it(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "run",
        {
            BASELINE: {"bytes": 400_000, "right": right_on(1800), "median": 2.0},
            "cqat": {"bytes": 100_000, "right": right_on(1800), "median": 1.0},
        },
        drift=[1.0, 1.0, 1.5, 1.0, 1.0],  # round 3: the clock fell from 1.8 to 1.2 GHz
    )
    report = judged(run)
    (timing,) = report["timing"]

    assert timing["marked_rounds"] == [{"round": 2, "marks": ["clock changed: cpu0 1.80 GHz → 1.20 GHz"]}]
    assert timing["board_summary"]["clock_ghz"] == [1.2, 1.8] and timing["board_summary"]["temperature_c"] == [
        61.0,
        61.0,
    ]
    for m in report["measurements"]:
        assert m["latency_marks"] == ["round 3: clock changed: cpu0 1.80 GHz → 1.20 GHz"]
    assert {row["latency_marked_rounds"] for row in report["comparison"]} == {1}
    markdown = (run / "report.md").read_text()
    assert "pi, round 3: clock changed: cpu0 1.80 GHz → 1.20 GHz" in markdown
    assert "| 1 (1 round marked) |" in markdown and "| 2.00 (1 round marked) |" in markdown  # the verdict table
    assert "board state while timed: pi: clock 1.20-1.80 GHz; governor ondemand; hottest sensor 61.0 °C" in markdown
