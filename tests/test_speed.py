"""Faster, not only smaller: structured pruning, low rank, MAC counts and the int8 / fp16 ONNX twins.

The network is the example digits CNN (conv - pool - conv - dense - dense) trained on
scikit-learn's 8x8 digits, its layer IDs measured by the real TwoNN analysis. What is
checked is what a user would check: the exported .tflite really has fewer channels and
fewer MACs, the accuracy comes back after fine-tuning, factorised layers compute what the
original did at full rank, and the ONNX twin of an int8 plan is int8 in onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgecompress._tf import keras, quiet_native_output
from edgecompress.compression import FineTuning, Knobs, apply_plan, baseline_plan, make_plan
from edgecompress.compression.channels import analyse
from edgecompress.compression.lowrank import LowRankRule, factorise, plan_factorisation
from edgecompress.compression.speed import StructureKnobs
from edgecompress.compression.structured import prune_channels
from edgecompress.compression.widths import DEFAULT_TILE, ChannelTile, MacModel, uniform_at_macs
from edgecompress.export import tflite_weight_stats, to_tflite
from edgecompress.export.macs import keras_macs, onnx_macs, summary, tflite_macs
from edgecompress.export.onnx import onnx_precision, verify_onnx
from edgecompress.export.onnx_quant import export_onnx
from edgecompress.profiles import load_profile

#: no rounding: the width rules' own arithmetic, apart from the kernels' tile
NO_TILE = ChannelTile(1, "no tile (tests of the width rule itself)")

pytestmark = pytest.mark.slow  # deploys, fine-tunes, SSH boards or firmware builds: `pytest -m 'not slow'` skips them

SEED = 0
#: Points of test accuracy (360 digits) pruning + fine-tuning may cost. Measured: within 2
#: points after 10 epochs; 5 points still catches a recipe that breaks the network (an
#: unrecovered 4-channel model sits near 40%).
MAX_PRUNING_DROP = 0.05


@dataclass
class Digits:
    model: Any
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    significance: Any

    def accuracy_of(self, model: Any) -> float:
        return float(np.mean(np.asarray(model(self.x_test, training=False)).argmax(axis=1) == self.y_test))


@pytest.fixture(scope="module")
def digits(tiny_keras_model) -> Digits:
    from edgecompress.analysis import analyze_model
    from edgecompress.example_model import build_digits_cnn

    k = keras()
    k.backend.clear_session()  # layer names conv2d, conv2d_1, dense, dense_1
    k.utils.set_random_seed(SEED)
    model = build_digits_cnn(10)
    model.compile(optimizer=k.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    data = tiny_keras_model
    model.fit(data.x_train, data.y_train, epochs=10, batch_size=32, verbose=0)
    with quiet_native_output():
        significance = analyze_model(model, data.x_train, n_samples=1000, seed=SEED)
    return Digits(model, data.x_train, data.y_train, data.x_test, data.y_test, significance)


@pytest.fixture(scope="module")
def pruned(digits: Digits):
    """twonn-prune with the defaults deploy uses, fine-tuned, exported int8."""
    plan = baseline_plan("twonn-prune", digits.model, significance=digits.significance)
    with quiet_native_output():
        compressed = apply_plan(
            plan, digits.model, (digits.x_train, digits.y_train), settings=FineTuning(epochs=10, progress=False)
        )
    with quiet_native_output((1, 2)):
        blob = to_tflite(compressed.model, mode="int8", representative=digits.x_train[:100])
        base_blob = to_tflite(digits.model, mode="int8", representative=digits.x_train[:100])
    return plan, compressed, blob, base_blob


def _residual_model() -> Any:
    """Conv - BN - ReLU, a residual Add of a second Conv - BN, depthwise, pointwise, Flatten - Dense."""
    k = keras()
    layers = k.layers
    image = layers.Input((8, 8, 3))
    a = layers.ReLU()(layers.BatchNormalization(name="bn1")(layers.Conv2D(8, 3, padding="same", name="c1")(image)))
    b = layers.BatchNormalization(name="bn2")(layers.Conv2D(8, 3, padding="same", name="c2")(a))
    joined = layers.Add(name="add")([a, b])
    depthwise = layers.DepthwiseConv2D(3, padding="same", name="dw")(joined)
    pointwise = layers.Conv2D(12, 1, name="pw")(depthwise)
    hidden = layers.Dense(10, activation="relu", name="d1")(layers.Flatten()(pointwise))
    model = k.Model(image, layers.Dense(3, name="out")(hidden))
    rng = np.random.default_rng(SEED)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in layer.get_weights()])
        elif layer.weights:
            layer.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in layer.get_weights()])
    return model


# ------------------------------------------------------------------------------ pruning


def test_structured_pruning_removes_channels_from_the_exported_tflite_and_cuts_macs(pruned, digits: Digits) -> None:
    plan, compressed, blob, base_blob = pruned
    widths = {layer.name: layer.structure_params for layer in plan.layers if "width" in layer.structure_params}
    assert widths, "the plan pruned nothing"
    stats = {
        row["layer"]: row
        for row in tflite_weight_stats(blob, layer_names=[layer.name for layer in compressed.model.layers])
    }
    for name, params in widths.items():
        assert params["width"] < params["of"]
        assert stats[name]["channels"] == params["width"], (
            f"{name}: the .tflite still has {stats[name]['channels']} filters"
        )
    pruned_macs = summary(tflite_macs(blob), "tflite")["total"]
    base_macs = summary(tflite_macs(base_blob), "tflite")["total"]
    assert pruned_macs < base_macs / 2
    assert pruned_macs == plan.macs, "the plan's MAC estimate must be what the exported graph computes"


def test_pruned_and_fine_tuned_model_keeps_its_accuracy(pruned, digits: Digits) -> None:
    _, compressed, _, _ = pruned
    assert digits.accuracy_of(compressed.model) >= digits.accuracy_of(digits.model) - MAX_PRUNING_DROP
    assert compressed.stages[0]["stage"] == "restructure (twonn-prune)"
    assert compressed.stages[0]["macs_after"] < compressed.stages[0]["macs_before"]


def test_id_guided_widths_follow_the_layer_ids(digits: Digits) -> None:
    plan = baseline_plan(
        "twonn-prune",
        digits.model,
        significance=digits.significance,
        knobs=Knobs(speed=StructureKnobs(width_factor=1.0, width_boost=1.0, width_floor=2, tile=NO_TILE)),
    )
    tiled = baseline_plan(
        "twonn-prune",
        digits.model,
        significance=digits.significance,
        knobs=Knobs(speed=StructureKnobs(width_factor=1.0, width_boost=1.0, width_floor=2)),
    )
    ids = {layer.name: layer.id for layer in digits.significance.layers}
    widths = {layer.name: layer.structure_params for layer in tiled.layers}
    for layer in plan.layers:
        if "width" in layer.structure_params:
            assert layer.structure_params["width"] == int(np.ceil(ids[layer.name]))
            # on LiteRT's kernels the same width is rounded up to the next multiple of 8
            of = layer.structure_params["of"]
            rounded = min(of, -(-int(np.ceil(ids[layer.name])) // 8) * 8)
            assert widths[layer.name].get("width", of) == rounded  # a layer rounded to its full width is not pruned
    assert any("rounded up to a multiple of 8 channels" in note for note in tiled.notes)
    last = plan.layers[-1]
    assert "is the model's output" in last.note and "width" not in last.structure_params


def test_uniform_control_matches_the_macs_of_the_id_guided_widths(digits: Digits) -> None:
    twonn = baseline_plan("twonn-prune", digits.model, significance=digits.significance)
    uniform = baseline_plan("uniform-prune", digits.model, knobs=Knobs(speed=StructureKnobs(target_macs=twonn.macs)))
    assert abs(uniform.macs - twonn.macs) <= 0.15 * twonn.macs
    # one fraction for every layer, each width then rounded up to the kernels' tile
    pruned = [
        (x.structure_params["width"], x.structure_params["of"]) for x in uniform.layers if "width" in x.structure_params
    ]
    assert pruned and any(
        all(width == DEFAULT_TILE.round_up(round(fraction * of), of) for width, of in pruned)
        for fraction in np.linspace(0.001, 1.0, 1000)
    ), f"no one fraction gives these widths: {pruned}"


def test_batchnorm_residual_add_and_depthwise_keep_tied_channels_consistent() -> None:
    model = _residual_model()
    channels = analyse(model)
    tied = channels.group_of("c1")
    assert set(tied.producers) == {"c1", "c2"} and {"bn1", "bn2", "dw"} <= set(tied.followers)
    result = prune_channels(model, {"c1": 5, "pw": 6, "d1": 4})
    assert result.kept["c1"] == result.kept["c2"], "both sides of the Add must keep the same channels"
    shapes = {layer.name: [w.shape for w in layer.get_weights()] for layer in result.model.layers if layer.weights}
    assert shapes["c2"][0] == (3, 3, 5, 5) and shapes["bn2"][0] == (5,) and shapes["dw"][0] == (3, 3, 5, 1)
    assert shapes["pw"][0] == (1, 1, 5, 6) and shapes["d1"][0] == (8 * 8 * 6, 4) and shapes["out"][0] == (4, 3)
    x = np.random.default_rng(SEED).random((4, 8, 8, 3), dtype=np.float32)
    assert result.model(x).shape == (4, 3)
    estimate = MacModel(channels).macs({"c1": 5, "c2": 5, "pw": 6, "d1": 4})
    assert estimate == sum(row.macs for row in keras_macs(result.model))
    whole = prune_channels(model, {"c1": 8, "pw": 12})
    np.testing.assert_allclose(whole.model(x), model(x), rtol=1e-5, atol=1e-4)


def test_layers_whose_channels_cannot_be_followed_are_refused_with_a_plan_note() -> None:
    k = keras()
    layers = k.layers
    image = layers.Input((8, 8, 1))
    left = layers.Conv2D(4, 3, padding="same", name="left")(image)
    right = layers.Conv2D(4, 3, padding="same", name="right")(image)
    joined = layers.Concatenate(name="concat")([left, right])
    widened = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw2")(
        layers.Conv2D(6, 1, name="mid")(joined)
    )
    model = k.Model(image, layers.Dense(10, name="head")(layers.Flatten()(widened)))
    channels = analyse(model)
    assert "Concatenate layer 'concat'" in channels.why_not("left")
    assert "depth multiplier above 1" in channels.why_not("mid")
    plan = baseline_plan("uniform-prune", model)
    notes = {layer.name: layer.note for layer in plan.layers}
    assert "Concatenate" in notes["left"] and "depth multiplier" in notes["mid"]
    assert all("width" not in layer.structure_params for layer in plan.layers)


def test_a_speed_preferring_profile_combines_a_speed_and_a_size_recipe_per_layer(digits: Digits) -> None:
    from rich.console import Console

    auto = load_profile("rpi-zero-2w")
    assert auto.compression.prefer == "speed" and auto.compression.strategy == "auto"
    # auto: the model fits as int8, so the size half is post-training int8 beside the pruning
    assert make_plan(auto, digits.model, digits.significance).strategy == "twonn-prune+ptq-only"
    profile = auto.model_copy(update={"compression": auto.compression.model_copy(update={"strategy": "cqat"})})
    plan = make_plan(profile, digits.model, digits.significance)
    assert plan.strategy.startswith("twonn-prune+") and plan.macs < plan.macs_before
    middle = [layer for layer in plan.layers if layer.role in ("significant", "insignificant")]
    assert any("width" in layer.structure_params and layer.recipe in ("cqat", "clustering") for layer in middle)
    console = Console(record=True, width=250)
    console.print(plan.table())
    text = console.export_text()
    assert "speed recipe" in text and "size recipe" in text and "theoretical speed-up" in text
    size_only = make_plan(load_profile("rpi4"), digits.model, digits.significance)
    assert size_only.structure == "none" and size_only.macs == size_only.macs_before


# ------------------------------------------------------------------------------ low rank


def test_low_rank_reproduces_the_layer_at_full_rank_and_cuts_macs_at_low_rank(digits: Digits) -> None:
    model = digits.model
    x = digits.x_test[:32]
    for name, rank in (("conv2d_1", 48), ("dense", 64)):  # full rank of each factorised matrix
        exact = factorise(model, {name: rank})
        assert [layer.name for layer in exact.layers].count(f"{name}_lowrank") == 1
        np.testing.assert_allclose(exact(x), model(x), rtol=1e-4, atol=1e-5)
    low = factorise(model, {"conv2d_1": 4, "dense": 4})
    before, after = (sum(row.macs for row in keras_macs(m)) for m in (model, low))
    assert after < before / 2
    with quiet_native_output((1, 2)):
        blob = to_tflite(low, mode="float32")
    assert summary(tflite_macs(blob), "tflite")["total"] == after


def test_low_rank_rank_comes_from_the_energy_threshold_or_the_layer_id(digits: Digits) -> None:
    layer = next(layer for layer in digits.model.layers if layer.name == "dense")
    by_energy, _ = plan_factorisation(layer, LowRankRule(energy=0.3))
    by_id, _ = plan_factorisation(layer, LowRankRule(source="id", factor=1.0), intrinsic_dimension=3.2)
    assert by_energy is not None and by_energy.energy_kept >= 0.3 and by_energy.macs_after < by_energy.macs_before
    assert by_id is not None and by_id.rank == 4
    whole, why = plan_factorisation(layer, LowRankRule(energy=1.0))
    assert whole is None and "left whole" in why


def test_lowrank_recipe_fine_tunes_and_exports_int8(digits: Digits) -> None:
    plan = baseline_plan(
        "lowrank",
        digits.model,
        significance=digits.significance,
        knobs=Knobs(speed=StructureKnobs(rank_source="id", rank_factor=1.0)),
    )
    factorised = [layer for layer in plan.layers if "rank" in layer.structure_params]
    assert factorised and plan.macs < plan.macs_before
    with quiet_native_output():
        compressed = apply_plan(
            plan, digits.model, (digits.x_train, digits.y_train), settings=FineTuning(epochs=3, progress=False)
        )
    assert digits.accuracy_of(compressed.model) >= digits.accuracy_of(digits.model) - MAX_PRUNING_DROP
    with quiet_native_output((1, 2)):
        blob = to_tflite(compressed.model, mode="int8", representative=digits.x_train[:100])
    assert summary(tflite_macs(blob), "tflite")["total"] == plan.macs


# ------------------------------------------------------------------------------ MACs


def test_keras_tflite_and_onnx_count_the_same_macs(digits: Digits, tmp_path: Path) -> None:
    from edgecompress.export import to_onnx

    names = [layer.name for layer in digits.model.layers]
    keras_side = summary(keras_macs(digits.model), "keras")
    with quiet_native_output((1, 2)):
        tflite_side = summary(tflite_macs(to_tflite(digits.model, mode="float32"), layer_names=names), "tflite")
    with quiet_native_output():
        onnx_side = summary(onnx_macs(to_onnx(digits.model, tmp_path / "m.onnx"), layer_names=names), "onnx")
    # conv 8x8x16 x 9, conv 4x4x32 x 144, dense 512 -> 64, dense 64 -> 10
    expected = 8 * 8 * 16 * 9 + 4 * 4 * 32 * 144 + 512 * 64 + 64 * 10
    assert keras_side["total"] == tflite_side["total"] == onnx_side["total"] == expected
    assert keras_side["by_layer"] == tflite_side["by_layer"] == onnx_side["by_layer"]


def test_uniform_at_macs_finds_the_closest_fraction() -> None:
    channels = analyse(_residual_model())
    macs = MacModel(channels)
    fraction, widths = uniform_at_macs(channels, macs.total // 4, tile=NO_TILE)
    assert 0.3 < fraction < 0.7 and abs(macs.macs(widths) - macs.total / 4) < 0.2 * macs.total


# ------------------------------------------------------------------------------ ONNX twins

#: The int8 ONNX twin may disagree with the int8 .tflite on a few near-tie digits: both
#: quantize independently (their own calibration maths), so 97% decision agreement.
MIN_ONNX_TFLITE_AGREEMENT = 0.97


def test_int8_onnx_is_qdq_quantized_and_agrees_with_keras_and_tflite(digits: Digits, tmp_path: Path) -> None:
    import onnx

    from edgecompress.export import to_onnx
    from edgecompress.export.litert import litert_predict

    path = tmp_path / "int8.onnx"
    with quiet_native_output():
        written = export_onnx(digits.model, path, mode="int8", calibration=digits.x_train[:200])
        float_path = to_onnx(digits.model, tmp_path / "float.onnx")
        check = verify_onnx(digits.model, path, digits.x_test)
    graph = onnx.load(str(path))
    op_types = {node.op_type for node in graph.graph.node}
    assert written == "int8" and onnx_precision(graph) == "int8"
    assert {"QuantizeLinear", "DequantizeLinear"} <= op_types
    weights = [
        init for init in graph.graph.initializer if init.data_type == onnx.TensorProto.INT8 and len(init.dims) >= 2
    ]
    assert len(weights) == 4, "every Conv/Dense kernel is stored as int8"
    assert path.stat().st_size < float_path.stat().st_size / 2.5
    assert check["ok"] and check["mode"] == "int8" and check["argmax_agreement"] >= 0.97
    with quiet_native_output((1, 2)):
        tflite = to_tflite(digits.model, mode="int8", representative=digits.x_train[:200])
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    onnx_scores = np.concatenate(
        [session.run(None, {name: digits.x_test[i : i + 1]})[0] for i in range(len(digits.x_test))]
    )
    agreement = np.mean(onnx_scores.argmax(1) == litert_predict(tflite, digits.x_test).argmax(1))
    assert agreement >= MIN_ONNX_TFLITE_AGREEMENT


def test_float_layers_of_the_plan_stay_float_in_the_int8_onnx(digits: Digits, tmp_path: Path) -> None:
    import onnx

    path = tmp_path / "int8-float-first.onnx"
    with quiet_native_output():
        export_onnx(digits.model, path, mode="int8", calibration=digits.x_train[:200], float_layers=["conv2d"])
    graph = onnx.load(str(path))
    int8_kernels = [
        init.name for init in graph.graph.initializer if init.data_type == onnx.TensorProto.INT8 and len(init.dims) >= 2
    ]
    assert len(int8_kernels) == 3 and not any("/conv2d/" in name for name in int8_kernels)


def test_fp16_onnx_twin_for_fp16_profiles(digits: Digits, tmp_path: Path) -> None:
    import onnx

    path = tmp_path / "half.onnx"
    with quiet_native_output():
        written = export_onnx(digits.model, path, mode="fp16")
        check = verify_onnx(digits.model, path, digits.x_test)
    graph = onnx.load(str(path))
    assert written == "fp16" and check["mode"] == "fp16" and check["ok"] and check["argmax_agreement"] >= 0.99
    assert graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 in, fp16 inside
