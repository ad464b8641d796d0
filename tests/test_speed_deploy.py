"""Speed on the device: threads, accelerators (and saying when none ran), per-op time, and
`deploy --recipe twonn-prune` reporting the MAC ratio beside the measured speed-up, which must exceed 1 when
the MACs fall 4x.

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
from edgecompress.decision import statistics as stats
from edgecompress.decision.timing import BoardTiming, rounds_ratio

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


def _wide_digits_cnn(path: Path) -> Path:
    """A digits CNN wide enough that its convolutions, not the per-call overhead, take the time (0.7 M MACs)."""
    from sklearn.datasets import load_digits

    from edgecompress._tf import keras as _keras

    keras = _keras()
    digits = load_digits()
    x, y = (digits.images / 16.0).astype("float32")[..., None], digits.target
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.layers.Input((8, 8, 1)),
            keras.layers.Conv2D(48, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(96, 3, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=8, batch_size=64, verbose=0)
    model.save(path)
    return path


@pytest.fixture(scope="module")
def pruned_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`edgecompress deploy --profile rpi4 --recipe twonn-prune` on a digits CNN whose MACs decide its time."""
    folder = tmp_path_factory.mktemp("speed-deploy")
    model = _wide_digits_cnn(folder / "wide_digits_cnn.h5")
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
            # one thread: at the profile's cores (2 CPUs here, shared with other jobs) XNNPACK's int8 kernels stall
            # whenever another process holds the second core, which says nothing about MACs
            "--threads",
            "1",
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
    # the MACs fall more than 4x, so the pruned model must be measurably faster than the baseline ...
    assert pruned["mac_ratio_x"] >= 4 and pruned["threads"] == 1
    assert pruned["speedup_x"] > 1 and pruned["speedup_1t_x"] == pruned["speedup_x"]
    # ... paired round by round, and by more than the board's own timing noise
    timing = BoardTiming.from_file(json.loads((pruned_run / "measurements" / "rounds@local.json").read_text()))
    noise = timing.noise()
    faster = rounds_ratio(timing.timed("twonn-prune", noise), timing.timed("baseline-fp32", noise))
    assert stats.latency_order(faster, noise.fraction, 1.0) == 1, (faster, noise)
    speed = next(e for e in report["verdict"]["targets"][0]["artifacts"] if e["artifact"] == "twonn-prune")
    assert speed["evidence"]["speed_vs_baseline"]["words"].endswith("x faster than baseline-fp32")
    assert rows["ptq-int8"]["mac_ratio_x"] == 1.0  # same graph, other precision: no fewer MACs
    assert pruned["macs"] == report["plan"]["macs"], "the exported graph computes what the plan promised"
    artifacts = {a["name"]: a for a in report["artifacts"]}
    assert artifacts["twonn-prune"]["macs"]["source"] == "tflite graph"
    assert artifacts["twonn-prune-onnx"]["kind"] == "int8" and artifacts["twonn-prune-onnx"]["onnx_verification"]["ok"]
    assert pruned["accuracy_delta_points"] >= -8.0
    for row in rows.values():
        assert row["threads_basis"] == "--threads 1" and row["accelerator"] == "cpu (the profile names no accelerator)"
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
