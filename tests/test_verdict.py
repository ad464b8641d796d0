"""The verdict on hand-made run folders: exact expected decisions, ties, overlapping intervals, fleets.

Each folder is written the way deploy writes one (report.json from `build_report`, the
runner's measurement files with per-sample predictions, latency samples, eval.npz), with
figures chosen so the expected verdict is known in advance.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgecompress.cli import main
from edgecompress.decision.judging import Judging
from edgecompress.evaluation import tally
from edgecompress.profiles import load_profile
from edgecompress.reporting import write_all
from edgecompress.reporting.schema import SCHEMA_VERSION, build_report, measurement_entry
from edgecompress.run_layout import LAYOUT

CLASSES = ["cat", "dog", "frog", "ship"]
N_PER_CLASS = 250  # 1000 images: one image is 0.1 point
LABELS = np.repeat(np.arange(len(CLASSES)), N_PER_CLASS)
BASE_RIGHT = 0.9  # the baseline gets 90% of every class right


def predictions(wrong_extra: dict[int, int] | None = None, fixed: dict[int, int] | None = None) -> list[int]:
    """The baseline's predictions, with `wrong_extra[c]` more images of class c wrong (or right when negative)."""
    predicted = LABELS.copy()
    for index in range(len(CLASSES)):
        members = np.flatnonzero(LABELS == index)
        wrong = int(N_PER_CLASS * (1 - BASE_RIGHT)) + (wrong_extra or {}).get(index, 0)
        predicted[members[:wrong]] = (index + 1) % len(CLASSES)
    return predicted.tolist()


def samples(median: float, spread: float = 0.02, n: int = 100, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return (median + spread * rng.standard_normal(n)).round(5).tolist()


def make_run(
    folder: Path, artifacts: dict[str, dict[str, Any]], *, targets: tuple[str, ...] = ("pi",), profile: str = "rpi4"
) -> Path:
    """A finished run folder. artifacts: name -> {bytes, predictions or {target: predictions}, latency or {target: samples}, rss}."""
    (folder / LAYOUT.artifacts).mkdir(parents=True)
    (folder / LAYOUT.measurements).mkdir()
    np.savez(
        folder / LAYOUT.eval,
        x=np.zeros((len(LABELS), 2), np.float32),
        y=LABELS,
        class_names=np.array(CLASSES),
        output_kind=np.array("softmax"),
    )
    described, measured = [], []
    for name, spec in artifacts.items():
        sha = hashlib.sha256(name.encode()).hexdigest()
        described.append(
            {
                "name": name,
                "kind": "int8",
                "description": name,
                "format": "tflite",
                "path": f"{name}.tflite",
                "sha256": sha,
                "file_bytes": spec["bytes"],
                "gzip_bytes": spec["bytes"],
                "fits_budget": True,
                **({"macs": {"total": spec["macs"], "by_layer": []}} if "macs" in spec else {}),
                **spec.get("fields", {}),  # e.g. a firmware's flash_bytes and ram_bytes
            }
        )
        for target in targets:
            measured.append(_measure(folder, name, target, sha, spec))
    report = build_report(
        edgecompress_version="test",
        command=["edgecompress", "deploy"],
        request={},
        profile=load_profile(profile).to_dict(),
        model={"path": "model.h5", "sha256": "0" * 64, "output_kind": "softmax"},
        data={"source": "hand-made", "classes": CLASSES, "scaling": "0-1"},
        host={},
        targets=[{"name": t} for t in targets],
        keras_reference={},
        baseline="baseline-fp32",
        artifacts=described,
        measurements=measured,
        micro=None,
        significance=None,
        plan=None,
    )
    (folder / LAYOUT.report).write_text(json.dumps(report))
    return folder


def _per_target(value: Any, target: str) -> Any:
    return value[target] if isinstance(value, dict) else value


def _measure(folder: Path, name: str, target: str, sha: str, spec: dict[str, Any]) -> dict[str, Any]:
    predicted = _per_target(spec.get("predictions") or predictions(), target)
    latency = _per_target(spec.get("latency") or [], target)
    result = {
        "runtime": {"name": "ai_edge_litert", "version": "2.3.0"},
        "model": {"sha256": sha},
        "latency_ms": {
            "median": float(np.median(latency)),
            "p90": float(np.percentile(latency, 90)),
            "runs": len(latency),
            "warmup": 5,
        }
        if latency
        else {},
        "memory": {"peak_rss_bytes": spec.get("rss", 50_000_000)},
        "accuracy": tally(predicted, LABELS, CLASSES),
        **spec.get("result", {}),  # e.g. an emulated board's instruction counts
    }
    stem = LAYOUT.measurement_stem(name, target)
    (folder / f"{stem}.json").write_text(json.dumps({"target": target, "result": result}))
    (folder / f"{stem}.samples.json").write_text(json.dumps(latency))
    return measurement_entry(name, target, result, f"{stem}.samples.json")


def verdict_of(folder: Path, **overrides: Any) -> dict[str, Any]:
    return write_all(folder, judging=Judging(overrides)).report["verdict"]


BASE = {"bytes": 400_000, "latency": samples(10.0), "macs": 1_000_000}


def test_the_smallest_passing_artifact_is_recommended_with_its_reasons(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "run",
        {
            "baseline-fp32": BASE,
            "ptq-int8": {
                "bytes": 100_000,
                "latency": samples(5.0),
                "predictions": predictions({0: 2}),
                "macs": 1_000_000,
            },
            "cqat": {
                "bytes": 60_000,
                "latency": samples(5.1),
                "predictions": predictions({0: 3, 1: 2}),
                "macs": 400_000,
            },
            "cqat-binary": {"bytes": 20_000, "latency": samples(4.0), "predictions": predictions({0: 30, 1: 20})},
        },
    )
    verdict = verdict_of(run)
    assert verdict["recommended"] == "cqat" and verdict["passed"]
    assert "smallest passing artifact (60,000 bytes)" in verdict["reason"]
    assert "within noise, McNemar" in verdict["reason"] and "theoretical speed-up 2.50x from MACs" in verdict["reason"]
    (target,) = verdict["targets"]
    binary = next(e for e in target["artifacts"] if e["artifact"] == "cqat-binary")
    assert binary["first_failure"]["rule"] == "accuracy_drop" and binary["first_failure"]["value"] == 5.0
    assert "accuracy drop 5.00 pt > 1 pt allowed (significant" in binary["first_failure"]["text"]
    markdown = (run / "report.md").read_text()
    assert markdown.index("## Verdict") < markdown.index("## At a glance")  # the verdict comes first
    assert "Ship cqat:" in markdown
    rows: dict[str, str] = {}
    for line in markdown.splitlines():  # the verdict table is the first one in the file
        if line.startswith("| "):
            rows.setdefault(line.split(" | ")[0].strip("| "), line)
    assert "400,000" in rows["cqat"] and "2.50x" in rows["cqat"]  # MACs beside the measured speed-up
    assert "MACs not counted" in rows["cqat-binary"]  # that artifact has no MAC figure


def test_equal_sizes_tie_and_the_faster_wins(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "run",
        {
            "baseline-fp32": BASE,
            "a": {"bytes": 50_000, "latency": samples(6.0)},
            "b": {"bytes": 50_000, "latency": samples(5.0)},
        },
    )
    verdict = verdict_of(run)
    assert verdict["recommended"] == "b"
    assert "as small as" in verdict["reason"] and "the fastest of them" in verdict["reason"]


def test_overlapping_latency_intervals_are_equally_fast_so_size_decides(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "run",
        {
            "baseline-fp32": BASE,
            "fast-big": {"bytes": 90_000, "latency": samples(5.00, spread=0.5, seed=1)},
            "slow-small": {"bytes": 40_000, "latency": samples(5.07, spread=0.5, seed=2)},  # "1.01x slower": noise
        },
    )
    verdict = verdict_of(run, prefer="latency")
    assert verdict["recommended"] == "slow-small"
    assert "equally fast as" in verdict["reason"] and "the smallest of them" in verdict["reason"]


def test_separate_intervals_make_the_faster_one_win_on_latency(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "run",
        {
            "baseline-fp32": BASE,
            "fast-big": {"bytes": 90_000, "latency": samples(4.0)},
            "slow-small": {"bytes": 40_000, "latency": samples(5.0)},
        },
    )
    assert verdict_of(run, prefer="latency")["recommended"] == "fast-big"
    assert verdict_of(run, prefer="size")["recommended"] == "slow-small"


def test_prefer_accuracy_treats_a_difference_mcnemar_cannot_see_as_a_tie(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "run",
        {
            "baseline-fp32": BASE,
            "better-big": {"bytes": 90_000, "latency": samples(5.0), "predictions": predictions({0: -2})},
            "worse-small": {"bytes": 40_000, "latency": samples(5.0), "predictions": predictions({0: 1})},
        },
    )
    verdict = verdict_of(run, prefer="accuracy")
    assert verdict["recommended"] == "worse-small" and "as accurate as" in verdict["reason"]


def test_one_class_hurt_badly_fails_even_when_the_average_looks_fine(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "run",
        {
            "baseline-fp32": BASE,
            "cqat": {
                "bytes": 50_000,
                "latency": samples(5.0),
                "predictions": predictions({2: 25, 0: -6, 1: -6, 3: -6}),
            },
        },
    )
    verdict = verdict_of(run)
    assert verdict["recommended"] is None
    failure = verdict["targets"][0]["artifacts"][1]["first_failure"]
    assert failure["rule"] == "class_drop" and failure["text"].startswith("class frog lost 10.00 pt")
    assert verdict["closest"]["rule"] == "class_drop"
    assert any("--max-class-drop 10" in step for step in verdict["next_steps"])
    assert any("baseline passes" in step for step in verdict["next_steps"])
    assert verdict_of(run, max_class_drop_points=12)["recommended"] == "cqat"


def test_impacted_classes_by_the_sigma_rule(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "run",
        {
            "baseline-fp32": {
                **BASE,
                "predictions": predictions({0: -20, 3: 20}),
            },  # recalls 98, 90, 90, 82: sigma 5.66 pt
            "cqat": {
                "bytes": 50_000,
                "latency": samples(5.0),
                "predictions": predictions({0: -20, 3: 20, 1: 15, 2: 5}),
            },
        },
    )
    verdict = verdict_of(run, max_impacted_classes=0, max_class_drop_points=100, max_accuracy_drop_points=5)
    impacted = verdict["targets"][0]["artifacts"][1]["evidence"]["impacted_classes"]
    assert impacted["rule"] == "sigma" and impacted["threshold_points"] == pytest.approx(5.6569, abs=1e-3)
    assert [c["name"] for c in impacted["classes"]] == ["dog"]  # -6 pt moves more than sigma; frog's -2 pt does not
    assert verdict["recommended"] is None and verdict["closest"]["rule"] == "impacted_classes"
    # a threshold, not a test: "impacted", never "significantly impacted"
    assert verdict["closest"]["text"].startswith("1 impacted class (dog -6.0 pt; sigma rule, threshold 5.66 pt)")


def test_latency_ceiling_on_the_median_or_p90(tmp_path: Path) -> None:
    tail = samples(5.0, spread=0.01)[:85] + [9.0] * 15  # median 5 ms, p90 9 ms
    run = make_run(tmp_path / "run", {"baseline-fp32": BASE, "cqat": {"bytes": 50_000, "latency": tail}})
    assert verdict_of(run, max_latency_ms=6)["recommended"] == "cqat"
    verdict = verdict_of(run, max_latency_ms=6, latency_statistic="p90")
    assert verdict["recommended"] is None and verdict["closest"]["text"].startswith("p90 latency 9 ms > 6 ms")


def test_a_fleet_needs_every_board_to_pass(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "run",
        {
            "baseline-fp32": {**BASE, "latency": {"pi": samples(10.0), "jetson": samples(4.0)}},
            "small": {
                "bytes": 30_000,
                "latency": {"pi": samples(5.0), "jetson": samples(9.0)},
            },  # too slow on the jetson
            "medium": {"bytes": 60_000, "latency": {"pi": samples(6.0), "jetson": samples(3.0)}},
        },
        targets=("pi", "jetson"),
    )
    verdict = verdict_of(run, max_latency_ms=8)
    assert verdict["scope"] == "fleet" and verdict["recommended"] == "medium"
    assert [t["recommended"] for t in verdict["targets"]] == ["small", "medium"]
    small = next(e for e in verdict["fleet"]["artifacts"] if e["artifact"] == "small")
    assert [(f["target"], f["rule"]) for f in small["failures"]] == [("jetson", "latency")]
    assert "all 2 boards" in verdict["reason"]


def test_report_gate_exits_with_its_own_code_and_names_the_rule(tmp_path: Path, capsys) -> None:
    run = make_run(
        tmp_path / "run",
        {"baseline-fp32": BASE, "cqat": {"bytes": 50_000, "latency": samples(5.0), "predictions": predictions({1: 8})}},
    )
    assert main(["report", str(run), "--gate", "-q"]) == 0  # 0.8 pt <= 1 pt
    assert main(["report", str(run), "--gate", "-q", "--max-accuracy-drop", "0.5"]) == 10
    err = capsys.readouterr().err
    assert "Gate failed" in err and "accuracy drop 0.80 pt > 0.5 pt allowed" in err and "--max-accuracy-drop 0.8" in err
    report = json.loads((run / "report.json").read_text())
    assert report["verdict"]["rules_source"].endswith("re-judged with --max-accuracy-drop 0.5")
    assert main(["report", str(run), "--json"]) == 0  # re-judged under the run's own rules again
    assert json.loads(capsys.readouterr().out)["verdict"]["recommended"] == "cqat"


@pytest.mark.parametrize(
    "args, words",
    [
        (["--max-accuracy-drop", "-1"], "--max-accuracy-drop -1"),
        (
            ["--prefer", "speed"],
            "'speed' is not one of 'size', 'latency', 'accuracy'",
        ),  # a choice, refused by the parser
        (["--latency-statistic", "p95"], "'p95' is not one of 'median', 'p90'"),
        (["--max-latency-ms", "0"], "--max-latency-ms 0"),
    ],
)
def test_impossible_rules_are_refused_before_anything_is_judged(
    tmp_path: Path, capsys, args: list[str], words: str
) -> None:
    run = make_run(tmp_path / "run", {"baseline-fp32": BASE, "cqat": {"bytes": 50_000, "latency": samples(5.0)}})
    before = (run / "report.json").read_text()
    assert main(["report", str(run), *args]) == 2
    assert words in " ".join(capsys.readouterr().err.replace("│", " ").split())  # a usage error comes in a box
    assert (run / "report.json").read_text() == before


def test_an_older_report_is_judged_and_a_folder_without_samples_says_what_it_could_not_test(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", {"baseline-fp32": BASE, "cqat": {"bytes": 50_000, "latency": samples(5.0)}})
    report = json.loads((run / "report.json").read_text())
    report["schema_version"] = 3
    (run / "report.json").write_text(json.dumps(report))
    for file in (run / LAYOUT.measurements).glob("*.samples.json"):
        file.unlink()
    (run / LAYOUT.eval).unlink()
    verdict = verdict_of(run)
    assert verdict["recommended"] == "cqat" and "(default rules)" not in verdict["rules_source"]
    assert any("latency samples missing" in note for note in verdict["notes"])
    assert any("per-sample predictions or eval.npz missing" in note for note in verdict["notes"])
    assert "not tested" in verdict["reason"]
    assert json.loads((run / "report.json").read_text())["schema_version"] == SCHEMA_VERSION


def test_a_run_without_measurements_says_so(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", {"baseline-fp32": BASE})
    report = json.loads((run / "report.json").read_text())
    report["measurements"], report["comparison"], report["per_class"] = [], [], []
    (run / "report.json").write_text(json.dumps(report))
    from edgecompress.decision.verdict import decide
    from edgecompress.profiles import Acceptance

    verdict = decide(report, None, Acceptance())
    assert verdict["recommended"] is None and "Nothing was measured" in verdict["reason"]


def test_welch_over_seeds_replaces_the_sigma_rule(tmp_path: Path, capsys) -> None:
    runs = []
    for seed, extra in enumerate((12, 14, 13)):  # the dog class loses about 5 pt on every seed
        runs.append(
            make_run(
                tmp_path / f"seed{seed}",
                {
                    "baseline-fp32": {**BASE, "predictions": predictions({1: seed})},
                    "cqat": {"bytes": 50_000, "latency": samples(5.0), "predictions": predictions({1: seed + extra})},
                },
            )
        )
    assert (
        main(
            [
                "report",
                str(runs[0]),
                "-q",
                "--max-impacted-classes",
                "0",
                "--max-class-drop",
                "10",
                "--max-accuracy-drop",
                "5",
                "--seed-run",
                str(runs[1]),
                "--seed-run",
                str(runs[2]),
            ]
        )
        == 0
    )
    verdict = json.loads((runs[0] / "report.json").read_text())["verdict"]
    impacted = verdict["targets"][0]["artifacts"][1]["evidence"]["impacted_classes"]
    assert impacted["rule"] == "welch" and impacted["seeds"] == 3 and impacted["fdr"] == "benjamini-hochberg"
    assert [c["name"] for c in impacted["classes"]] == ["dog"] and verdict["recommended"] is None
    assert impacted["classes"][0]["q_value"] >= impacted["classes"][0]["p_value"]
    assert "1 significantly impacted class (dog" in verdict["targets"][0]["artifacts"][1]["first_failure"]["text"]


def test_welch_over_many_classes_controls_the_false_discovery_rate() -> None:
    """Forty classes whose recall only wobbles from seed to seed: a few raw p-values fall under 0.05 by chance
    alone, and the adjusted ones do not; one class that really lost recall stays impacted."""
    from edgecompress.decision.evidence import impacted_over_seeds

    rng = np.random.default_rng(21)  # in these figures two steady classes pass p < 0.05 by chance
    n_classes, seeds = 40, 4
    reports = []
    for _seed in range(seeds):
        rows = []
        for index in range(n_classes):
            base = 0.80 + 0.03 * rng.standard_normal()
            lost = 0.15 if index == 7 else 0.0
            rows.append({"index": index, "name": f"c{index}",
                         "recall": {"baseline-fp32": base, "cqat": 0.80 + 0.03 * rng.standard_normal() - lost}})  # fmt: skip
        reports.append({"baseline": "baseline-fp32", "per_class": [{"target": "pi", "classes": rows}]})
    found = impacted_over_seeds(reports, 0.05)[("cqat", "pi")]
    from edgecompress.decision import statistics as stats

    raw = [
        stats.welch([r["per_class"][0]["classes"][i]["recall"]["baseline-fp32"] for r in reports],
                    [r["per_class"][0]["classes"][i]["recall"]["cqat"] for r in reports]).p_value
        for i in range(n_classes)
    ]  # fmt: skip
    assert sum(p < 0.05 for i, p in enumerate(raw) if i != 7) == 2  # chance alone, before the adjustment
    assert [c["name"] for c in found["classes"]] == ["c7"] and found["classes_tested"] == n_classes


def _firmware(flash: int, instructions: float, wrong_extra: dict[int, int] | None = None) -> dict[str, Any]:
    """A firmware measured on an emulated board: flash and RAM of its ELF, instruction counts, no latency."""
    return {
        "bytes": flash,
        "fields": {"flash_bytes": flash, "ram_bytes": 100_000, "firmware_of": "x"},
        "predictions": predictions(wrong_extra),
        "rss": None,
        "result": {"instructions": {"per_inference": {"median": instructions, "samples": 1000}}},
    }


def test_a_microcontroller_verdict_judges_firmwares_on_their_own_flash_against_the_host_baseline(
    tmp_path: Path,
) -> None:
    baseline = {"bytes": 400_000, "rss": None, "result": {"reference_for": {"target": "qemu", "what": "on the host"}}}
    run = make_run(
        tmp_path / "run",
        {
            "baseline-fp32": baseline,
            "cqat-firmware": _firmware(200_000, 9e6, {0: 2}),
            "ptq-int8-firmware": _firmware(600_000, 8e6),  # over the 512 KiB flash budget
        },
        targets=("qemu",),
        profile="arduino-nano-33-ble",
    )
    verdict = verdict_of(run)
    assert verdict["recommended"] == "cqat-firmware"
    assert "9,000,000 instructions per inference on qemu" in verdict["reason"]
    entries = {e["artifact"]: e for e in verdict["targets"][0]["artifacts"]}
    failure = entries["ptq-int8-firmware"]["first_failure"]
    assert failure["rule"] == "budget"
    assert failure["text"] == (
        "the firmware's flash (the model, the TFLite Micro interpreter and kernels, the application) needs 600,000 "
        "bytes, over the 524,288-byte flash_budget_bytes by 75,712 bytes (14%)"
    )
    budget = next(c for c in entries["cqat-firmware"]["checks"] if c["rule"] == "budget")
    assert budget["passed"] and "RAM the model takes while running: 100,000 of 163,840 bytes" in budget["text"]
    assert entries["cqat-firmware"]["evidence"]["accuracy_test"]["test"] == "mcnemar-exact"
    assert any("On qemu the baseline's accuracy is on the host" in note for note in verdict["notes"])


def test_equal_firmwares_tie_on_instructions_within_one_percent(tmp_path: Path) -> None:
    baseline = {"bytes": 400_000, "rss": None, "result": {"reference_for": {"target": "qemu", "what": "on the host"}}}
    run = make_run(
        tmp_path / "run",
        {
            "baseline-fp32": baseline,
            "a-firmware": _firmware(300_000, 10.0e6),
            "b-firmware": _firmware(301_000, 9.95e6),  # as small (within 2%), as fast (within 1%)
            "c-firmware": _firmware(302_000, 8.0e6),  # as small, and 20% fewer instructions
        },
        targets=("qemu",),
        profile="arduino-nano-33-ble",
    )
    verdict = verdict_of(run)
    assert verdict["recommended"] == "c-firmware"
    assert "the fastest of them (8,000,000 instructions per inference)" in verdict["reason"]
