"""`edgecompress deploy` end to end on the local target, and how it refuses bad input.

These mirror the README: train the example model, deploy it for a profile, read report.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import edgecompress
from edgecompress.cli import main
from edgecompress.reporting.schema import SCHEMA_VERSION
from edgecompress.targets.energy import NOT_MEASURED

pytestmark = pytest.mark.slow  # deploys, fine-tunes, SSH boards or firmware builds: `pytest -m 'not slow'` skips them


def test_deploy_writes_a_finished_run_folder_with_artifacts_and_report(rpi4_run) -> None:
    run_dir = rpi4_run.run_dir
    assert run_dir.is_dir() and not run_dir.name.endswith((".partial", ".failed"))
    report = json.loads((run_dir / "report.json").read_text())
    assert report["schema"] == "edgecompress.report" and report["schema_version"] == SCHEMA_VERSION
    names = [a["name"] for a in report["artifacts"]]
    plan = json.loads((run_dir / "plan.json").read_text())
    assert names == ["baseline-fp32", "ptq-int8", plan["strategy"], plan["strategy"] + "-onnx"]
    assert (run_dir / "significance.json").is_file() and (run_dir / "id_profile.png").is_file()
    for artifact in report["artifacts"]:
        assert (run_dir / "artifacts" / artifact["path"]).is_file()
        assert 0 < artifact["gzip_bytes"] <= artifact["file_bytes"] + 64
    assert (run_dir / "deploy.log").is_file() and (run_dir / "request.json").is_file()


def test_int8_is_smaller_and_as_accurate_as_fp32_on_the_device(rpi4_run) -> None:
    report = rpi4_run.report
    rows = {row["artifact"]: row for row in report["comparison"]}
    assert rows["ptq-int8"]["file_bytes"] < rows["baseline-fp32"]["file_bytes"] / 2.5
    assert abs(rows["ptq-int8"]["accuracy_delta_points"]) <= 2.0
    fp32 = next(m for m in report["measurements"] if m["artifact"] == "baseline-fp32")
    assert fp32["accuracy"]["overall"] == pytest.approx(report["keras_reference"]["overall"], abs=0.005)


def test_every_measurement_has_latency_memory_and_per_class_accuracy(rpi4_run) -> None:
    for m in rpi4_run.report["measurements"]:
        latency = m["latency_ms"]  # 5 warm-up and 10 timed runs, spread over 5 interleaved rounds
        assert (latency["runs"], latency["warmup"], latency["rounds"]) == (10, 5, 5)
        assert 0 < latency["min"] <= latency["median"] <= latency["max"] and latency["p90"] <= latency["p99"]
        assert m["memory"]["peak_rss_bytes"] > 10_000_000
        assert set(m["accuracy"]["per_class"]) == {str(d) for d in range(10)}
        assert m["accuracy"]["n"] == 200
        samples = json.loads((rpi4_run.run_dir / m["latency_samples_file"]).read_text())
        assert samples["kind"] == "rounds" and [len(r) for r in samples["rounds"]] == [2] * 5
        assert m["energy"] == {"measured": False, "reason": NOT_MEASURED}  # this machine exposes no power


def test_a_profile_without_int8_gets_fp16(digits_model: Path, tmp_path: Path) -> None:
    profile = tmp_path / "gpu-only.yaml"
    base = (Path(edgecompress.__file__).parent.parent / "profiles" / "jetson-nano.yaml").read_text()
    profile.write_text(base)
    result = edgecompress.deploy(digits_model, profile, output=tmp_path / "runs", warmup=2, runs=5, max_eval=200)
    kinds = [a["kind"] for a in result.report["artifacts"]]
    assert kinds[0] == "float32" and kinds[1] in {"fp16", "int8"}


@pytest.mark.e2e  # ~30 s: the ladder's logic is proven in tests/test_plan.py in under a second; this is its wiring
def test_an_exported_model_over_the_budget_is_measured_and_said_so(digits_model: Path, tmp_path: Path) -> None:
    """strategy: auto checks the exported file, not only the estimate. On a Linux board every strategy's file
    is the same size (clustered or binary weights are int8 in a .tflite), so no harsher one can help: the plan
    says so and the verdict holds the artifact to the budget."""
    import yaml

    dry = edgecompress.deploy(digits_model, "rpi4", data="sklearn:digits", dry_run=True, output=tmp_path / "dry")
    estimate = dry.report["plan"]["budget_figure"]  # weights only: the exported file adds its graph
    document = yaml.safe_load((Path(edgecompress.__file__).parent.parent / "profiles" / "rpi4.yaml").read_text())
    document.update(name="rpi4-tight", model_memory_budget_bytes=estimate + 1)
    profile = tmp_path / "rpi4-tight.yaml"
    profile.write_text(yaml.safe_dump(document))
    result = edgecompress.deploy(
        digits_model, profile, data="sklearn:digits", output=tmp_path / "runs", warmup=2, runs=5, max_eval=100, epochs=1
    )
    plan = result.report["plan"]
    chosen = plan["strategy"]
    assert plan["auto"] and plan["measured"]["strategy"] == chosen and plan["measured"]["fits"] is False
    assert plan["measured"]["bytes"] > estimate + 1
    steps = {step["strategy"]: step["outcome"] for step in plan["ladder"]}
    assert steps[chosen].startswith(f"measured {plan['measured']['bytes']:,} bytes after export")
    harsher = dry.report["plan"]["harsher"]
    assert harsher and all(steps[name].startswith("skipped: its estimate is no smaller than") for name in harsher)
    assert plan["harsher"] == []
    assert "no harsher strategy is left" in (result.run_dir / "deploy.log").read_text()
    [entry] = [e for e in result.report["verdict"]["targets"][0]["artifacts"] if e["artifact"] == chosen]
    assert entry["first_failure"]["rule"] == "budget"


# --- bad input: one paragraph, non-zero exit, no traceback, no run folder posing as a success ---


def _images(root: Path, classes: dict[str, int], size: tuple[int, int]) -> Path:
    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 255, size, dtype=np.uint8), mode="L").save(root / name / f"{i}.png")
    return root


def _lambda_model(path: Path) -> Path:
    from edgecompress._tf import keras

    k = keras()
    model = k.Sequential(
        [k.layers.Input((8, 8, 1)), k.layers.Lambda(lambda x: x * 2), k.layers.Flatten(), k.layers.Dense(10)]
    )
    model.save(path)
    return path


BAD_INPUTS = {
    "corrupt h5": lambda tmp, model: (
        ["deploy", "--data", "sklearn:digits", "--profile", "rpi4", str(_truncate(model, tmp / "cut.h5"))],
        "damaged",
    ),
    "text named .h5": lambda tmp, model: (
        ["deploy", "--data", "sklearn:digits", "--profile", "rpi4", str(_text(tmp / "notes.h5"))],
        "text file",
    ),
    "lambda layer": lambda tmp, model: (
        ["deploy", "--data", "sklearn:digits", "--profile", "rpi4", str(_lambda_model(tmp / "lam.h5"))],
        "Lambda",
    ),
    "unknown profile": lambda tmp, model: (
        ["deploy", "--data", "sklearn:digits", "--profile", "rpi-4", str(model)],
        "rpi4",
    ),
    "typo in profile": lambda tmp, model: (
        ["deploy", "--data", "sklearn:digits", "--profile", str(_typo_profile(tmp)), str(model)],
        "int8_suport",
    ),
    "one class": lambda tmp, model: (
        ["deploy", "--profile", "rpi4", str(model), "--data", str(_images(tmp / "one", {"a": 6}, (8, 8)))],
        "class",
    ),
    "wrong image size": lambda tmp, model: (
        [
            "deploy",
            "--profile",
            "rpi4",
            str(model),
            "--data",
            str(_images(tmp / "big", {str(d): 10 for d in range(10)}, (16, 16))),
        ],
        "16x16",
    ),
}


def _truncate(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes()[:2000])
    return target


def _text(path: Path) -> Path:
    path.write_text("definitely not a model\n")
    return path


def _typo_profile(tmp: Path) -> Path:
    base = (Path(edgecompress.__file__).parent.parent / "profiles" / "rpi4.yaml").read_text()
    assert "int8:" in base
    path = tmp / "my-board.yaml"
    path.write_text(base.replace("int8:", "int8_suport:", 1))
    return path


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_ends_in_one_clear_paragraph(case: str, digits_model: Path, tmp_path: Path, capsys) -> None:
    args, expected = BAD_INPUTS[case](tmp_path, digits_model)
    runs = tmp_path / "runs"
    code = main([*args, "--output", str(runs)])
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err
    assert "Error:" in err and "What to do:" in err
    assert expected in err
    assert not runs.exists() or not any(runs.iterdir())


def test_debug_shows_the_traceback(digits_model: Path, tmp_path: Path, capsys) -> None:
    code = main(
        [
            "deploy",
            "--data",
            "sklearn:digits",
            "--profile",
            "rpi-4",
            str(digits_model),
            "--debug",
            "--output",
            str(tmp_path),
        ]
    )
    assert code != 0
    assert "Traceback" in capsys.readouterr().err


def test_the_console_script_runs_the_same_checks(tmp_path: Path) -> None:
    bad = _text(tmp_path / "bad.h5")
    script = Path(sys.executable).with_name("edgecompress")
    done = subprocess.run(
        [str(script), "deploy", "--data", "sklearn:digits", "--profile", "rpi4", str(bad)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "text file" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.e2e  # ~100 s, two firmware builds: tests/test_micro_firmware.py's deploy to the emulated board proves
# the same flow by default (both firmwares, the verdict on their own builds, ship/ and `ship --target` refused)
def test_a_microcontroller_profile_ends_in_a_tflm_firmware_build(digits_model: Path, tmp_path: Path) -> None:
    result = edgecompress.deploy(
        digits_model, "arduino-nano-33-ble", output=tmp_path / "runs", warmup=2, runs=5, max_eval=200, epochs=1
    )
    micro, ptq = result.report["micro"]["firmwares"]  # the plan's compressed model, then post-training int8
    assert (micro["role"], ptq["role"], ptq["source"]) == ("compressed", "post-training", "ptq-int8")
    assert micro["accuracy"] == pytest.approx(micro["litert_accuracy"])
    assert micro["arena_bytes"] > 0
    assert (result.run_dir / micro["firmware_dir"]).is_dir() and (result.run_dir / ptq["firmware_dir"]).is_dir()
    # the verdict holds each .tflite measured here to the flash and RAM of the firmware built from it
    (target,) = result.report["verdict"]["targets"]
    checks = {e["artifact"]: {c["rule"]: c for c in e["checks"]} for e in target["artifacts"]}
    for built in (micro, ptq):
        assert checks[built["source"]]["budget"]["passed"] and "RAM" in checks[built["source"]]["budget"]["text"]
    assert "no TFLite Micro build" in checks["baseline-fp32"]["budget"]["text"]
    # under loose rules the built artifact is recommended and ship/ is the firmware project with its manifest
    assert main(["report", str(result.run_dir), "-q", "--max-accuracy-drop", "100", "--max-class-drop", "100"]) == 0
    assert main(["ship", str(result.run_dir), "--rebuild"]) == 0
    manifest = json.loads((result.run_dir / "ship" / "manifest.json").read_text())
    assert manifest["kind"] == "firmware" and manifest["artifact"]["name"] == micro["artifact"]
    assert (result.run_dir / "ship" / "firmware").is_dir() and (result.run_dir / "ship" / "labels.txt").is_file()
    assert main(["ship", str(result.run_dir), "--target", "ssh://pi@127.0.0.1:2222"]) == 3  # flashed, not installed


def test_a_microcontroller_profile_refuses_an_ssh_push(digits_model: Path, tmp_path: Path) -> None:
    from edgecompress.errors import TargetError

    with pytest.raises(TargetError, match="TFLite Micro"):
        edgecompress.deploy(digits_model, "stm32h7", target="ssh://pi@127.0.0.1:2222", output=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_dry_run_prints_the_plan_and_writes_nothing(digits_model: Path, tmp_path: Path, capsys) -> None:
    code = main(
        [
            "deploy",
            "--data",
            "sklearn:digits",
            "--profile",
            "rpi4",
            str(digits_model),
            "--dry-run",
            "--output",
            str(tmp_path / "runs"),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "Compression plan" in printed and "Dry run" in printed
    assert not (tmp_path / "runs").exists()


def test_json_output_is_one_machine_readable_document(digits_model: Path, tmp_path: Path, capsys) -> None:
    code = main(
        [
            "deploy",
            "--data",
            "sklearn:digits",
            "--profile",
            "rpi4",
            str(digits_model),
            "--json",
            "--epochs",
            "1",
            "--max-eval",
            "100",
            "--runs",
            "5",
            "--warmup",
            "1",
            "--output",
            str(tmp_path / "runs"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    document = json.loads(captured.out)
    assert Path(document["run_dir"]).is_dir()
    assert {row["artifact"] for row in document["rows"]} >= {"baseline-fp32", "ptq-int8"}
    assert "•" not in captured.err  # --json is quiet: no progress lines
