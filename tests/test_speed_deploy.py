"""Speed on the device: threads, accelerators (and saying when none ran), per-op time, and
`deploy --recipe twonn-prune` reporting the MAC ratio beside the measured speed-up.

The runner runs as a board runs it (a separate Python process). Accelerators exercised
here are the ones this machine has: LiteRT's default XNNPACK CPU delegate, and missing
ones -- an Edge TPU delegate library that is not installed, a GPU execution provider this
onnxruntime build lacks -- whose fallback to the CPU must be recorded, never silent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_runner import run_runner

from edgecompress.cli import main

pytestmark = pytest.mark.slow  # deploys, fine-tunes, SSH boards or firmware builds: `pytest -m 'not slow'` skips them


def test_latency_is_timed_at_one_thread_and_at_the_profile_core_count(tiny_tflite_fp32: Path, eval_npz: Path) -> None:
    result, _ = run_runner(
        "--model",
        tiny_tflite_fp32,
        "--data",
        eval_npz,
        "--warmup",
        2,
        "--runs",
        10,
        "--cores",
        64,
        "--latency-threads",
        "1,64",
    )
    usable = result["platform"]["usable_cpus"]
    assert result["threads"] == min(64, usable)
    assert "the profile's 64 cores, capped at" in result["threads_basis"]
    one, cores = result["latency_by_threads"]
    assert (one["threads"], one["requested"]) == (1, 1) and one["latency_ms"]["runs"] == 10
    assert cores["requested"] == 64 and cores["threads"] == usable and "capped" in cores["note"]


def test_the_cpu_path_records_what_xnnpack_took(tiny_tflite_fp32: Path, eval_npz: Path) -> None:
    result, _ = run_runner("--model", tiny_tflite_fp32, "--data", eval_npz, "--warmup", 1, "--runs", 5)
    execution = result["execution"]
    assert execution["used"] == "cpu" and execution["requested"] == "none"
    assert execution["note"] == "cpu (the profile names no accelerator)"
    assert 0 < execution["xnnpack_nodes"] <= execution["total_nodes"]
    assert execution["xnnpack_nodes"] + execution["builtin_nodes"] == execution["total_nodes"]


@pytest.mark.parametrize(
    "options", [("--accelerator", "edgetpu"), ("--accelerator", "gpu", "--delegate", "/nonexistent/libgpu_delegate.so")]
)
def test_a_missing_delegate_library_falls_back_to_the_cpu_and_says_why(
    tiny_tflite_int8: Path, eval_npz: Path, options
) -> None:
    result, completed = run_runner(
        "--model", tiny_tflite_int8, "--data", eval_npz, "--warmup", 1, "--runs", 5, *options
    )
    assert completed.returncode == 0, completed.stderr
    execution = result["execution"]
    assert execution["requested"] == options[1] and execution["used"] == "cpu"
    assert execution["note"].startswith("cpu (accelerator not available: ")
    assert execution["attempts"] and all(attempt["error"] for attempt in execution["attempts"])
    assert result["accuracy"]["overall"] > 0.8  # it still ran, on the CPU
    assert "Exception ignored" not in completed.stderr


def test_a_library_that_is_no_delegate_is_refused_and_recorded(tiny_tflite_int8: Path, eval_npz: Path) -> None:
    import ai_edge_litert

    not_a_delegate = next(Path(ai_edge_litert.__file__).parent.glob("libLiteRt*.so"))
    result, _ = run_runner(
        "--model",
        tiny_tflite_int8,
        "--data",
        eval_npz,
        "--warmup",
        1,
        "--runs",
        5,
        "--accelerator",
        "gpu",
        "--delegate",
        not_a_delegate,
    )
    assert result["execution"]["used"] == "cpu"
    assert result["execution"]["attempts"][0]["delegate"] == str(not_a_delegate)


def test_onnx_accelerator_fallback_and_per_operator_time(tiny_onnx: Path, eval_npz: Path) -> None:
    result, _ = run_runner(
        "--model",
        tiny_onnx,
        "--data",
        eval_npz,
        "--warmup",
        1,
        "--runs",
        5,
        "--accelerator",
        "gpu",
        "--profile-ops",
        20,
    )
    execution = result["execution"]
    assert execution["used"] == "cpu" and "CUDAExecutionProvider" in execution["note"]
    assert execution["nodes"].get("CPUExecutionProvider", 0) > 0
    profile = result["op_profile"]
    assert profile["available"] and profile["runs"] == 20
    assert {"Conv", "MatMul"} & {op["op_type"] for op in profile["ops"]}
    assert sum(op["share"] for op in profile["ops"]) == pytest.approx(1.0, abs=0.02)


def test_litert_says_it_has_no_per_operator_profiler(tiny_tflite_fp32: Path, eval_npz: Path) -> None:
    result, _ = run_runner(
        "--model", tiny_tflite_fp32, "--data", eval_npz, "--warmup", 1, "--runs", 5, "--profile-ops", 10
    )
    assert result["op_profile"]["available"] is False
    assert "benchmark_model" in result["op_profile"]["reason"]


@pytest.fixture(scope="module")
def pruned_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`edgecompress deploy --profile rpi4 --recipe twonn-prune` on the README's example model."""
    from edgecompress.example_model import train_example_model

    folder = tmp_path_factory.mktemp("speed-deploy")
    model = folder / "digits_cnn.h5"
    train_example_model(model, epochs=8)
    code = main(
        [
            "deploy",
            "--profile",
            "rpi4",
            "--recipe",
            "twonn-prune",
            str(model),
            "--data",
            "sklearn:digits",
            "--output",
            str(folder / "runs"),
            "--warmup",
            "3",
            "--runs",
            "20",
            "--max-eval",
            "360",
            "--quiet",
        ]
    )
    assert code in (0, None)
    return next((folder / "runs").iterdir())


def test_deploy_twonn_prune_reports_mac_ratio_beside_measured_speed_up(pruned_run: Path) -> None:
    report = json.loads((pruned_run / "report.json").read_text())
    rows = {row["artifact"]: row for row in report["comparison"]}
    assert list(rows) == ["baseline-fp32", "ptq-int8", "twonn-prune", "twonn-prune-onnx"]
    pruned = rows["twonn-prune"]
    assert pruned["mac_ratio_x"] > 2 and pruned["speedup_x"] is not None and pruned["speedup_1t_x"] is not None
    assert rows["ptq-int8"]["mac_ratio_x"] == 1.0  # same graph, other precision: no fewer MACs
    assert pruned["macs"] == report["plan"]["macs"], "the exported graph computes what the plan promised"
    artifacts = {a["name"]: a for a in report["artifacts"]}
    assert artifacts["twonn-prune"]["macs"]["source"] == "tflite graph"
    assert artifacts["twonn-prune-onnx"]["kind"] == "int8" and artifacts["twonn-prune-onnx"]["onnx_verification"]["ok"]
    assert pruned["accuracy_delta_points"] >= -8.0
    for row in rows.values():
        assert "cores" in row["threads_basis"] and row["accelerator"] == "cpu (the profile names no accelerator)"
    markdown = (pruned_run / "report.md").read_text()
    assert "MAC ratio" in markdown and "Compute, threads and where the time goes" in markdown


def test_an_accelerator_profile_says_plainly_when_the_accelerator_was_not_used(tmp_path: Path, tiny_h5: Path) -> None:
    import edgecompress

    result = edgecompress.deploy(
        tiny_h5,
        "coral-devboard",
        data="sklearn:digits",
        output=tmp_path / "runs",
        warmup=1,
        runs=5,
        max_eval=100,
        recipe="ptq-int8",
    )
    for row in result.report["comparison"]:
        assert row["accelerator"].startswith("cpu (accelerator not available: ")
        assert "libedgetpu" in row["accelerator"]
