"""The issue-2 acceptance run: a CIFAR-10 cat-vs-dog CNN that edgecompress did not build,
deployed for the Raspberry Pi 4 profile on the local target. Long: `pytest -m e2e`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecompress.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def cifar_root() -> Path:
    from benchmarks.datasets_cache import ensure_cifar10_jpeg
    from edgecompress.errors import DataError

    try:
        return ensure_cifar10_jpeg()
    except DataError as error:
        pytest.skip(f"CIFAR-10 JPEGs not available: {error}")


def _read(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.jpg"))])


@pytest.fixture(scope="module")
def foreign_model(cifar_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain functional CNN built and trained with tf-keras directly, as a user would."""
    import os

    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras as keras

    keras.utils.set_random_seed(1)
    x = np.concatenate([_read(cifar_root / "train" / c) for c in ("cat", "dog")]).astype("float32") / 255.0
    y = np.repeat([0, 1], len(x) // 2)
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


def test_rpi4_deploy_of_a_foreign_cifar_model_keeps_int8_within_two_points(
    cifar_root: Path, foreign_model: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    code = main(
        [
            "deploy",
            "--profile",
            "rpi4",
            str(foreign_model),
            "--data",
            str(cifar_root),
            "--classes",
            "cat,dog",
            "--target",
            "local",
            "--output",
            str(runs),
        ]
    )
    assert code == 0
    (run_dir,) = list(runs.iterdir())
    report = json.loads((run_dir / "report.json").read_text())
    rows = {row["artifact"]: row for row in report["comparison"]}
    assert report["data"]["classes"] == ["cat", "dog"] or report["data"].get("class_names") == ["cat", "dog"]
    assert rows["baseline-fp32"]["accuracy"] > 0.65
    assert abs(rows["ptq-int8"]["accuracy_delta_points"]) <= 2.0
    assert rows["ptq-int8"]["file_bytes"] < rows["baseline-fp32"]["file_bytes"] / 3
