"""The board-side runner, run exactly as a board runs it: a separate Python process.

Models come from conftest (a tiny digits CNN exported to TFLite fp32 / int8 and ONNX); the
runner's accuracy must match what Keras says about the same model on the same data.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from edgecompress.resources import runner_script

RUNNER = runner_script()
INT8_TOLERANCE = 0.02  # accuracy points an int8 model may lose against float Keras


def run_runner(
    *args: str, python: list[str] | None = None, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    """Run the runner file in a fresh interpreter; stdout must parse as one JSON document."""
    command = [*(python or [sys.executable]), str(RUNNER), *map(str, args)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    return json.loads(completed.stdout), completed


def load_runner_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("edgecompress_runner", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def keras_accuracy(tiny_keras_model) -> float:
    return tiny_keras_model.keras_accuracy()


@pytest.fixture(scope="module")
def models(tiny_tflite_fp32: Path, tiny_tflite_int8: Path, tiny_onnx: Path) -> dict[str, Path]:
    return {"fp32": tiny_tflite_fp32, "int8": tiny_tflite_int8, "onnx": tiny_onnx}


@pytest.fixture(scope="module")
def numpy_only_python(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], dict[str, str]]:
    """This interpreter with site-packages switched off (-S) and only NumPy put back.

    That is a device where NumPy is installed but no inference runtime is, built from the
    real interpreter rather than a fake module.
    """
    numpy_dir = Path(np.__file__).resolve().parent
    only_numpy = tmp_path_factory.mktemp("only-numpy")
    for name in ("numpy", "numpy.libs"):
        if (numpy_dir.parent / name).exists():
            (only_numpy / name).symlink_to(numpy_dir.parent / name)
    env = {**os.environ, "PYTHONPATH": str(only_numpy)}
    return [sys.executable, "-S"], env


# ----------------------------------------------------------------------------- measuring


@pytest.mark.parametrize("kind", ["fp32", "int8", "onnx"])
def test_runner_accuracy_matches_keras(
    kind: str, models, eval_npz: Path, keras_accuracy: float, tiny_keras_model
) -> None:
    result, completed = run_runner("--model", models[kind], "--data", eval_npz, "--warmup", 3, "--runs", 30)

    assert completed.returncode == 0, completed.stderr
    accuracy = result["accuracy"]
    assert accuracy["n"] == len(tiny_keras_model.y_test)
    if kind == "int8":
        assert abs(accuracy["overall"] - keras_accuracy) <= INT8_TOLERANCE
    else:
        assert accuracy["overall"] == pytest.approx(keras_accuracy, abs=1e-6)
    per_class_n = {label: entry["n"] for label, entry in accuracy["per_class"].items()}
    assert per_class_n == {str(c): int(np.sum(tiny_keras_model.y_test == c)) for c in range(10)}
    assert np.array(accuracy["confusion"]).sum() == accuracy["n"]
    assert np.trace(np.array(accuracy["confusion"])) == accuracy["correct"]
    expected_runtime = "onnxruntime" if kind == "onnx" else "ai_edge_litert"
    assert result["runtime"]["name"] == expected_runtime


def test_runner_json_follows_the_contract(tiny_tflite_int8: Path, eval_npz: Path, tmp_path: Path) -> None:
    samples_file = tmp_path / "samples.json"
    result, completed = run_runner(
        "--model", tiny_tflite_int8, "--data", eval_npz, "--warmup", 5, "--runs", 40,
        "--threads", 1, "--samples-out", samples_file, "--progress",
    )  # fmt: skip

    assert completed.returncode == 0
    assert {"runner_version", "runtime", "model", "platform", "threads", "load_ms", "first_inference_ms",
            "latency_ms", "memory", "accuracy"} <= result.keys()  # fmt: skip
    assert result["threads"] == 1
    assert result["model"]["bytes"] == tiny_tflite_int8.stat().st_size
    assert len(result["model"]["sha256"]) == 64
    assert {"machine", "system", "release", "python", "cpu_count"} <= result["platform"].keys()
    assert {"rss_before_load_bytes", "rss_after_load_bytes", "peak_rss_bytes"} <= result["memory"].keys()
    assert result["memory"]["peak_rss_bytes"] >= result["memory"]["rss_before_load_bytes"] > 10 * 2**20
    assert {"n", "overall", "per_class", "confusion"} <= result["accuracy"].keys()
    assert result["load_ms"] > 0 and result["first_inference_ms"] > 0

    latency = result["latency_ms"]
    assert (latency["warmup"], latency["runs"]) == (5, 40)
    assert 0 < latency["min"] <= latency["median"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert latency["min"] <= latency["mean"] <= latency["max"] and latency["std"] >= 0
    samples = json.loads(samples_file.read_text())["samples"]
    assert len(samples) == 40
    assert float(np.median(samples)) == pytest.approx(latency["median"], abs=1e-3)

    right = result["accuracy"]["correct"]
    # progress goes to stderr, images evaluated and images right kept apart ...
    assert f"evaluated 360/360 images, {right} correct ({100 * right / 360:.1f} %)" in completed.stderr
    assert completed.stdout.lstrip().startswith("{")  # ... and stdout is the JSON alone


def test_batched_accuracy_pass_agrees_with_batch_one(tiny_tflite_fp32: Path, tiny_onnx: Path, eval_npz: Path) -> None:
    for model in (tiny_tflite_fp32, tiny_onnx):
        batched, _ = run_runner("--model", model, "--data", eval_npz, "--runs", 5, "--batch", 50)
        single, _ = run_runner("--model", model, "--data", eval_npz, "--runs", 5, "--batch", 1)
        assert (batched["accuracy"]["batch"], single["accuracy"]["batch"]) == (50, 1)
        assert batched["accuracy"]["confusion"] == single["accuracy"]["confusion"]


@pytest.mark.parametrize("layout", ["compressed", "fortran"])
def test_eval_sets_in_any_npz_layout_give_the_same_answer(
    layout: str, tiny_tflite_fp32: Path, eval_npz: Path, tmp_path: Path
) -> None:
    reference, _ = run_runner("--model", tiny_tflite_fp32, "--data", eval_npz, "--runs", 5)
    data = dict(np.load(eval_npz))
    other = tmp_path / f"{layout}.npz"
    if layout == "compressed":
        np.savez_compressed(other, **data)
    else:
        np.savez(other, **{**data, "x": np.asfortranarray(data["x"])})

    result, completed = run_runner("--model", tiny_tflite_fp32, "--data", other, "--runs", 5)

    assert completed.returncode == 0, completed.stdout
    assert result["accuracy"]["confusion"] == reference["accuracy"]["confusion"]


def test_full_tensorflow_is_the_last_fallback_and_agrees(
    tiny_tflite_fp32: Path, eval_npz: Path, keras_accuracy: float
) -> None:
    result, completed = run_runner(
        "--model", tiny_tflite_fp32, "--data", eval_npz, "--runs", 5, "--runtime", "tensorflow"
    )

    assert completed.returncode == 0, completed.stdout
    assert result["runtime"]["name"] == "tensorflow"
    assert result["accuracy"]["overall"] == pytest.approx(keras_accuracy, abs=1e-6)


# ----------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("model_fixture", "package"), [("tiny_tflite_fp32", "ai-edge-litert"), ("tiny_onnx", "onnxruntime")]
)
def test_missing_runtime_names_the_pip_command(
    model_fixture: str, package: str, request, eval_npz: Path, numpy_only_python
) -> None:
    python, env = numpy_only_python
    model = request.getfixturevalue(model_fixture)

    result, completed = run_runner("--model", model, "--data", eval_npz, python=python, env=env)

    assert completed.returncode == 3
    assert result["error"]["kind"] == "no_runtime"
    assert f"{sys.executable} -m pip install {package}" in result["error"]["fix"]


def test_missing_numpy_is_a_missing_runtime_but_probe_still_answers(tiny_tflite_fp32: Path, eval_npz: Path) -> None:
    bare = [sys.executable, "-S"]  # no site-packages at all: no NumPy either

    result, completed = run_runner("--model", tiny_tflite_fp32, "--data", eval_npz, python=bare)
    assert completed.returncode == 3
    assert result["error"]["kind"] == "no_runtime"
    assert "-m pip install numpy" in result["error"]["fix"]

    probe, completed = run_runner("--probe", python=bare)
    assert completed.returncode == 0
    assert probe["numpy"] is None
    assert set(probe["runtimes"].values()) == {None}


def test_install_commands_quote_the_interpreter_path(tiny_tflite_fp32: Path, eval_npz: Path, tmp_path: Path) -> None:
    """A board's Python in a folder with a space (or a quote) still gets a command that pastes and runs."""
    folder = tmp_path / "Jane's env"
    folder.mkdir()
    python = folder / "python3"
    python.symlink_to(sys.executable)

    result, _ = run_runner("--model", tiny_tflite_fp32, "--data", eval_npz, python=[str(python), "-S"])

    assert f"Install it on the device: {shlex.quote(str(python))} -m pip install numpy" in result["error"]["fix"]


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_corrupt_model_is_bad_model(suffix: str, eval_npz: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / f"truncated{suffix}"
    corrupt.write_bytes(b"\x00not a model at all" * 10)

    result, completed = run_runner("--model", corrupt, "--data", eval_npz)

    assert completed.returncode == 4
    assert result["error"]["kind"] == "bad_model"
    assert str(corrupt) in result["error"]["message"] and result["error"]["fix"]


def test_eval_data_that_does_not_fit_the_model_is_bad_data(
    tiny_tflite_fp32: Path, eval_npz: Path, tmp_path: Path
) -> None:
    data = dict(np.load(eval_npz))
    wrong_shape = tmp_path / "flat.npz"
    np.savez(wrong_shape, **{**data, "x": data["x"].reshape(len(data["x"]), -1)})
    no_labels = tmp_path / "no_labels.npz"
    np.savez(no_labels, x=data["x"], class_names=data["class_names"], output_kind=data["output_kind"])

    for bad, expected in ((wrong_shape, "expects inputs of shape"), (no_labels, "lacks y")):
        result, completed = run_runner("--model", tiny_tflite_fp32, "--data", bad)
        assert completed.returncode == 5
        assert result["error"]["kind"] == "bad_data"
        assert expected in result["error"]["message"]


def test_bad_arguments_still_answer_in_json() -> None:
    result, completed = run_runner("--runs", "0")

    assert completed.returncode == 2
    assert result["error"]["kind"] == "bad_args"


# ----------------------------------------------------------------------------- pieces


def test_probe_reports_this_machine() -> None:
    result, completed = run_runner("--probe")

    assert completed.returncode == 0
    assert result["platform"]["cpu_count"] == os.cpu_count()
    assert result["numpy"] == np.__version__
    assert result["runtimes"]["ai_edge_litert"] and result["runtimes"]["onnxruntime"]
    assert result["memory"]["total_bytes"] > 0 and result["disk_free_bytes"] > 0


def test_predictions_follow_the_output_kind() -> None:
    runner = load_runner_module()
    one_output = np.array([[0.2], [0.7], [-0.1], [0.0]], dtype=np.float32)

    assert runner.predict(one_output, "sigmoid").tolist() == [0, 1, 0, 0]
    assert runner.predict(one_output, "logits").tolist() == [1, 1, 0, 0]
    assert runner.predict(np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]]), "logits").tolist() == [1, 0]


def test_what_runtimes_print_to_stdout_goes_to_stderr(tmp_path: Path) -> None:
    """A runtime's C++ banner (even one left in libc's buffer) must not corrupt the JSON."""
    script = (
        "import ctypes, importlib.util, os, sys\n"
        f"spec = importlib.util.spec_from_file_location('r', {str(RUNNER)!r})\n"
        "r = importlib.util.module_from_spec(spec); spec.loader.exec_module(r)\n"
        "with r.stdout_to_stderr():\n"
        "    print('python banner')\n"
        "    os.write(1, b'fd banner\\n')\n"
        "    ctypes.CDLL(None).printf(b'libc banner without newline')\n"
        "print('{}')\n"
    )
    buffered = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}  # libc buffers stdout
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=buffered)

    assert completed.stdout == "{}\n"
    assert "python banner" in completed.stderr and "fd banner" in completed.stderr
    assert "libc banner" in completed.stderr


def test_runner_stays_standalone_and_python38_compatible() -> None:
    tree = ast.parse(RUNNER.read_text(), feature_version=(3, 8))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }

    assert imported - set(sys.stdlib_module_names) == {"numpy"}
