"""Shared fixtures: one tiny real model, trained once per session, in every exported form.

The model is a small CNN on scikit-learn's bundled 8x8 digits, so the whole set costs a
few seconds and needs no download, yet it is a genuine trained tf-keras classifier whose
TFLite / ONNX / int8 conversions can be checked for accuracy against Keras itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ctrl_c import python_ctrl_c
from sshd import sshd_fixture, sshd_without_sftp_fixture  # noqa: F401 - the real OpenSSH servers, registered once

from edgecompress._tf import keras as _keras
from edgecompress._tf import tensorflow as _tensorflow

SEED = 0

#: markers of long runs, excluded by default (pyproject's addopts); they run only when the -m expression names them
#: (`pytest -m e2e`), so that another -m -- `pytest -m "not slow"`, which replaces addopts' own -- cannot bring them back
OPT_IN = ("e2e", "arm64", "faults")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import re

    expression = config.getoption("markexpr") or ""
    named = {marker for marker in OPT_IN if re.search(rf"\b{marker}\b", expression)}
    keep, drop = [], []
    for item in items:
        markers = {m for m in OPT_IN if item.get_closest_marker(m) is not None}
        (drop if markers and not markers & named else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", autouse=True)
def private_stage_cache(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """Deploys in the tests reuse stages from a cache of this session only, never the user's."""
    patch = pytest.MonkeyPatch()
    patch.setenv("EDGECOMPRESS_CACHE", str(tmp_path_factory.mktemp("edgecompress-cache")))
    yield
    patch.undo()


@dataclass(frozen=True)
class TinyModel:
    """A trained tf-keras model plus the data it was trained and tested on (inputs in [0, 1])."""

    model: Any  # tf_keras.Model: (None, 8, 8, 1) float32 -> (None, 10) softmax
    x_train: np.ndarray  # float32 (1437, 8, 8, 1)
    y_train: np.ndarray  # int64 (1437,)
    x_test: np.ndarray  # float32 (360, 8, 8, 1)
    y_test: np.ndarray  # int64 (360,)
    class_names: list[str]  # ['0', ..., '9']

    def keras_accuracy(self) -> float:
        """Test accuracy as Keras computes it: the figure exported models are held to."""
        predicted = np.argmax(self.model.predict(self.x_test, verbose=0), axis=1)
        return float(np.mean(predicted == self.y_test))


@pytest.fixture(scope="session")
def tiny_keras_model() -> TinyModel:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    _tensorflow()
    keras = _keras()
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=360, stratify=y, random_state=SEED)

    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.layers.Input((8, 8, 1)),
            # named, so tests can say 'dense' whatever models this process built before
            keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2d"),
            keras.layers.MaxPooling2D(name="max_pooling2d"),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2d_1"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(10, activation="softmax", name="dense"),
        ],
        name="tiny_digits",
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=6, batch_size=64, verbose=0)
    return TinyModel(model, x_train, y_train, x_test, y_test, [str(d) for d in range(10)])


@pytest.fixture(scope="session")
def tiny_h5(tiny_keras_model: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny_digits.h5"
    tiny_keras_model.model.save(path)
    return path


def _write(tmp_path_factory: pytest.TempPathFactory, name: str, content: bytes) -> Path:
    path = tmp_path_factory.mktemp("tiny") / name
    path.write_bytes(content)
    return path


@pytest.fixture(scope="session")
def tiny_tflite_fp32(tiny_keras_model: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    converter = _tensorflow().lite.TFLiteConverter.from_keras_model(tiny_keras_model.model)
    return _write(tmp_path_factory, "tiny_digits_fp32.tflite", converter.convert())


@pytest.fixture(scope="session")
def tiny_tflite_int8(tiny_keras_model: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Full-integer model with int8 input and output, as an MCU or an NPU would want it."""
    tf = _tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(tiny_keras_model.model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    calibration = tiny_keras_model.x_train[:200]
    converter.representative_dataset = lambda: ([sample[None, ...]] for sample in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return _write(tmp_path_factory, "tiny_digits_int8.tflite", converter.convert())


@pytest.fixture(scope="session")
def tiny_onnx(tiny_keras_model: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import tf2onnx

    tf = _tensorflow()
    path = tmp_path_factory.mktemp("tiny") / "tiny_digits.onnx"
    signature = [tf.TensorSpec((None, 8, 8, 1), tf.float32, name="pixels")]
    tf2onnx.convert.from_keras(tiny_keras_model.model, input_signature=signature, opset=13, output_path=str(path))
    return path


@pytest.fixture(scope="session")
def eval_npz(tiny_keras_model: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test split in the runner's eval format (x, y, class_names, output_kind='softmax')."""
    path = tmp_path_factory.mktemp("tiny") / "eval.npz"
    np.savez(
        path,
        x=tiny_keras_model.x_test.astype(np.float32),
        y=tiny_keras_model.y_test.astype(np.int64),
        class_names=np.array(tiny_keras_model.class_names),
        output_kind=np.array("softmax"),
    )
    return path


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's example model, trained here exactly as `edgecompress example-model` does."""
    from edgecompress.example_model import train_example_model

    path = tmp_path_factory.mktemp("model") / "digits_cnn.h5"
    figures = train_example_model(path, epochs=8)
    assert figures["test_accuracy"] > 0.9
    return path


@pytest.fixture(scope="session")
def rpi4_run(tmp_path_factory: pytest.TempPathFactory, digits_model: Path) -> Any:
    """One real `deploy --profile rpi4` of the example model on the local target, shared by the
    deploy and report tests (read-only: copy its folder to change it)."""
    import edgecompress

    return edgecompress.deploy(
        digits_model,
        "rpi4",
        data="sklearn:digits",
        output=tmp_path_factory.mktemp("runs"),
        warmup=5,
        runs=10,  # 5 rounds of 1 warm-up + 2 timed runs per artifact
        max_eval=200,
    )


@pytest.fixture(scope="session")
def run_dir(rpi4_run: Any) -> Path:
    """That run's folder."""
    return rpi4_run.run_dir


@pytest.fixture(scope="module")
def report(run_dir: Path) -> dict:
    """That run's report.json, read afresh for each test module."""
    import json

    return json.loads((run_dir / "report.json").read_text())


@pytest.fixture()
def ctrl_c():  # noqa: ANN201
    """A test that presses Ctrl-C gets it as KeyboardInterrupt, even in a test run started with SIGINT ignored."""
    with python_ctrl_c():
        yield
