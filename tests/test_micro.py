"""TFLite Micro builds: the real TFLM interpreter, real LUT compression, real compilers.

Every model here is a tiny int8 CNN on scikit-learn's digits (from conftest), converted
with the TFLite converter, so the whole file runs in well under a minute.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgecompress._tf import keras as _keras
from edgecompress._tf import tensorflow as _tensorflow
from edgecompress.errors import BudgetError, ModelError, ProfileError
from edgecompress.micro import FirmwareOptions, build_micro, tflm
from edgecompress.micro.estimate import LABEL
from edgecompress.profiles import load_profile


def to_int8_tflite(model, calibration: np.ndarray) -> bytes:
    """Full-integer conversion with int8 input and output, as a microcontroller wants it."""
    tf = _tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([sample[None, ...]] for sample in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def digits_model(layers) -> object:
    keras = _keras()
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.layers.Input((8, 8, 1)), *layers])


#: These tests cover the host side (TFLM interpreter, estimates, the project); the linked
#: firmware has its own tests in test_micro_firmware.py.
ESTIMATES_ONLY = FirmwareOptions(mode="skip")


@pytest.fixture(scope="module")
def arduino():
    return load_profile("arduino-nano-33-ble")


@pytest.fixture(scope="module")
def plain_build(tiny_tflite_int8: Path, eval_npz: Path, arduino, tmp_path_factory):
    out = tmp_path_factory.mktemp("micro_plain")
    return build_micro(
        tiny_tflite_int8.read_bytes(),
        profile=arduino,
        eval_npz=eval_npz,
        out_dir=out,
        compress=False,
        name="digits",
        firmware_options=ESTIMATES_ONLY,
    )


@pytest.fixture(scope="module")
def clustered_tflite(tiny_keras_model) -> bytes:
    """The tiny CNN with its Dense kernel snapped to 4 distinct values, as clustering would leave it."""
    keras = _keras()
    model = keras.models.clone_model(tiny_keras_model.model)
    model.set_weights(tiny_keras_model.model.get_weights())
    dense = model.layers[-1]
    kernel, bias = dense.get_weights()
    centroids = np.quantile(kernel, [0.125, 0.375, 0.625, 0.875])
    snapped = centroids[np.abs(kernel[..., None] - centroids).argmin(-1)].astype(np.float32)
    dense.set_weights([snapped, bias])
    return to_int8_tflite(model, tiny_keras_model.x_train[:200])


@pytest.fixture(scope="module")
def clustered_build(clustered_tflite: bytes, eval_npz: Path, tmp_path_factory):
    out = tmp_path_factory.mktemp("micro_clustered")
    return build_micro(
        clustered_tflite, profile=load_profile("esp32-s3"), eval_npz=eval_npz, out_dir=out, name="digits"
    )


# --------------------------------------------------------------------------- accuracy and arena


def test_tflm_accuracy_equals_litert_accuracy_on_the_same_file(plain_build, tiny_keras_model):
    assert plain_build.accuracy == plain_build.litert_accuracy
    assert plain_build.tflm_vs_litert["identical_outputs"]
    assert plain_build.tflm_accuracy["n"] == len(tiny_keras_model.y_test)
    assert plain_build.accuracy > 0.8  # a trained model, not noise
    assert abs(plain_build.accuracy - tiny_keras_model.keras_accuracy()) < 0.05


def test_arena_is_measured_and_the_model_runs_in_the_margin_arena(plain_build, tiny_tflite_int8, eval_npz):
    arena = plain_build.arena
    assert 0 < arena.recorded_bytes <= arena.minimum_bytes < plain_build.arena_with_margin
    assert plain_build.arena_with_margin == arena.minimum_bytes + arena.margin_bytes + (
        -(arena.minimum_bytes + arena.margin_bytes) % 16
    )
    from edgecompress.micro.slim import slim

    original = tiny_tflite_int8.read_bytes()
    model = slim(original).model  # the arena is the firmware's: measured on the model it carries
    in_margin_arena = tflm.evaluate_tflm(model, eval_npz, plain_build.arena_with_margin)
    assert in_margin_arena.accuracy["overall"] == plain_build.accuracy
    assert tflm.runs_in_arena(model, arena.minimum_bytes)
    assert not tflm.runs_in_arena(model, arena.minimum_bytes - 16)  # the minimum really is the minimum
    # TFLM keeps every per-channel scale it is given in the arena: the biases' dropped scales are RAM saved too
    assert not tflm.runs_in_arena(original, arena.minimum_bytes)


def test_build_reports_budget_fit_latency_estimate_and_writes_its_figures(plain_build, arduino):
    fits = plain_build.fits
    assert fits["ram"] and fits["flash"]
    assert fits["ram_budget_bytes"] == arduino.model_memory_budget_bytes
    assert fits["ram_needed_bytes"] == plain_build.arena_with_margin + plain_build.io.input.bytes
    # conv 8x8x8 outputs x 3x3x1 + conv 4x4x16 outputs x 3x3x8 + dense 10 x 256
    assert plain_build.macs["total"] == 8 * 8 * 8 * 9 + 4 * 4 * 16 * 72 + 10 * 256
    expected_ms = plain_build.macs["total"] * 2.0 / (arduino.cpu.clock_mhz * 1e6) * 1e3  # Cortex-M4: 2 cycles/MAC
    assert plain_build.latency_estimate_ms == pytest.approx(expected_ms, abs=1e-3)
    assert plain_build.latency.label == LABEL and "estimate" in LABEL
    saved = json.loads((plain_build.tflite_path.parent / "micro_build.json").read_text())
    assert saved["arena_with_margin"] == plain_build.arena_with_margin
    assert saved["latency_estimate"]["label"] == LABEL


# --------------------------------------------------------------------------- firmware


def test_firmware_project_compiles_on_the_host_and_carries_the_model_byte_for_byte(plain_build):
    directory = plain_build.firmware_dir
    for name in ("model_data.h", "model_data.cc", "op_resolver.h", "main.cc", "model_data_check.cc", "README.md"):
        assert (directory / name).is_file(), name
    if shutil.which("g++") is None:
        pytest.skip("no host g++")
    check = plain_build.firmware.host_check
    assert check["array_matches_tflite"] and check["aligned_16"] and check["tfl3_identifier"]
    assert check["arena_bytes"] == plain_build.arena_with_margin
    host = plain_build.firmware.object_for("host")
    assert host.flash_bytes >= plain_build.compression["slimming"]["slimmed_bytes"]
    assert plain_build.firmware.object_for("host", "sample_input.cc") is not None  # compiled, not counted as model
    header = (directory / "model_data.h").read_text()
    assert f"kTensorArenaSize = {plain_build.arena_with_margin};" in header
    assert "kInputShape[4] = {1, 8, 8, 1};" in header
    assert f"kInputZeroPoint = {plain_build.io.input.zero_point};" in header


def test_op_resolver_registers_exactly_the_models_ops(plain_build):
    resolver = (plain_build.firmware_dir / "op_resolver.h").read_text()
    registered = re.findall(r"resolver\.(Add\w+)\(\)", resolver)
    assert registered == ["AddConv2D", "AddFullyConnected", "AddMaxPool2D", "AddReshape", "AddSoftmax"]
    assert plain_build.ops == ["CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "RESHAPE", "SOFTMAX"]
    assert f"kOpCount = {len(registered)};" in (plain_build.firmware_dir / "model_data.h").read_text()


@pytest.mark.skipif(shutil.which("arm-none-eabi-g++") is None, reason="gcc-arm-none-eabi is not installed")
def test_model_data_compiles_for_cortex_m_and_gives_the_flash_figure(plain_build):
    cortex = plain_build.firmware.object_for("cortex-m4")  # the Nano 33 BLE's nRF52840 is a Cortex-M4F
    assert cortex is not None and "arm-none-eabi" in cortex.compiler
    assert cortex.flash_bytes >= plain_build.compression["slimming"]["slimmed_bytes"]
    assert plain_build.flash_bytes["used_for_budget"] == cortex.flash_bytes
    assert plain_build.fits["flash_breakdown"]["model data"] == cortex.flash_bytes


def test_the_firmware_carries_the_model_without_what_tflm_never_reads(plain_build, tiny_tflite_int8, eval_npz):
    """Tensor names and repeated zero points of symmetric weights go; TFLM computes exactly the same outputs."""
    from edgecompress.micro.graph import read_model
    from edgecompress.micro.slim import slim

    original = tiny_tflite_int8.read_bytes()
    slimmed = slim(original)
    report = plain_build.compression["slimming"]
    assert report["identical_outputs"] and report["slimmed_bytes"] == len(slimmed.model) < len(original)
    assert slimmed.names_dropped > 0 and slimmed.zero_points_dropped > 0
    assert not any(t.name for sg in read_model(slimmed.model).subgraphs for t in sg.tensors)
    # the int32 biases keep one scale (the kernels derive theirs from input and filter scales); filters keep all
    biases, filters = _constant_inputs(slimmed.model, 2), _constant_inputs(slimmed.model, 1)
    assert slimmed.quantizations_dropped == len(biases) > 0
    assert all(len(np.atleast_1d(t.quantization.scales)) == 1 for t in biases)
    assert any(len(np.atleast_1d(t.quantization.scales)) > 1 for t in filters)
    arena = plain_build.candidates["uncompressed"]["arena"]["with_margin_bytes"]
    before = tflm.evaluate_tflm(original, eval_npz, arena)
    after = tflm.evaluate_tflm(slimmed.model, eval_npz, arena)
    assert np.array_equal(before.scores, after.scores)  # every sample, not only the build's check
    assert plain_build.flash_by_tensor[0]["layer"] != "(unnamed)"  # reports still read the named model


def _constant_inputs(tflite: bytes, position: int) -> list:
    """The constant tensors at input `position` of every convolution and fully connected operator."""
    from edgecompress.micro.graph import read_model

    return [
        op.inputs[position]
        for sg in read_model(tflite).subgraphs
        for op in sg.operators
        if op.opcode_name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
        and len(op.inputs) > position
        and op.inputs[position] is not None
        and op.inputs[position].buffer is not None
    ]


# --------------------------------------------------------------------------- compression


def test_low_cardinality_layer_gets_smaller_with_lut_and_tflm_outputs_do_not_change(
    clustered_build, clustered_tflite, eval_npz
):
    plan = clustered_build.compression["plan"]["chosen"]
    dense = next(t for t in plan if t["layer"] == "dense")
    assert dense["unique_values"] <= 4 and dense["index_bits"] == 2
    saved = clustered_build.uncompressed_bytes - clustered_build.compressed_bytes
    assert saved >= dense["original_bytes"] * 0.5  # 8 -> 2 bits per weight, less tables and alignment
    assert clustered_build.shipped == "compressed"
    assert "TFLM_DECODE" in clustered_build.ops
    assert "resolver.AddDecode()" in (clustered_build.firmware_dir / "op_resolver.h").read_text()
    # Independent of the build's own check: run both files in TFLM and compare every output.
    compressed = clustered_build.compressed_tflite_path.read_bytes()
    original = tflm.evaluate_tflm(
        clustered_tflite, eval_npz, clustered_build.candidates["uncompressed"]["arena"]["with_margin_bytes"]
    )
    decoded = tflm.evaluate_tflm(compressed, eval_npz, clustered_build.arena_with_margin)
    assert np.array_equal(original.scores, decoded.scores)
    assert clustered_build.accuracy == original.accuracy["overall"]


def test_a_compressed_model_is_slimmed_of_the_quantization_decode_never_reads(tiny_keras_model, eval_npz):
    """Every kernel clustered (the convolutions quantized per channel): the packed indices keep one scale, the
    decoded kernels keep a scale per channel and one zero point, the biases one scale; TFLM's outputs are equal."""
    from edgecompress.micro import compress as lut
    from edgecompress.micro.graph import read_model
    from edgecompress.micro.slim import slim

    keras = _keras()
    model = keras.models.clone_model(tiny_keras_model.model)
    model.set_weights(tiny_keras_model.model.get_weights())
    for layer in model.layers:
        if layer.get_weights() and layer.__class__.__name__ in ("Conv2D", "Dense"):
            kernel, *rest = layer.get_weights()
            centroids = np.quantile(kernel, [0.125, 0.375, 0.625, 0.875])
            layer.set_weights([centroids[np.abs(kernel[..., None] - centroids).argmin(-1)].astype(np.float32), *rest])
    plain = to_int8_tflite(model, tiny_keras_model.x_train[:200])
    compressed = lut.apply_lut(plain, lut.plan_lut(plain).chosen)
    slimmed = slim(compressed)
    decodes = [
        op for sg in read_model(slimmed.model).subgraphs for op in sg.operators if op.opcode_name == "TFLM_DECODE"
    ]
    per_channel = [op.outputs[0] for op in decodes if len(np.atleast_1d(op.outputs[0].quantization.scales)) > 1]
    assert per_channel, "the test needs a per-channel decoded kernel"
    assert all(len(np.atleast_1d(t.quantization.zero_points)) == 1 for t in per_channel)
    assert all(
        op.inputs[0].quantization is None or len(np.atleast_1d(op.inputs[0].quantization.scales)) == 1 for op in decodes
    )
    assert slimmed.quantizations_dropped >= len(per_channel) + len(_constant_inputs(slimmed.model, 2)) > 0
    arena = tflm.measure_arena(compressed).with_margin_bytes
    assert np.array_equal(
        tflm.evaluate_tflm(compressed, eval_npz, arena).scores,
        tflm.evaluate_tflm(slimmed.model, eval_npz, arena).scores,
    )


def test_decoded_weights_are_counted_in_the_arena_and_kept_uncompressed_when_ram_is_short(
    clustered_build, clustered_tflite, eval_npz, tmp_path
):
    plain_ram = clustered_build.candidates["uncompressed"]["budget"]["ram_needed_bytes"]
    compressed_ram = clustered_build.candidates["compressed"]["budget"]["ram_needed_bytes"]
    assert compressed_ram > plain_ram  # DECODE rebuilds the int8 kernel in the arena
    tight = load_profile("esp32-s3").model_copy(update={"model_memory_budget_bytes": plain_ram})
    build = build_micro(clustered_tflite, profile=tight, eval_npz=eval_npz, out_dir=tmp_path, name="digits")
    assert build.shipped == "uncompressed"
    kept = build.compression["kept_uncompressed_for_ram"]
    assert [row["layer"] for row in kept] == ["dense"]
    assert any("Layer 'dense' was left uncompressed" in note for note in build.notes)
    assert build.fits["ram"]


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("activation", "op"),
    [
        ("gelu", "GELU"),  # no TFLM kernel at all
        ("selu", "EXP"),
    ],  # a TFLM kernel exists, but not for int8
)
def test_op_tflm_cannot_run_is_refused_naming_the_layer(activation, op, tiny_keras_model, eval_npz, arduino, tmp_path):
    keras = _keras()
    model = digits_model(
        [
            keras.layers.Flatten(),
            keras.layers.Dense(16, activation=activation, name=f"odd_{activation}"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    tflite_bytes = to_int8_tflite(model, tiny_keras_model.x_train[:50])
    with pytest.raises(ModelError) as raised:
        build_micro(tflite_bytes, profile=arduino, eval_npz=eval_npz, out_dir=tmp_path)
    assert f"layer 'odd_{activation}'" in raised.value.problem and op in raised.value.problem
    assert raised.value.fix


def test_model_too_big_for_arduino_nano_is_refused_with_the_figures(tiny_keras_model, eval_npz, arduino, tmp_path):
    keras = _keras()
    model = digits_model(
        [
            keras.layers.Flatten(),
            keras.layers.Dense(9000, activation="relu", name="huge"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    tflite_bytes = to_int8_tflite(model, tiny_keras_model.x_train[:50])
    with pytest.raises(BudgetError) as raised:
        build_micro(tflite_bytes, profile=arduino, eval_npz=eval_npz, out_dir=tmp_path, name="huge")
    message = raised.value.problem
    assert "arduino-nano-33-ble" in message and "flash" in message
    assert f"{arduino.flash_budget_bytes:,} B" in message
    assert "layer 'huge'" in message
    needed = int(re.search(r"flash: needs ([\d,]+) B", message)[1].replace(",", ""))
    from edgecompress.micro.slim import slim

    carried = len(slim(tflite_bytes).model)  # what the firmware would carry: names and repeated zero points dropped
    assert needed > carried > arduino.flash_budget_bytes - 100_000
    report = json.loads((tmp_path / "micro_build.json").read_text())
    assert report["refused"] and not report["candidates"]["uncompressed"]["budget"]["flash"]
    assert not (tmp_path / "firmware").exists()


def test_non_microcontroller_profile_is_refused(tiny_tflite_int8, eval_npz, tmp_path):
    with pytest.raises(ProfileError, match="not a microcontroller"):
        build_micro(tiny_tflite_int8.read_bytes(), profile=load_profile("rpi4"), eval_npz=eval_npz, out_dir=tmp_path)
