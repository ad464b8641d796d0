"""Compression recipes on a real network: what each promises about the weights, and that the
fine-tuned model still classifies.

The network is the example digits CNN (conv - pool - conv - dense - dense) trained on
scikit-learn's 8x8 digits; every recipe is fine-tuned for two epochs, so the whole file
runs in about a minute. Value-set promises are checked on the Keras weights here; the
export tests read the same facts back out of the .tflite files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from verdicts import LayerVerdict, Significance

from edgecompress._tf import keras
from edgecompress.compression import BASELINES, FineTuning, apply_plan, plan_for_strategy, run_baseline
from edgecompress.compression.finetune import finetune, loss_for, split_validation
from edgecompress.compression.lowbit import coded_kernel, project_latent
from edgecompress.compression.recipes import RECIPES
from edgecompress.errors import DataError, ModelError

pytestmark = pytest.mark.slow  # deploys, fine-tunes, SSH boards or firmware builds: `pytest -m 'not slow'` skips them

EPOCHS = 2
SEED = 0
#: Largest accuracy drop (test set, 360 digits) a recipe may cost after fine-tuning. On this
#: task every recipe measured within 1.5 points of the base model; 3 points leaves room for
#: platform differences without letting a broken recipe through (an untrained binarised
#: model loses more than 10).
MAX_ACCURACY_DROP = 0.03


@dataclass
class Digits:
    model: Any
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    accuracy: float
    first: str
    significant: str
    insignificant: str
    last: str

    @property
    def significance(self) -> Significance:
        return Significance([LayerVerdict(self.significant, True), LayerVerdict(self.insignificant, False)])

    def accuracy_of(self, model: Any) -> float:
        return float(np.mean(model.predict(self.x_test, verbose=0).argmax(axis=1) == self.y_test))


@pytest.fixture(scope="module")
def digits(tiny_keras_model) -> Digits:
    from edgecompress.example_model import build_digits_cnn

    k = keras()
    k.utils.set_random_seed(SEED)
    model = build_digits_cnn(10)
    model.compile(optimizer=k.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    data = tiny_keras_model
    model.fit(data.x_train, data.y_train, epochs=10, batch_size=32, verbose=0)
    names = [layer.name for layer in model.layers if layer.weights]
    digits = Digits(model, data.x_train, data.y_train, data.x_test, data.y_test, 0.0, *names)
    digits.accuracy = digits.accuracy_of(model)
    return digits


#: Baselines that fine-tune, plus the two plan strategies no baseline covers.
TRAINED = [
    "qat",
    "clustering-ptq",
    "pruning-ptq",
    "cqat",
    "twonn-cqat",
    "twonn-mixed",
    "strategy:cqat-binary",
    "strategy:binary",
]


@pytest.fixture(scope="module")
def compressed(digits: Digits):
    """Compress once per recipe name and share the result between tests."""
    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in cache:
            if name.startswith("strategy:"):
                plan = plan_for_strategy(
                    digits.model, name.split(":", 1)[1], export_mode="int8", significance=digits.significance
                )
                cache[name] = apply_plan(
                    plan,
                    digits.model,
                    (digits.x_train, digits.y_train),
                    settings=FineTuning(epochs=EPOCHS, seed=SEED, progress=False),
                )
            else:
                cache[name] = run_baseline(
                    name,
                    digits.model,
                    (digits.x_train, digits.y_train),
                    epochs=EPOCHS,
                    seed=SEED,
                    significance=digits.significance,
                )
        return cache[name]

    return get


def kernels(model: Any) -> dict[str, np.ndarray]:
    """Kernel values by the original layer name, looking inside tfmot's QAT wrappers."""
    found = {}
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        for weight in layer.weights:
            if weight.name.split("/")[-1] == "kernel:0":
                found[inner.name] = weight.numpy()
    return found


def per_channel(kernel: np.ndarray) -> list[np.ndarray]:
    return [np.unique(kernel[..., c]) for c in range(kernel.shape[-1])]


def test_the_base_model_is_good_enough_to_judge_compression(digits: Digits) -> None:
    assert digits.accuracy > 0.95


@pytest.mark.parametrize("name", TRAINED)
def test_each_recipe_keeps_the_accuracy_after_fine_tuning(name: str, digits: Digits, compressed) -> None:
    result = compressed(name)
    accuracy = digits.accuracy_of(result.model)
    assert accuracy >= digits.accuracy - MAX_ACCURACY_DROP, f"{name}: {accuracy:.3f} vs base {digits.accuracy:.3f}"
    assert result.stages and all(1 <= stage["steps"] <= stage["budget_steps"] for stage in result.stages)


def test_clustering_leaves_at_most_16_values_in_every_layer(digits: Digits, compressed) -> None:
    result = compressed("clustering-ptq")
    found = kernels(result.model)
    assert set(found) == {digits.first, digits.significant, digits.insignificant, digits.last}
    for name, kernel in found.items():
        assert len(np.unique(kernel)) <= 16, name
    assert all(
        type(layer).__name__ in {"Conv2D", "Dense", "MaxPooling2D", "Flatten", "Dropout"}
        for layer in result.model.layers
    )
    assert result.export_mode == "int8"


def test_cqat_keeps_the_clusters_through_quantization_aware_training(compressed) -> None:
    result = compressed("cqat")
    assert {type(layer).__name__ for layer in result.model.layers} >= {"QuantizeWrapperV2"}
    for name, kernel in kernels(result.model).items():
        assert len(np.unique(kernel)) <= 16, name
    assert [stage["stage"] for stage in result.stages] == ["shape (cqat)", "quantize (cqat)"]


def test_twonn_cqat_quantizes_significant_layers_and_freezes_clustered_insignificant_ones(
    digits: Digits, compressed
) -> None:
    result = compressed("twonn-cqat")
    model = result.model
    wrapped = {layer.layer.name for layer in model.layers if type(layer).__name__ == "QuantizeWrapperV2"}
    assert wrapped & set(kernels(model)) == {digits.significant}  # tfmot may also wrap the pooling after it
    found = kernels(model)
    assert len(np.unique(found[digits.significant])) <= 16
    assert len(np.unique(found[digits.insignificant])) <= 16
    assert model.get_layer(digits.insignificant).trainable is False
    assert len(np.unique(found[digits.first])) > 16  # first and last layers are left for int8 export
    assert len(np.unique(found[digits.last])) > 16


def test_mixed_precision_gives_binary_and_2_bit_channels(digits: Digits, compressed) -> None:
    result = compressed("twonn-mixed")
    [shape] = [stage for stage in result.stages if stage["stage"].startswith("shape")]
    assert "(4x the base" in shape["stop_rule"]["cap"]  # binarisation gets 4x the steps clustering gets
    found = kernels(result.model)
    for values in per_channel(found[digits.insignificant]):
        assert len(values) == 2 and np.isclose(values[0], -values[1]) and values[1] > 0  # alpha_c * {-1, +1}
    for values in per_channel(found[digits.significant]):
        assert len(values) <= 4
        steps = values / np.abs(values).min()  # the levels alpha_c * {-1, -1/3, 1/3, 1}, or a subset of them
        assert np.allclose(steps, np.round(steps)) and set(np.round(steps).astype(int)) <= {-3, -1, 1, 3}
    assert len(np.unique(found[digits.first])) > 16
    assert {type(layer).__name__ for layer in result.model.layers} <= {
        "Conv2D",
        "Dense",
        "MaxPooling2D",
        "Flatten",
        "Dropout",
    }


def test_binarising_every_middle_layer_leaves_two_values_per_channel(digits: Digits, compressed) -> None:
    result = compressed("strategy:binary")
    found = kernels(result.model)
    for name in (digits.significant, digits.insignificant):
        assert all(len(values) == 2 for values in per_channel(found[name])), name


def test_straight_through_training_recovers_what_binarisation_costs(digits: Digits, compressed) -> None:
    untrained = keras().models.clone_model(digits.model)
    untrained.set_weights(digits.model.get_weights())
    for name in (digits.significant, digits.insignificant):
        layer = untrained.get_layer(name)
        layer.kernel.assign(coded_kernel(project_latent(layer.kernel), 1))
    untrained_accuracy = digits.accuracy_of(untrained)
    trained_accuracy = digits.accuracy_of(compressed("strategy:binary").model)
    assert untrained_accuracy < digits.accuracy - 0.05
    assert trained_accuracy > untrained_accuracy + 0.05


def test_pruning_zeroes_half_of_every_layer(compressed) -> None:
    result = compressed("pruning-ptq")
    for name, kernel in kernels(result.model).items():
        assert 0.49 <= np.mean(kernel == 0) <= 0.51, name
    assert result.kernel_values[name]["zero_fraction"] == pytest.approx(np.mean(kernel == 0))


@pytest.mark.parametrize("name", ["ptq-int8", "ptq-fp16", "ptq-dynamic", "ptq-int16x8"])
def test_post_training_baselines_train_nothing_and_name_their_export_mode(name: str, digits: Digits) -> None:
    result = run_baseline(name, digits.model, (digits.x_train, digits.y_train), epochs=EPOCHS, seed=SEED)
    assert result.stages == []
    assert result.export_mode == BASELINES[name].export_mode
    assert result.model is not digits.model
    for mine, theirs in zip(result.model.get_weights(), digits.model.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def test_compression_never_changes_the_callers_model(digits: Digits) -> None:
    before = [w.copy() for w in digits.model.get_weights()]
    run_baseline(
        "twonn-mixed",
        digits.model,
        (digits.x_train, digits.y_train),
        epochs=1,
        seed=SEED,
        significance=digits.significance,
    )
    for after, original in zip(digits.model.get_weights(), before):
        np.testing.assert_array_equal(after, original)


def test_the_same_seed_gives_the_same_compressed_model(digits: Digits) -> None:
    runs = [
        run_baseline(
            "clustering-ptq", digits.model, (digits.x_train, digits.y_train), epochs=1, seed=7
        ).model.get_weights()
        for _ in range(2)
    ]
    for first, second in zip(*runs):
        np.testing.assert_array_equal(first, second)


def _fresh_copy(digits: Digits) -> Any:
    model = keras().models.clone_model(digits.model)
    model.set_weights(digits.model.get_weights())
    return model


def test_fine_tuning_ends_on_the_best_validation_check(digits: Digits) -> None:
    model = _fresh_copy(digits)
    split = split_validation(digits.x_train, digits.y_train, 0.1, SEED)
    summary = finetune(model, split, FineTuning(epochs=3, progress=False), learning_rate=3e-3, loss=loss_for(model))
    epochs_cap = 3 * -(-len(split.x_train) // 64)  # 3 epochs of a small set: fewer than the step budget
    assert epochs_cap - 10 < summary["budget_steps"] <= epochs_cap
    assert 1 <= summary["best_step"] <= summary["steps"] <= summary["budget_steps"]
    assert [point["step"] for point in summary["curve"]] == sorted(point["step"] for point in summary["curve"])
    val_loss = model.evaluate(split.x_val, split.y_val, verbose=0)[0]
    assert val_loss == pytest.approx(summary["val_loss"], rel=1e-4)


def test_the_step_budget_bounds_fine_tuning_whatever_the_data_size(digits: Digits) -> None:
    small, large = FineTuning(steps=40, epochs=1000), FineTuning(steps=40, epochs=1000)
    assert small.stage_steps(1_000) == large.stage_steps(1_000_000) == 40
    model = _fresh_copy(digits)
    split = split_validation(digits.x_train, digits.y_train, 0.1, SEED)
    lines: list[str] = []
    summary = finetune(
        model,
        split,
        FineTuning(steps=40, patience=100, say=lines.append),
        learning_rate=1e-3,
        loss=loss_for(model),
        label="shape",
    )
    assert summary["steps"] == 40 and summary["stopped_by"] == "step cap"
    assert summary["epochs_equivalent"] == pytest.approx(40 * 64 / len(split.x_train), abs=1e-3)
    assert len(lines) == len(summary["curve"]) == 10
    assert lines[-1].startswith("  shape: step 40/40") and "val accuracy" in lines[-1] and "ETA" in lines[-1]


def test_fine_tuning_stops_on_a_plateau_and_says_why(digits: Digits) -> None:
    """A trained model barely moves at a tiny learning rate: no check beats the best by 0.5 point, so the first
    plateau cuts the learning rate and the second stops the stage."""
    model = _fresh_copy(digits)
    split = split_validation(digits.x_train, digits.y_train, 0.1, SEED)
    settings = FineTuning(steps=200, epochs=1000, progress=False)
    summary = finetune(model, split, settings, learning_rate=1e-7, loss=loss_for(model))
    every = settings.check_every(len(split.x_train))
    assert summary["stopped_by"] == "plateau" and summary["budget_steps"] == 200
    # the first check, 3 without progress (the rate is cut), 3 more
    assert summary["steps"] == (2 * settings.patience + 1) * every < summary["budget_steps"]
    assert summary["annealed_at_step"] == (settings.patience + 1) * every
    assert summary["stop_reason"].startswith(
        "in 3 checks in a row validation accuracy gained less than 0.5 points over its best and validation loss fell "
        "less than 1 %"
    )
    assert (
        f"cut the learning rate to 0.1x from the best check at step {(settings.patience + 1) * every}"
        in (summary["stop_reason"])
    )
    assert summary["stop_rule"] == {
        "checks": 3,
        "anneal_factor": 0.1,
        "min_gain": 0.005,
        "min_loss_drop": 0.01,
        "check_every": every,
        "cap": "200 steps",
    }


def test_fine_tuning_runs_on_to_its_cap_while_it_improves(digits: Digits) -> None:
    """An untrained network keeps gaining accuracy or shedding validation loss: it runs to the cap and says so."""
    k = keras()
    k.utils.set_random_seed(SEED)
    model = k.models.clone_model(digits.model)  # fresh random weights
    split = split_validation(digits.x_train, digits.y_train, 0.1, SEED)
    settings = FineTuning(steps=150, epochs=1000, progress=False)
    summary = finetune(model, split, settings, learning_rate=3e-4, loss=loss_for(model), budget_scale=2.0)
    assert summary["stopped_by"] == "step cap" and summary["steps"] == summary["budget_steps"] == 300
    assert summary["stop_reason"].startswith("reached the cap of 300 steps (2x the base 150) while still improving")
    curve = summary["curve"]
    best_loss = min(point["val_loss"] for point in curve[:-3])
    assert len(curve) == 20 and any(point["val_loss"] < 0.99 * best_loss for point in curve[-3:])
    gained = 100 * (curve[-1]["val_accuracy"] - curve[-4]["val_accuracy"])  # signed: it may dip while the loss falls
    assert f"({gained:+.2f} points of validation accuracy over the last 3 checks)" in summary["stop_reason"]


def test_the_time_budget_stops_fine_tuning_and_says_so(digits: Digits) -> None:
    model = _fresh_copy(digits)
    split = split_validation(digits.x_train, digits.y_train, 0.1, SEED)
    summary = finetune(
        model,
        split,
        FineTuning(steps=100_000, epochs=100_000, minutes=0.05, patience=10**6, progress=False),
        learning_rate=1e-3,
        loss=loss_for(model),
    )
    assert summary["stopped_by"] == "time budget" and summary["steps"] < 100_000
    assert summary["wall_seconds"] < 30


def test_too_little_data_to_validate_is_refused() -> None:
    with pytest.raises(DataError, match="too few") as info:
        split_validation(np.zeros((4, 8, 8, 1)), np.zeros(4), 0.1, SEED)
    assert "more training data" in info.value.fix


def test_a_subclassed_model_is_refused_with_a_way_out(digits: Digits) -> None:
    k = keras()

    class Custom(k.Model):
        def __init__(self) -> None:
            super().__init__()
            self.flat = k.layers.Flatten()
            self.out = k.layers.Dense(10, activation="softmax")

        def call(self, x):  # noqa: ANN001, ANN201
            return self.out(self.flat(x))

    model = Custom()
    model(digits.x_test[:1])
    plan = plan_for_strategy(model, "clustering", export_mode="int8")
    with pytest.raises(ModelError, match="subclassed") as info:
        apply_plan(plan, model, (digits.x_train, digits.y_train), settings=FineTuning(epochs=1, progress=False))
    assert "Sequential" in info.value.fix


@pytest.mark.parametrize("name", ["twonn-cqat", "twonn-mixed"])
def test_the_plan_estimate_bounds_the_bit_packed_size_of_the_exported_file(
    name: str, digits: Digits, compressed
) -> None:
    from edgecompress.export import bitpacked_size, tflite_weight_stats, to_tflite

    result = compressed(name)
    blob = to_tflite(result.model, mode=result.export_mode, representative=digits.x_train[:100])
    packed = bitpacked_size(tflite_weight_stats(blob))
    measured = packed["weights_packed_bytes"] + packed["codebook_bytes"] + packed["bias_bytes"]
    assert measured <= result.plan.estimated_bytes
    assert measured >= 0.8 * result.plan.estimated_bytes


def test_the_recipe_tables_claim_only_layers_tfmot_supports() -> None:
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import ClusteringRegistry
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.cluster_preserve.cluster_preserve_quantize_registry import (
        ClusterPreserveQuantizeRegistry,
    )
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit.default_8bit_quantize_registry import (
        Default8BitQuantizeRegistry,
    )
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    def kernel_classes(weights_map: dict) -> set[str]:
        return {cls.__name__ for cls, names in weights_map.items() if "kernel" in names}

    assert RECIPES["clustering"].layer_classes <= kernel_classes(ClusteringRegistry._LAYERS_WEIGHTS_MAP)
    assert RECIPES["pruning"].layer_classes <= kernel_classes(PruneRegistry._LAYERS_WEIGHTS_MAP)
    preserving = {cls.__name__ for cls in ClusterPreserveQuantizeRegistry._LAYERS_CONFIG_MAP} - {
        cls.__name__ for cls in ClusterPreserveQuantizeRegistry._DISABLE_CLUSTER_PRESERVE
    }
    assert RECIPES["cqat"].layer_classes <= preserving
    qat_supported = {cls.__name__ for cls in Default8BitQuantizeRegistry()._layer_quantize_map}
    assert RECIPES["qat"].layer_classes <= qat_supported
