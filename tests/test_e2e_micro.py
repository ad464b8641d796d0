"""CIFAR-10 CNNs deployed to the Arduino Nano 33 BLE profile and measured on its emulated
Cortex-M4F (QEMU mps2-an386): the whole firmware linked, run on every evaluation image.
Long (training on CIFAR-10 cat vs dog): `pytest -m e2e tests/test_e2e_micro.py`."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecompress.cli import main

pytestmark = [
    pytest.mark.slow,
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("arm-none-eabi-g++") is None or shutil.which("qemu-system-arm") is None,
        reason="needs gcc-arm-none-eabi and qemu-system-arm (.ci/run installs both)",
    ),
]


@pytest.fixture(scope="module")
def cifar_root() -> Path:
    from edgecompress.datasets_cache import ensure_cifar10_jpeg
    from edgecompress.errors import DataError

    try:
        return ensure_cifar10_jpeg()
    except DataError as error:
        pytest.skip(f"CIFAR-10 JPEGs not available: {error}")


def _cat_dog(cifar_root: Path) -> tuple[np.ndarray, np.ndarray]:
    x = (
        np.concatenate(
            [
                np.stack(
                    [np.asarray(Image.open(p).convert("RGB")) for p in sorted((cifar_root / "train" / c).glob("*.jpg"))]
                )
                for c in ("cat", "dog")
            ]
        ).astype("float32")
        / 255.0
    )
    return x, np.repeat([0, 1], len(x) // 2)


@pytest.fixture(scope="module")
def foreign_model(cifar_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain CNN built and trained with tf-keras directly, as a user would (not edgecompress's design)."""
    import os

    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras as keras

    keras.utils.set_random_seed(1)
    x, y = _cat_dog(cifar_root)
    inputs = keras.Input((32, 32, 3))
    h = keras.layers.Conv2D(32, 3, activation="relu")(inputs)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(64, 3, activation="relu")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(128, activation="relu")(h)
    h = keras.layers.Dropout(0.1)(h)
    outputs = keras.layers.Dense(2, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        x,
        y,
        epochs=6,
        batch_size=64,
        validation_split=0.1,
        verbose=0,
        callbacks=[keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)],
    )
    path = tmp_path_factory.mktemp("foreign") / "cat_dog_cnn.h5"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def reference_model(cifar_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference CNN of the benchmarks (545,889 parameters), trained as bench_micro.py trains it."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_micro

    from edgecompress._tf import keras

    k = keras()
    k.utils.set_random_seed(0)
    x, y = _cat_dog(cifar_root)
    model = bench_micro.reference_cnn()
    model.compile(optimizer=k.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(
        x,
        y,
        validation_split=0.1,
        epochs=8,
        batch_size=64,
        verbose=0,
        callbacks=[k.callbacks.EarlyStopping(patience=2, restore_best_weights=True)],
    )
    path = tmp_path_factory.mktemp("reference") / "reference_cnn.h5"
    model.save(path)
    return path


def _deploy(model: Path, cifar_root: Path, runs: Path) -> dict:
    code = main(
        [
            "deploy",
            "--profile",
            "arduino-nano-33-ble",
            str(model),
            "--data",
            str(cifar_root),
            "--classes",
            "cat,dog",
            "--target",
            "qemu",
            "--max-eval",
            "1000",
            "--output",
            str(runs),
        ]
    )
    assert code == 0
    (run_dir,) = list(runs.iterdir())
    return json.loads((run_dir / "report.json").read_text())


def _check_measured_on_the_emulated_board(report: dict) -> dict:
    [measured] = [m for m in report["measurements"] if m["target"] == "qemu"]
    micro = report["micro"]
    linked = micro["linked_firmware"]
    assert micro["whole_firmware"] == "built" and linked["board"] == "mps2-an386" and linked["kernels"] == "cmsis_nn"
    assert micro["fits"]["basis"].startswith("measured") and micro["fits"]["flash"] and micro["fits"]["ram"]
    assert linked["device"]["flash_bytes"] <= report["profile"]["flash_budget_bytes"]
    assert linked["device"]["ram_bytes"] <= report["profile"]["model_memory_budget_bytes"]
    assert linked["arena"]["measured_32bit_bytes"] > 0
    per_inference = measured["instructions"]["per_inference"]
    assert per_inference["samples"] == measured["accuracy"]["n"] == 1000
    assert per_inference["median"] > micro["macs"]["total"] / 4  # real work, not an empty loop
    assert {row["op"] for row in measured["instructions"]["per_op"]} >= {"CONV_2D", "FULLY_CONNECTED"}
    assert measured["latency_estimate"]["milliseconds"] > 0 and measured["latency_ms"] == {}
    comparison = measured["vs_tflm_python"]
    assert comparison["available"] and comparison["decision_agreement"] >= 0.99
    assert abs(measured["accuracy"]["overall"] - micro["accuracy"]) <= 0.01
    return measured


def test_a_foreign_cifar_cnn_on_the_emulated_nano_33_ble(cifar_root: Path, foreign_model: Path, tmp_path: Path) -> None:
    report = _deploy(foreign_model, cifar_root, tmp_path / "runs")
    measured = _check_measured_on_the_emulated_board(report)
    assert measured["accuracy"]["overall"] > 0.6


def test_the_reference_cnn_with_2_bit_weights_on_the_emulated_nano_33_ble(
    cifar_root: Path, reference_model: Path, tmp_path: Path
) -> None:
    report = _deploy(reference_model, cifar_root, tmp_path / "runs")
    micro = report["micro"]
    assert micro["shipped"] == "compressed"  # 2-bit weights stored as LUT indices
    dense = [row for row in micro["compression"]["plan"]["chosen"] if row["layer"] == "dense"]
    assert dense and dense[0]["index_bits"] <= 2
    assert micro["linked_firmware"]["device"]["flash"]["model"] < 200_000  # the int8 file is 557 KB
    measured = _check_measured_on_the_emulated_board(report)
    assert measured["accuracy"]["overall"] > 0.6
