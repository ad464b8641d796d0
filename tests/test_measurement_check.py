"""Whatever a board sends back is checked before it can reach a report.

Each case starts from a real measurement (the runner on this machine, the tiny digits
model) and changes one figure the way a broken or edited board could; the check must
name that figure. The board's summaries are recomputed from its raw data (latency
samples, per-image predictions) against what the host itself sent and holds.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from board_pythons import tampering_python

from edgecompress.targets import MeasureJob, Measurement
from edgecompress.targets.fleet import measure_fleet
from edgecompress.targets.local import LocalTarget
from edgecompress.targets.measurement_check import Expected, MeasurementRejected, check_measurement

RUNS = 7


class Board(LocalTarget):
    """This machine under a board's name, with the board's own `python`."""

    def __init__(self, name: str, python: str | None = None) -> None:
        super().__init__(python)
        self.name = name


@pytest.fixture(scope="module")
def job(tiny_tflite_fp32: Path, eval_npz: Path) -> MeasureJob:
    return MeasureJob(tiny_tflite_fp32, eval_npz, warmup=1, runs=RUNS)


@pytest.fixture(scope="module")
def honest(job: MeasureJob) -> Measurement:
    with LocalTarget() as here:
        return here.measure(job)


def tampered(measurement: Measurement, edit: Callable[[dict[str, Any]], Any]) -> Measurement:
    changed = copy.deepcopy(measurement)
    edit(changed.result)
    return changed


def swap_class_counts(result: dict[str, Any]) -> None:
    """Move one image from class 0 to class 1: the total still adds up, the classes do not."""
    per_class = result["accuracy"]["per_class"]
    per_class["0"]["n"] -= 1
    per_class["1"]["n"] += 1


def boast(result: dict[str, Any]) -> None:
    """Claim a perfect score consistently in every summary, but leave the predictions as measured."""
    accuracy = result["accuracy"]
    accuracy["correct"] = accuracy["n"]
    accuracy["overall"] = 1.0
    for entry in accuracy["per_class"].values():
        entry["correct"], entry["accuracy"] = entry["n"], 1.0


def first_prediction(value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(result: dict[str, Any]) -> None:
        result["accuracy"]["predictions"][0] = value

    return edit


IMPOSSIBLE: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "negative median": (lambda r: r["latency_ms"].update(median=-0.5), "latency_ms.median is -0.5"),
    "NaN median": (lambda r: r["latency_ms"].update(median=float("nan")), "latency_ms.median is nan"),
    "text for a number": (lambda r: r["latency_ms"].update(median="fast"), "latency_ms.median is 'fast'"),
    "p90 the samples do not give": (
        lambda r: r["latency_ms"].update(p90=r["latency_ms"]["p90"] * 10),
        "latency_ms.p90 is",
    ),
    "too few samples": (
        lambda r: r["latency_ms"]["samples"].pop(),
        f"latency_ms.samples has {RUNS - 1} values but {RUNS} timed runs",
    ),
    "an infinite sample": (
        lambda r: r["latency_ms"]["samples"].__setitem__(2, float("inf")),
        "latency_ms.samples[2] is inf",
    ),
    "a zero sample": (lambda r: r["latency_ms"]["samples"].__setitem__(0, 0.0), "latency_ms.samples[0] is 0.0"),
    "other run count": (lambda r: r["latency_ms"].update(runs=RUNS + 1), f"latency_ms.runs is {RUNS + 1} but {RUNS}"),
    "negative load time": (lambda r: r.update(load_ms=-1.0), "load_ms is -1.0"),
    "more memory than the board has": (
        lambda r: r["memory"].update(peak_rss_bytes=2**50),
        "memory.peak_rss_bytes is 1024.0 TiB, more than the board's RAM",
    ),
    "negative memory": (lambda r: r["memory"].update(vm_rss_bytes=-4096), "memory.vm_rss_bytes is -4096"),
    "accuracy not correct / n": (
        lambda r: r["accuracy"].update(overall=1.0),
        "accuracy.overall is 1 but the predictions sent give",
    ),
    "a consistent boast": (boast, "accuracy.correct is 360 but the predictions sent get"),
    "class counts that do not match the set": (swap_class_counts, "accuracy.per_class.0.n is"),
    "a class name the set does not have": (
        lambda r: r["accuracy"]["per_class"]["3"].update(name="[red]cat[/red]"),
        "accuracy.per_class.3.name is '[red]cat[/red]'",
    ),
    "an eval set of another size": (
        lambda r: r["accuracy"].update(n=1000),
        "accuracy.n is 1000 but the evaluation set sent has 360 images",
    ),
    "a prediction missing": (
        lambda r: r["accuracy"]["predictions"].pop(),
        "accuracy.predictions has 359 values for the 360 images",
    ),
    "a class that does not exist": (first_prediction(10), "accuracy.predictions[0] is 10, not a class index 0..9"),
    "a prediction that is not a class": (first_prediction(True), "accuracy.predictions[0] is True"),
    "a confusion matrix of another run": (
        lambda r: r["accuracy"]["confusion"][0].__setitem__(0, 0),
        "accuracy.confusion does not match",
    ),
    "another model": (lambda r: r["model"].update(sha256="0" * 64), "model.sha256 is '000"),
    "another model size": (lambda r: r["model"].update(bytes=r["model"]["bytes"] + 1), "model.bytes is"),
    "threads as a flag": (lambda r: r.update(threads=True), "threads is True"),
    "no latency section": (lambda r: r.pop("latency_ms"), "latency_ms.samples is missing"),
}


def test_an_honest_measurement_passes(honest: Measurement, job: MeasureJob) -> None:
    assert check_measurement(honest, Expected.for_job(job)) is honest


@pytest.mark.parametrize("case", list(IMPOSSIBLE))
def test_an_impossible_figure_is_rejected_by_name(case: str, honest: Measurement, job: MeasureJob) -> None:
    edit, named = IMPOSSIBLE[case]

    with pytest.raises(MeasurementRejected) as caught:
        check_measurement(tampered(honest, edit), Expected.for_job(job))

    error = caught.value
    assert error.step == "check" and error.problem.startswith("[local] check failed:")
    assert named in error.problem
    assert "Nothing from this measurement was stored" in error.fix


def test_a_result_that_is_not_an_object_is_rejected(job: MeasureJob) -> None:
    with pytest.raises(MeasurementRejected) as caught:
        check_measurement(Measurement("pi-a", ["not", "a", "result"]), Expected.for_job(job))  # type: ignore[arg-type]

    assert "the result is list" in caught.value.problem


def test_every_impossible_figure_is_counted(honest: Measurement, job: MeasureJob) -> None:
    def many(result: dict[str, Any]) -> None:
        for stat in ("median", "p90", "p99", "mean", "min", "max"):
            result["latency_ms"][stat] = -1.0
        result["load_ms"] = float("inf")

    with pytest.raises(MeasurementRejected) as caught:
        check_measurement(tampered(honest, many), Expected.for_job(job))

    assert len(caught.value.problems) == 7 and "(and 2 more)" in caught.value.problem


def test_without_a_ram_figure_only_the_ram_limit_is_skipped(honest: Measurement, job: MeasureJob) -> None:
    no_proc = copy.deepcopy(honest)
    no_proc.device["memory"] = {"total_bytes": None, "available_bytes": None}
    no_proc.result["memory"]["peak_rss_bytes"] = 2**50

    assert check_measurement(no_proc, Expected.for_job(job)) is no_proc
    no_proc.result["memory"]["peak_rss_bytes"] = 0
    with pytest.raises(MeasurementRejected):
        check_measurement(no_proc, Expected.for_job(job))


def test_a_fleet_keeps_a_tampering_board_out_and_the_others_in(job: MeasureJob, tmp_path: Path) -> None:
    """The check sits where every target's result enters: measure_fleet, for local and SSH boards alike."""
    liar = tampering_python(tmp_path / "python3", 'doc["accuracy"]["overall"] = 0.999')

    result = measure_fleet([Board("honest"), Board("liar", str(liar))], job)

    assert list(result.measurements) == ["honest"]
    error = result.errors["liar"]
    assert (
        error.step == "check"
        and "[liar] check failed" in error.problem
        and "accuracy.overall is 0.999" in error.problem
    )
    assert result.spread["accuracy"]["n"] == 1
    assert result.to_dict()["boards"][1]["error"]["step"] == "check"


#: answers no runner gives, each as a tampering python's edit, and what the error must say
HOSTILE: dict[str, tuple[str, str, str]] = {
    "latency section as a list": ('doc["latency_ms"] = [1, 2]', "--model", "latency_ms.runs is missing"),
    "NaN in the JSON": ('doc["latency_ms"]["median"] = float("nan")', "--model", "latency_ms.median is nan"),
    "an error that is not an object": ('doc["error"] = "boom"', "--model", "error 'boom'"),
    "JSON nested too deeply": ('raw = b"[" * 100000 + b"]" * 100000', "--model", "without a JSON answer"),
    "a list for an answer": ("doc = [doc]", "--model", "answered list, not a JSON object"),
    "runtimes as a list": (
        'doc["runtimes"] = ["ai_edge_litert"]',
        "--probe",
        "runtimes is ['ai_edge_litert'], not an object",
    ),
    "RAM as text": ('doc["memory"]["total_bytes"] = "4 GB"', "--probe", "memory.total_bytes is '4 GB'"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_answer_fails_that_board_only_and_never_with_a_traceback(
    case: str, job: MeasureJob, tmp_path: Path
) -> None:
    edit, when, said = HOSTILE[case]
    hostile = tampering_python(tmp_path / "python3", edit, when=when)

    result = measure_fleet([Board("honest"), Board("hostile", str(hostile))], job)

    assert list(result.measurements) == ["honest"]
    assert said in result.errors["hostile"].problem


def emulated(honest: Measurement, per_inference: dict[str, Any]) -> Measurement:
    """The honest accuracy, reported the way an emulated microcontroller reports its cost: instructions, no latency."""

    def edit(result: dict[str, Any]) -> None:
        result["latency_ms"] = {}
        result["instructions"] = {"per_inference": {"samples": 360, **per_inference}}

    return tampered(honest, edit)


def test_an_emulated_board_is_checked_on_its_instruction_counts_and_its_predictions(
    honest: Measurement, job: MeasureJob
) -> None:
    expected = Expected.for_job(job)
    good = emulated(honest, {"min": 9.0e5, "median": 1.0e6, "max": 1.2e6})
    assert check_measurement(good, expected) is good
    for bad, said in (
        ({"min": 9.0e5, "median": 2.0e6, "max": 1.2e6}, "out of order"),
        ({"min": 0.0, "median": 1.0e6, "max": 1.2e6}, "instructions.per_inference.min"),
    ):
        with pytest.raises(MeasurementRejected, match=said):
            check_measurement(emulated(honest, bad), expected)
    with pytest.raises(MeasurementRejected, match="accuracy"):
        check_measurement(tampered(good, boast), expected)
