"""Layer significance of a real trained tf-keras CNN: one verdict per Conv/Dense layer, the
first and last always kept, the |delta ID| > delta rule, and the profile as JSON + PNG + table.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console

from edgecompress._tf import keras
from edgecompress.analysis import SignificanceProfile, analyze_model, render_table
from edgecompress.errors import DataError, EdgeCompressError, ModelError

SAMPLES = 800


@pytest.fixture(scope="module")
def digits(tiny_keras_model):
    return tiny_keras_model.model, tiny_keras_model.x_train


@pytest.fixture(scope="module")
def profile(digits) -> SignificanceProfile:
    model, x = digits
    return analyze_model(model, x, n_samples=SAMPLES, n_subsamples=4, seed=1)


def conv_dense_names(model) -> list[str]:
    return [layer.name for layer in model.layers if type(layer).__name__ in {"Conv2D", "Dense"}]


def test_profile_measures_the_input_and_every_conv_dense_layer_in_order(digits, profile):
    model, _ = digits

    assert [layer.name for layer in profile.layers] == ["input", *conv_dense_names(model)]
    assert profile.layers[0].output_shape == (8, 8, 1)
    assert profile.layers[-1].output_shape == (10,)
    assert profile.n_samples == SAMPLES
    for layer in profile.layers:
        assert 0 < layer.id < np.prod(layer.output_shape)
        assert len(layer.id_subsamples) == 4 and layer.id_std > 0


def test_first_and_last_layers_are_kept_and_the_rest_follow_the_delta_rule(profile):
    reference, *layers = profile.layers

    assert reference.delta_id is None and not reference.significant and not reference.kept_high_precision
    assert [layer.kept_high_precision for layer in layers] == [True] + [False] * (len(layers) - 2) + [True]
    assert "first" in layers[0].reason and "last" in layers[-1].reason
    for previous, layer in zip(profile.layers, layers):
        assert layer.delta_id == pytest.approx(abs(layer.id - previous.id))
        assert layer.significant == (layer.delta_id > profile.delta)


def test_delta_decides_which_layers_need_higher_precision(digits, profile):
    model, x = digits
    changes = [layer.delta_id for layer in profile.layers[1:]]

    everything = analyze_model(model, x, n_samples=SAMPLES, n_subsamples=0, seed=1, delta=min(changes) / 2)
    nothing = analyze_model(model, x, n_samples=SAMPLES, n_subsamples=0, seed=1, delta=max(changes) * 2)

    def high_precision(result):  # noqa: ANN001, ANN202
        return [layer.name for layer in result.layers if not layer.is_input and layer.high_precision]

    assert high_precision(everything) == conv_dense_names(model)
    assert high_precision(nothing) == [profile.layers[1].name, profile.layers[-1].name]
    assert [layer.name for layer in nothing.layers if layer.significant] == []


def test_same_seed_gives_the_same_profile_and_progress_is_reported(digits, profile):
    model, x = digits
    steps = []

    again = analyze_model(
        model, x, n_samples=SAMPLES, n_subsamples=4, seed=1, progress=lambda *step: steps.append(step)
    )

    assert [layer.id for layer in again.layers] == [layer.id for layer in profile.layers]
    assert steps == [(layer.name, i + 1, len(profile.layers)) for i, layer in enumerate(profile.layers)]


def test_profile_survives_a_json_round_trip_and_is_written_with_its_plot(profile, tmp_path):
    assert SignificanceProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile

    paths = profile.write(tmp_path / "analysis")

    assert SignificanceProfile.read(paths["json"]) == profile
    with Image.open(paths["plot"]) as image:
        assert image.format == "PNG" and image.width > 400 and image.height > 300


def test_table_shows_each_layer_with_its_id_and_verdict(profile):
    console = Console(record=True, width=120)
    console.print(render_table(profile))
    text = console.export_text()

    for layer in profile.layers:
        assert layer.name in text and f"{layer.id:.1f} ± {layer.id_std:.1f}" in text
    assert "high: first" in text and "high: last" in text


def test_pca_alternative_counts_components(digits):
    model, x = digits

    pca = analyze_model(model, x, method="pca", n_samples=SAMPLES, n_subsamples=2)

    assert pca.method == "pca"
    assert all(layer.id == int(layer.id) and 1 <= layer.id <= np.prod(layer.output_shape) for layer in pca.layers)


def test_mistakes_in_the_call_are_reported_with_a_fix(digits):
    model, x = digits
    with pytest.raises(DataError, match=r"expects \(8, 8, 1\)") as raised:
        analyze_model(model, x[:, :4], n_samples=SAMPLES)
    assert raised.value.fix
    with pytest.raises(EdgeCompressError, match="method"):
        analyze_model(model, x, method="lle")
    with pytest.raises(EdgeCompressError, match="delta"):
        analyze_model(model, x, delta=-1)

    k = keras()
    no_weights = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Softmax()])
    with pytest.raises(ModelError, match="no Conv or Dense"):
        analyze_model(no_weights, x)


@pytest.mark.e2e
def test_trained_cifar_cnn_shows_the_hunchback_id_profile():
    """Ansuini et al. 2019: the ID rises over the first layers, then falls towards the output."""
    bench = _load_benchmark()
    try:
        data = bench.load_cat_dog()
    except DataError as error:
        pytest.skip(f"CIFAR-10 JPEGs not available: {error}")
    model, accuracy = bench.train_reference_cnn(data, epochs=8)
    assert accuracy > 0.7

    ids = [layer.id for layer in analyze_model(model, data.x_train, n_samples=2000).layers]
    peak = int(np.argmax(ids))

    assert 0 < peak < len(ids) - 1, ids
    assert all(a < b for a, b in zip(ids[: peak + 1], ids[1 : peak + 1])), ids
    assert all(a > b for a, b in zip(ids[peak:], ids[peak + 1 :])), ids


def _load_benchmark():
    """The benchmark script owns the reference CNN and the cat/dog loader; reuse them, don't copy."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_twonn.py"
    spec = importlib.util.spec_from_file_location("bench_twonn", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def test_a_new_delta_rejudges_the_measured_ids_exactly_as_measuring_again_would(digits, profile):
    model, x = digits
    changes = sorted(layer.delta_id for layer in profile.layers[1:])
    delta = (changes[0] + changes[1]) / 2
    again = analyze_model(model, x, n_samples=SAMPLES, n_subsamples=4, seed=1, delta=delta)
    rejudged = profile.with_delta(delta)

    assert rejudged.delta == delta and profile.delta != delta
    assert [(x.significant, x.reason, x.robust) for x in rejudged.layers] == [
        (x.significant, x.reason, x.robust) for x in again.layers
    ]
    assert profile.with_delta(profile.delta) is profile
