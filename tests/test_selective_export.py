"""Keeping named layers float32 inside a full-integer TFLite model.

Device profiles such as rpi4 keep the first and last weighted layers "at higher precision";
the plan lists them as `float_layers` and the export must honour that in the file itself.
Every check reads the weights back out of the .tflite bytes and runs the model in LiteRT.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgecompress._tf import keras as _keras
from edgecompress.errors import ModelError, ProfileError
from edgecompress.export import tflite_mode, tflite_weight_stats, to_tflite, verify_tflite
from edgecompress.export.litert import litert_predict

pytestmark = pytest.mark.slow  # deploys, fine-tunes, SSH boards or firmware builds: `pytest -m 'not slow'` skips them

WEIGHTED = ["stem", "body", "mid", "head"]
FIRST_AND_LAST = ["stem", "head"]


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's bundled 8x8 digits, scaled to [0, 1]: (x_train, y_train, x_test, y_test)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]
    return train_test_split(x, data.target, test_size=360, stratify=data.target, random_state=0)


@pytest.fixture(scope="module")
def cnn(digits):
    """A trained CNN with named layers; 'drop' has no op in TFLite (dropout is gone at inference)."""
    keras = _keras()
    keras.utils.set_random_seed(0)
    x_train, _, y_train, _ = digits
    model = keras.Sequential(
        [
            keras.layers.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="stem"),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="body"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dropout(0.1, name="drop"),
            keras.layers.Dense(32, activation="relu", name="mid"),
            keras.layers.Dense(10, name="head"),  # logits: the model's last op, renamed by the converter
        ],
        name="digits_cnn",
    )
    model.compile(
        keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    model.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def first_last_float(cnn, digits):
    """The rpi4 export: int8 everywhere except the first and last layer."""
    return to_tflite(cnn, mode="int8", representative=digits[0], float_layers=FIRST_AND_LAST)


def weight_dtypes(tflite_bytes: bytes) -> dict[str, str]:
    return {row["layer"]: row["dtype"] for row in tflite_weight_stats(tflite_bytes, layer_names=WEIGHTED)}


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(outputs, axis=1) == labels))


def test_the_first_and_last_layers_keep_float32_weights_and_the_rest_is_int8(first_last_float) -> None:
    assert weight_dtypes(first_last_float) == {"stem": "float32", "body": "int8", "mid": "int8", "head": "float32"}
    assert tflite_mode(first_last_float) == "int8"  # the middle still runs on int8 activations


def test_the_selective_model_runs_in_litert_and_scores_like_keras(cnn, digits, first_last_float) -> None:
    _, x_test, _, y_test = digits
    check = verify_tflite(cnn, first_last_float, x_test)
    assert check["ok"] and check["runtime"] == "ai_edge_litert"
    keras_accuracy = accuracy(cnn.predict(x_test, verbose=0), y_test)
    assert keras_accuracy > 0.85  # precondition: a model worth quantizing
    assert abs(accuracy(litert_predict(first_last_float, x_test), y_test) - keras_accuracy) <= 0.03


def test_int8_inputs_and_outputs_can_surround_float_layers(cnn, digits) -> None:
    from ai_edge_litert.interpreter import Interpreter

    blob = to_tflite(cnn, mode="int8", representative=digits[0], io_dtype="int8", float_layers=FIRST_AND_LAST)
    interpreter = Interpreter(model_content=blob)
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    assert weight_dtypes(blob) == {"stem": "float32", "body": "int8", "mid": "int8", "head": "float32"}
    assert verify_tflite(cnn, blob, digits[1])["ok"]


def test_no_float_layers_changes_nothing(cnn, digits) -> None:
    plain = to_tflite(cnn, mode="int8", representative=digits[0])
    assert to_tflite(cnn, mode="int8", representative=digits[0], float_layers=()) == plain
    assert set(weight_dtypes(plain).values()) == {"int8"}
    # a float32 export already keeps every layer float32: naming some is accepted and changes nothing
    assert to_tflite(cnn, float_layers=FIRST_AND_LAST) == to_tflite(cnn)


def test_a_layer_the_model_lacks_is_named_in_the_error(cnn, digits) -> None:
    with pytest.raises(ModelError, match="'dense_7'") as caught:
        to_tflite(cnn, mode="int8", representative=digits[0], float_layers=["stem", "dense_7"])
    assert "stem, body, mid, head" in caught.value.fix


def test_a_layer_without_an_op_of_its_own_cannot_be_kept_float(cnn, digits) -> None:
    with pytest.raises(ModelError, match="'drop'.*no operation of their own"):
        to_tflite(cnn, mode="int8", representative=digits[0], float_layers=["drop"])


@pytest.mark.parametrize(
    ("mode", "io_dtype", "message"),
    [
        ("fp16", "float32", "Mode 'fp16' cannot keep layers in float32"),
        ("dynamic", "float32", "Mode 'dynamic' cannot keep layers in float32"),
        ("int16x8", "float32", "Mode 'int16x8' cannot keep layers in float32"),
        ("int8", "uint8", "input/output type 'uint8'"),
    ],
)
def test_requests_the_export_cannot_honour_are_refused_not_quantized(cnn, digits, mode, io_dtype, message) -> None:
    with pytest.raises(ProfileError, match=message):
        to_tflite(cnn, mode=mode, representative=digits[0], io_dtype=io_dtype, float_layers=FIRST_AND_LAST)


def test_keeping_every_op_float_is_refused(cnn, digits) -> None:
    every_layer = [layer.name for layer in cnn.layers if layer.name != "drop"]
    with pytest.raises(ProfileError, match="nothing would be quantized"):
        to_tflite(cnn, mode="int8", representative=digits[0], float_layers=every_layer)


def test_a_quantization_trained_layer_cannot_be_reported_float(cnn, digits) -> None:
    """QAT fixes a layer's int8 ranges; the export refuses rather than call that layer float32."""
    from edgecompress.compression.qat import quantize_layers

    qat = quantize_layers(cnn, {"body", "mid"})
    mixed = to_tflite(qat, mode="int8", representative=digits[0], float_layers=FIRST_AND_LAST)
    assert weight_dtypes(mixed) == {"stem": "float32", "body": "int8", "mid": "int8", "head": "float32"}
    with pytest.raises(ModelError, match="'mid'.*still have int8 weights"):
        to_tflite(qat, mode="int8", representative=digits[0], float_layers=["mid"])
