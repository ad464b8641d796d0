"""Loading a user's model: what we accept, and the clear refusals for everything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgecompress._tf import keras
from edgecompress.errors import ModelError
from edgecompress.model_io import load_model, read_architecture


def _small_model(extra_layers=()):
    k = keras()
    return k.Sequential(
        [k.layers.Input((8, 8, 1)), *extra_layers, k.layers.Flatten(), k.layers.Dense(3, activation="softmax")]
    )


def test_a_plain_sequential_h5_loads_with_its_facts(tmp_path: Path) -> None:
    path = tmp_path / "plain.h5"
    _small_model().save(path)
    loaded = load_model(path)
    assert loaded.input_shape == (8, 8, 1)
    assert loaded.n_outputs == 3
    assert loaded.output_kind == "softmax"
    assert loaded.scaling is None  # no Rescaling layer: deploy decides the scaling from data
    assert len(loaded.sha256) == 64


def test_a_functional_keras_zip_with_rescaling_expects_raw_pixels(tmp_path: Path) -> None:
    k = keras()
    inputs = k.layers.Input((8, 8, 3))
    x = k.layers.Rescaling(1 / 255)(inputs)
    x = k.layers.Conv2D(4, 3)(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    outputs = k.layers.Dense(1, activation="sigmoid")(x)
    path = tmp_path / "functional.keras"
    k.Model(inputs, outputs).save(path)
    loaded = load_model(path)
    assert loaded.scaling == "0-255"
    assert loaded.output_kind == "sigmoid"
    assert loaded.n_outputs == 1


def test_a_text_file_named_h5_is_refused_as_text(tmp_path: Path) -> None:
    path = tmp_path / "model.h5"
    path.write_text("this is not a model\n")
    with pytest.raises(ModelError, match="text file"):
        read_architecture(path)


def test_a_truncated_h5_is_refused_as_damaged(tmp_path: Path) -> None:
    good = tmp_path / "good.h5"
    _small_model().save(good)
    bad = tmp_path / "cut.h5"
    bad.write_bytes(good.read_bytes()[:1500])
    with pytest.raises(ModelError) as info:
        load_model(bad)
    assert "damaged" in info.value.problem or "could not rebuild" in info.value.problem
    assert "model.save" in info.value.fix


def test_a_weights_only_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "weights.h5"
    _small_model().save_weights(path)
    with pytest.raises(ModelError, match="no model architecture") as info:
        load_model(path)
    assert "weights-only" in info.value.fix


def test_a_lambda_layer_is_refused_and_its_code_never_runs(tmp_path: Path) -> None:
    sentinel = tmp_path / "lambda-ran"
    k = keras()
    lam = k.layers.Lambda(lambda x, p=str(sentinel): (open(p, "w").close(), x)[1])  # noqa: SIM115
    path = tmp_path / "lambda.h5"
    _small_model([lam]).save(path)
    sentinel.unlink()  # building the model ran it once; loading must not
    with pytest.raises(ModelError, match="Lambda") as info:
        load_model(path)
    assert "never runs code" in info.value.problem
    assert not sentinel.exists()


def test_an_unknown_layer_class_is_refused_by_name(tmp_path: Path) -> None:
    k = keras()

    class Doubler(k.layers.Layer):
        def call(self, x):
            return 2 * x

    path = tmp_path / "custom.h5"
    _small_model([Doubler(name="doubler")]).save(path)
    with pytest.raises(ModelError, match="Doubler"):
        load_model(path)


@pytest.mark.parametrize("name", ["model.onnx", "missing.h5"])
def test_wrong_suffix_or_missing_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".onnx"):
        path.write_bytes(b"\x08\x07")
    with pytest.raises(ModelError):
        load_model(path)
