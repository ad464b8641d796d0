"""Exporting a Keras model: every PTQ mode and ONNX run in their real runtimes and agree with Keras."""

from __future__ import annotations

import numpy as np
import pytest

from edgecompress._tf import keras as _keras
from edgecompress._tf import tensorflow as _tensorflow
from edgecompress.errors import DataError, ModelError, ProfileError
from edgecompress.export import (
    PTQ_MODE_SPECS,
    PTQ_MODES,
    tflite_mode,
    tflite_weight_stats,
    to_onnx,
    to_tflite,
    verify_onnx,
    verify_tflite,
)

pytestmark = pytest.mark.slow  # deploys, fine-tunes, SSH boards or firmware builds: `pytest -m 'not slow'` skips them

IMAGE = (16, 16, 3)
CLASSES = 3


def _colour_task(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose dominant colour channel is the class: learnable in a few epochs, so outputs are confident."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    x = rng.random((n, *IMAGE), dtype=np.float32) * 0.6
    x[np.arange(n), :, :, y] += 0.4
    return x, y


def build_cnn(batch_size: int | None = None):
    keras = _keras()
    inputs = keras.Input(IMAGE, batch_size=batch_size)
    h = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.DepthwiseConv2D(3, activation="relu", name="depthwise")(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(16, activation="relu", name="dense")(h)
    outputs = keras.layers.Dense(CLASSES, activation="softmax", name="head")(h)
    return keras.Model(inputs, outputs, name="tiny_cnn")


def fresh_copy(model):
    """tfmot wrappers alter the layers they wrap, so every tfmot test starts from its own copy."""
    copy = _keras().models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


@pytest.fixture(scope="module")
def train_data():
    return _colour_task(300, seed=0)


@pytest.fixture(scope="module")
def samples():
    return _colour_task(50, seed=1)[0]


@pytest.fixture(scope="module")
def cnn(train_data):
    """A trained model whose input takes any batch (batch dim None)."""
    _keras().utils.set_random_seed(0)
    model = build_cnn()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(*train_data, epochs=5, batch_size=32, verbose=0)
    assert model.evaluate(*train_data, verbose=0)[1] > 0.9  # precondition: confident outputs
    return model


@pytest.fixture(scope="module")
def exported(cnn, train_data):
    """The trained model in every PTQ mode, converted once for the module."""
    return {mode: to_tflite(cnn, mode=mode, representative=train_data[0]) for mode in PTQ_MODES}


@pytest.fixture(scope="module")
def fixed_batch_cnn(cnn):
    """The same weights, built for a fixed batch of 4 (what some board toolchains insist on)."""
    model = build_cnn(batch_size=4)
    model.set_weights(cnn.get_weights())
    return model


def test_modes_are_data_with_a_reason_each():
    assert PTQ_MODES == ("float32", "fp16", "dynamic", "int8", "int16x8")
    assert all(len(PTQ_MODE_SPECS[mode].why) > 20 for mode in PTQ_MODES)


@pytest.mark.parametrize("mode", PTQ_MODES)
def test_every_ptq_mode_runs_in_litert_close_to_keras(cnn, exported, samples, mode):
    tflite = exported[mode]

    result = verify_tflite(cnn, tflite, samples)

    assert result["ok"], result
    assert result["max_abs_diff"] <= result["tolerance"]
    assert result["argmax_agreement"] >= 0.96
    assert result["mode"] == mode == tflite_mode(tflite)
    assert result["runtime"] == "ai_edge_litert"


def test_quantized_modes_shrink_the_file(exported):
    sizes = {mode: len(tflite) for mode, tflite in exported.items()}
    assert sizes["int8"] < sizes["fp16"] < sizes["float32"]


INTEGER_IO = [(mode, io) for mode in PTQ_MODES for io in PTQ_MODE_SPECS[mode].io_dtypes if io != "float32"]


@pytest.mark.parametrize(("mode", "io_dtype"), INTEGER_IO)
def test_integer_io_takes_integer_input_and_still_matches(cnn, train_data, samples, mode, io_dtype):
    from ai_edge_litert.interpreter import Interpreter

    tflite = to_tflite(cnn, mode=mode, representative=train_data[0], io_dtype=io_dtype, n_calibration=64)

    interpreter = Interpreter(model_content=tflite)
    assert interpreter.get_input_details()[0]["dtype"] == np.dtype(io_dtype)
    assert interpreter.get_output_details()[0]["dtype"] == np.dtype(io_dtype)
    result = verify_tflite(cnn, tflite, samples)
    assert result["ok"] and result["argmax_agreement"] >= 0.96, result
    assert result["mode"] == mode


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_fixed_batch_model_exports_and_verifies_with_a_ragged_last_batch(fixed_batch_cnn, train_data, samples, mode):
    tflite = to_tflite(fixed_batch_cnn, mode=mode, representative=train_data[0][:40])

    result = verify_tflite(fixed_batch_cnn, tflite, samples[:10])  # 10 = 4 + 4 + 2 padded

    assert result["ok"], result
    assert result["n_samples"] == 10


@pytest.mark.parametrize("which", ["dynamic_batch", "fixed_batch"])
def test_onnx_runs_in_onnxruntime_within_1e_4_of_keras(cnn, fixed_batch_cnn, samples, tmp_path, which):
    model = {"dynamic_batch": cnn, "fixed_batch": fixed_batch_cnn}[which]

    path = to_onnx(model, tmp_path / "nested" / "model.onnx")
    result = verify_onnx(model, path, samples[:10])

    assert path.is_file()
    assert result["max_abs_diff"] <= 1e-4
    assert result["ok"] and result["argmax_agreement"] == 1.0, result
    assert result["runtime"] == "onnxruntime"


def test_qat_model_converts_to_int8_and_onnx_with_qdq(cnn, train_data, samples, tmp_path):
    import tensorflow_model_optimization as tfmot

    qat = tfmot.quantization.keras.quantize_model(fresh_copy(cnn))
    qat.compile("adam", "sparse_categorical_crossentropy")
    qat.fit(*train_data, epochs=1, batch_size=32, verbose=0)

    tflite = to_tflite(qat, mode="int8", representative=train_data[0], n_calibration=50)
    result = verify_tflite(qat, tflite, samples)
    onnx_result = verify_onnx(qat, to_onnx(qat, tmp_path / "qat.onnx"), samples)

    assert result["ok"] and result["mode"] == "int8", result
    assert onnx_result["mode"] == "int8" and onnx_result["ok"], onnx_result
    assert {row["dtype"] for row in tflite_weight_stats(tflite)} == {"int8"}


def test_unstripped_clustering_is_refused_and_stripped_model_has_16_values(cnn):
    import tensorflow_model_optimization as tfmot

    clustering = tfmot.clustering.keras
    clustered = clustering.cluster_weights(
        fresh_copy(cnn),
        number_of_clusters=16,
        cluster_centroids_init=clustering.CentroidInitialization.KMEANS_PLUS_PLUS,
    )
    with pytest.raises(ModelError) as refused:
        to_tflite(clustered)
    assert "strip_clustering" in refused.value.fix

    tflite = to_tflite(clustering.strip_clustering(clustered))
    dense = next(row for row in tflite_weight_stats(tflite, layer_names=["dense"]) if row["layer"] == "dense")
    assert dense["unique_values"] <= 16 and dense["bits_per_weight"] <= 4


def test_cluster_preserving_qat_exports_int8_with_at_most_16_values_per_channel(cnn, train_data, samples):
    import tensorflow_model_optimization as tfmot

    clustering, quantization = tfmot.clustering.keras, tfmot.quantization.keras
    clustered = clustering.strip_clustering(clustering.cluster_weights(fresh_copy(cnn), number_of_clusters=16))
    cqat = quantization.quantize_apply(
        quantization.quantize_annotate_model(clustered),
        tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(),
    )
    cqat.compile("adam", "sparse_categorical_crossentropy")
    cqat.fit(*train_data, epochs=1, batch_size=32, verbose=0)

    tflite = to_tflite(cqat, mode="int8", representative=train_data[0], n_calibration=50)
    rows = tflite_weight_stats(tflite, layer_names=[layer.name for layer in cnn.layers])

    assert {row["layer"] for row in rows} == {"conv", "depthwise", "dense", "head"}
    assert all(row["dtype"] == "int8" and row["max_unique_per_channel"] <= 16 for row in rows), rows
    assert verify_tflite(cqat, tflite, samples)["ok"]


def test_cluster_preserving_qat_exports_to_int8_onnx_with_its_clustered_kernels(cnn, train_data, samples, tmp_path):
    """CQAT moves each kernel out of the wrapped layer (the wrapper writes the clustered kernel into
    it on every step), so the float twin ONNX quantization starts from must read the wrapper's."""
    import tensorflow_model_optimization as tfmot

    from edgecompress.export.keras_model import float_twin
    from edgecompress.export.onnx_quant import export_onnx

    keras = _keras()
    inputs = keras.Input(IMAGE)
    h = keras.layers.Conv2D(8, 3, use_bias=False, activation="relu", name="conv_no_bias")(inputs)
    h = keras.layers.Flatten()(keras.layers.MaxPooling2D()(h))
    outputs = keras.layers.Dense(CLASSES, activation="softmax", name="head")(h)
    clustering, quantization = tfmot.clustering.keras, tfmot.quantization.keras
    model = keras.Model(inputs, outputs)
    clustered = clustering.strip_clustering(clustering.cluster_weights(model, number_of_clusters=8))
    cqat = quantization.quantize_apply(
        quantization.quantize_annotate_model(clustered),
        tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(),
    )
    cqat.compile("adam", "sparse_categorical_crossentropy")
    cqat.fit(*train_data, epochs=1, batch_size=32, verbose=0)

    twin = float_twin(cqat)
    kernel = twin.get_layer("conv_no_bias").get_weights()[0]
    written = export_onnx(cqat, tmp_path / "cqat.onnx", mode="int8", calibration=train_data[0][:100])
    check = verify_onnx(twin, tmp_path / "cqat.onnx", samples)

    per_channel = [len(np.unique(kernel[..., c])) for c in range(kernel.shape[-1])]
    assert max(per_channel) <= 8, f"the twin holds the clustered kernel CQAT trained (per channel: {per_channel})"
    assert written == "int8" and check["argmax_agreement"] >= 0.9, check


def test_int8_export_keeps_the_accuracy_of_the_shared_tiny_model(tiny_keras_model):
    from edgecompress.export.litert import litert_predict

    tiny = tiny_keras_model
    tflite = to_tflite(tiny.model, mode="int8", representative=tiny.x_train, io_dtype="int8")

    predicted = np.argmax(litert_predict(tflite, tiny.x_test), axis=1)

    assert abs(float(np.mean(predicted == tiny.y_test)) - tiny.keras_accuracy()) <= 0.02
    assert verify_tflite(tiny.model, tflite, tiny.x_test)["ok"]


def test_full_integer_modes_need_representative_data(cnn):
    for mode in ("int8", "int16x8"):
        with pytest.raises(DataError) as missing:
            to_tflite(cnn, mode=mode)
        assert "representative" in missing.value.fix


def test_representative_data_of_the_wrong_shape_names_both_shapes(cnn):
    with pytest.raises(DataError) as wrong:
        to_tflite(cnn, mode="int8", representative=np.zeros((8, 32, 32, 3), np.float32))
    assert "(8, 32, 32, 3)" in wrong.value.problem and "16, 16, 3" in wrong.value.problem


def test_unknown_mode_and_impossible_io_type_list_the_valid_choices(cnn):
    with pytest.raises(ProfileError) as unknown:
        to_tflite(cnn, mode="int4")
    assert "int16x8" in unknown.value.fix
    with pytest.raises(ProfileError) as io:
        to_tflite(cnn, mode="fp16", io_dtype="int8")
    assert "float32" in io.value.fix


def test_conversion_failure_reports_the_converter_message_and_a_fix():
    keras, tf = _keras(), _tensorflow()
    model = keras.Sequential(
        [keras.Input((4, 4)), keras.layers.Lambda(lambda t: tf.linalg.det(t)[:, None]), keras.layers.Dense(2)],
        name="needs_flex",
    )

    with pytest.raises(ModelError) as failed:
        to_tflite(model)

    assert "MatrixDeterminant" in failed.value.problem and "needs_flex" in failed.value.problem
    assert "Flex" in failed.value.fix
    assert "loc(" not in failed.value.problem


def test_not_a_keras_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError):
        to_tflite("model.h5")
    with pytest.raises(ModelError):
        to_onnx(object(), tmp_path / "x.onnx")
