"""Sizes and unique weight values are read back out of the exported .tflite, not taken on trust."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

from edgecompress._tf import keras as _keras
from edgecompress.errors import ModelError
from edgecompress.export import (
    PTQ_MODES,
    artifact_sizes,
    bitpacked_size,
    gzip_bytes,
    tflite_mode,
    tflite_weight_stats,
    to_tflite,
)
from edgecompress.export.weights import index_bits

INPUT = (10, 10, 2)


def build_model():
    """Every weight-bearing op TFLite distinguishes: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED."""
    keras = _keras()
    inputs = keras.Input(INPUT)
    h = keras.layers.Conv2D(16, 3, activation="relu", name="conv")(inputs)
    h = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, activation="relu", name="depthwise")(h)
    h = keras.layers.Flatten()(h)  # 6 * 6 * 32 = 1152 features
    h = keras.layers.Dense(64, activation="relu", name="clustered")(h)
    outputs = keras.layers.Dense(4, name="head")(h)
    return keras.Model(inputs, outputs)


def output_axes(layer) -> int:
    """How many trailing kernel axes index an output channel: (C, multiplier) for depthwise, else 1."""
    return 2 if layer.name == "depthwise" else 1


def by_output_channel(kernel: np.ndarray, axes: int) -> np.ndarray:
    """Kernel as (weights per channel, output channels)."""
    return kernel.reshape(-1, int(np.prod(kernel.shape[-axes:])))


def binarise(kernel: np.ndarray, axes: int) -> np.ndarray:
    """XNOR-style alpha_c * sign(W), alpha_c = mean |W| per output channel.

    The first two weights of each channel are forced to + and - so that every channel of
    a small (3x3 depthwise) kernel really holds two values.
    """
    alpha = np.abs(by_output_channel(kernel, axes)).mean(axis=0)
    signs = np.where(by_output_channel(kernel, axes) >= 0, 1.0, -1.0)
    signs[:2] = [[1.0], [-1.0]]
    return (signs * alpha).reshape(kernel.shape).astype(np.float32)


def cluster16(kernel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    codebook = rng.permutation(np.linspace(-0.3, 0.3, 16))
    return codebook[rng.integers(0, 16, kernel.shape)].astype(np.float32)


def keras_unique_per_output_channel(kernel: np.ndarray, axes: int = 1) -> list[int]:
    return [len(np.unique(column)) for column in by_output_channel(kernel, axes).T]


@pytest.fixture(scope="module")
def compressed_model():
    """'clustered' has exactly 16 values; every other layer is binarised per output channel."""
    _keras().utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    model = build_model()
    for layer in model.layers:
        if layer.weights:
            kernel, bias = layer.get_weights()
            new = cluster16(kernel, rng) if layer.name == "clustered" else binarise(kernel, output_axes(layer))
            layer.set_weights([new, rng.normal(0, 0.01, bias.shape).astype(np.float32)])
    assert len(np.unique(model.get_layer("clustered").kernel.numpy())) == 16  # precondition
    return model


@pytest.fixture(scope="module")
def calibration():
    return np.random.default_rng(1).random((64, *INPUT), dtype=np.float32)


@pytest.fixture(scope="module")
def exported(compressed_model, calibration):
    return {mode: to_tflite(compressed_model, mode=mode, representative=calibration) for mode in PTQ_MODES}


def stats_by_layer(tflite: bytes, model) -> dict[str, dict]:
    rows = tflite_weight_stats(tflite, layer_names=[layer.name for layer in model.layers])
    return {row["layer"]: row for row in rows}


@pytest.mark.parametrize("mode", PTQ_MODES)
def test_every_weight_op_is_read_back_with_its_keras_layer(exported, compressed_model, mode):
    stats = stats_by_layer(exported[mode], compressed_model)

    assert set(stats) == {"conv", "depthwise", "clustered", "head"}
    assert {row["op"] for row in stats.values()} == {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
    assert stats["clustered"]["n_weights"] == 1152 * 64
    assert stats["clustered"]["shape"] == [64, 1152]  # TFLite stores [out, in]


@pytest.mark.parametrize("mode", ["float32", "fp16"])
def test_a_16_value_kernel_exported_as_float_reads_back_with_16_values(exported, compressed_model, mode):
    clustered = stats_by_layer(exported[mode], compressed_model)["clustered"]

    assert clustered["unique_values"] == 16
    assert clustered["bits_per_weight"] == 4 and clustered["codebook"] == "tensor"
    assert clustered["bitpacked_bits"] == 1152 * 64 * 4 + 16 * clustered["stored_bits"]


@pytest.mark.parametrize("mode", ["dynamic", "int8", "int16x8"])
def test_a_16_value_kernel_exported_as_int8_keeps_its_values_per_channel(exported, compressed_model, mode):
    clustered = stats_by_layer(exported[mode], compressed_model)["clustered"]
    kernel = compressed_model.get_layer("clustered").kernel.numpy()

    assert clustered["dtype"] == "int8" and clustered["quantization"] == "per-channel"
    assert clustered["max_unique_per_channel"] == max(keras_unique_per_output_channel(kernel)) <= 16
    assert clustered["bits_per_weight"] == 4


@pytest.mark.parametrize("mode", PTQ_MODES)
def test_binarised_kernels_read_back_with_two_values_per_output_channel(exported, compressed_model, mode):
    stats = stats_by_layer(exported[mode], compressed_model)

    for name in ("conv", "depthwise", "head"):
        layer = compressed_model.get_layer(name)
        kernel = layer.get_weights()[0]
        assert keras_unique_per_output_channel(kernel, output_axes(layer)) == [2] * stats[name]["channels"]
        assert stats[name]["max_unique_per_channel"] == 2, (name, stats[name])
        assert stats[name]["channels"] == by_output_channel(kernel, output_axes(layer)).shape[1]


def test_binarised_float_kernel_has_one_bit_per_weight_with_per_channel_codebooks(exported, compressed_model):
    head = stats_by_layer(exported["float32"], compressed_model)["head"]

    assert head["unique_values"] == 2 * 4  # one +-alpha pair per output channel
    assert head["codebook"] == "per-channel" and head["bits_per_weight"] == 1
    assert head["bitpacked_bits"] == 64 * 4 * 1 + 4 * 2 * 32


def test_int8_binarised_kernel_stores_only_plus_and_minus_127(exported, compressed_model):
    conv = stats_by_layer(exported["int8"], compressed_model)["conv"]
    assert conv["unique_stored_values"] == 2 and conv["quantization"] == "per-channel"


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_bitpacked_size_beats_gzip_for_a_clustered_and_binarised_model(exported, mode):
    tflite = exported[mode]

    packed = bitpacked_size(tflite_weight_stats(tflite), tflite_bytes=tflite)

    assert packed["total_bytes"] < gzip_bytes(tflite) < len(tflite)
    assert packed["total_bytes"] == sum(
        packed[key] for key in ("weights_packed_bytes", "codebook_bytes", "bias_bytes", "other_constant_bytes")
    )
    assert packed["weights_packed_bytes"] < packed["weights_stored_bytes"]
    assert "ceil(log2" in packed["definition"]


def test_bitpacked_size_without_the_file_leaves_other_constants_out(exported):
    packed = bitpacked_size(tflite_weight_stats(exported["float32"]))
    assert packed["other_constant_bytes"] is None
    assert packed["total_bytes"] == packed["weights_packed_bytes"] + packed["codebook_bytes"] + packed["bias_bytes"]


def test_unclustered_weights_are_never_packed_bigger_than_stored():
    tflite = to_tflite(build_model())  # fresh random weights: nearly every value distinct

    rows = tflite_weight_stats(tflite)

    assert any(row["codebook"] == "none" for row in rows)
    for row in rows:
        assert row["bitpacked_bits"] <= row["stored_bytes"] * 8


def test_gzip_size_is_deterministic_and_ignores_file_time(exported, tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(exported["float32"])
    first = artifact_sizes(path)
    os.utime(path, (1_000_000, 1_000_000))
    second = artifact_sizes(path)

    assert first == second == {"file_bytes": len(exported["float32"]), "gzip_bytes": gzip_bytes(exported["float32"])}
    assert gzip_bytes(exported["float32"]) == len(gzip.compress(exported["float32"], compresslevel=9, mtime=0))


def test_index_bits_is_ceil_log2_with_zero_for_a_constant():
    assert [index_bits(n) for n in (1, 2, 3, 4, 16, 17, 256)] == [0, 1, 2, 2, 4, 5, 8]


def test_sizes_of_a_missing_file_and_stats_of_non_tflite_bytes_are_model_errors(tmp_path):
    with pytest.raises(ModelError) as missing:
        artifact_sizes(tmp_path / "absent.tflite")
    assert "absent.tflite" in missing.value.problem
    with pytest.raises(ModelError):
        tflite_weight_stats(b"not a flatbuffer at all")


def test_reads_a_file_converted_outside_edgecompress(tiny_tflite_int8):
    """The shared fixture is made with the bare TFLite converter: the reader must not depend on to_tflite."""
    tflite = tiny_tflite_int8.read_bytes()

    rows = tflite_weight_stats(tflite)

    assert tflite_mode(tflite) == "int8"
    assert [row["op"] for row in rows] == ["CONV_2D", "CONV_2D", "FULLY_CONNECTED"]
    assert all(row["dtype"] == "int8" and row["quantization"] == "per-channel" for row in rows)
    assert artifact_sizes(tiny_tflite_int8)["file_bytes"] == len(tflite)
