"""A model file never runs code: every way a stored config can name code is refused by name.

Each attack below is a real tiny tf-keras model, saved, then edited the way an attacker would
edit it (see crafted_models.py). The payloads write a marker file if their code ever runs; the
tests check the marker never appears, that `edgecompress deploy` exits with one paragraph (no
traceback) naming the layer and the field, and that every legitimate model still loads.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import crafted_models as crafted
import pytest

from edgecompress._tf import keras, tensorflow
from edgecompress.cli import main
from edgecompress.errors import ModelError
from edgecompress.model_io import load_model


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "payload-ran"


@pytest.fixture
def evil_module(tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """A module that writes the marker when imported, importable from a folder on sys.path."""
    name = "evil_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[-60:]
    crafted.module_file(tmp_path / "site", name, marker)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield name
    sys.modules.pop(name, None)


def _set(layer_name: str, field: str, payload: Callable[[Path, str], Any]) -> Callable[[dict, Path, str], None]:
    def edit(config: dict, marker: Path, module: str) -> None:
        crafted.layer(config, layer_name)["config"][field] = payload(marker, module)

    return edit


def _constant(value: Any) -> dict[str, Any]:
    """A Constant initializer: its `value` goes to tf-keras's full deserializer, which imports `module`s."""
    return {
        "module": "keras.initializers",
        "class_name": "Constant",
        "config": {"value": value},
        "registered_name": None,
    }


def _set_top(key: str, payload: Callable[[Path, str], Any]) -> Callable[[dict, Path, str], None]:
    def edit(config: dict, marker: Path, module: str) -> None:
        config[key] = payload(marker, module)

    return edit


def _set_layer_key(layer_name: str, key: str, payload: Callable[[Path, str], Any]) -> Callable[[dict, Path, str], None]:
    def edit(config: dict, marker: Path, module: str) -> None:
        crafted.layer(config, layer_name)[key] = payload(marker, module)

    return edit


def _add_tf_op(function: str) -> Callable[[dict, Path, str], None]:
    def edit(config: dict, marker: Path, module: str) -> None:
        # tf.print(<text>, output_stream='file://...') writes the file while tf-keras rebuilds the graph
        config["config"]["layers"].append(crafted.tf_op_layer(function, ["ran"], {"output_stream": f"file://{marker}"}))

    return edit


def _hidden_sequential(marker: Path, module: str) -> dict[str, Any]:
    return {
        "class_name": "Sequential",
        "config": {"name": "inner", "layers": [crafted.lambda_layer(marker)]},
        "__passive_serialization__": True,
    }


#: id -> (file suffix, how the attacker edits the stored config, text the refusal must contain)
ATTACKS: dict[str, tuple[str, Callable[[dict, Path, str], None], str]] = {
    # .h5: tf-keras ignores safe_mode, rebuilds a __passive_serialization__ dict in any field, and calls it
    "h5 Lambda bytecode as an activation": (
        ".h5",
        _set("head", "activation", lambda m, _: crafted.lambda_layer(m, passive=True)),
        "layer 'head' (Dense), config.activation",
    ),
    "h5 Lambda bytecode as an initializer": (
        ".h5",
        _set("head", "kernel_initializer", lambda m, _: crafted.lambda_layer(m, passive=True)),
        "config.kernel_initializer",
    ),
    "h5 Lambda bytecode as a regularizer": (
        ".h5",
        _set("head", "kernel_regularizer", lambda m, _: crafted.lambda_layer(m, passive=True)),
        "config.kernel_regularizer",
    ),
    "h5 Lambda bytecode as a constraint": (
        ".h5",
        _set("conv", "kernel_constraint", lambda m, _: crafted.lambda_layer(m, passive=True)),
        "layer 'conv' (Conv2D), config.kernel_constraint",
    ),
    "h5 Lambda inside a Sequential hidden in an activation": (
        ".h5",
        _set("head", "activation", _hidden_sequential),
        "layer 'head' (Dense), config.activation > layer 'inner' (Sequential), config.layers[0] is a Lambda layer 'hidden'",
    ),
    "h5 Lambda bytecode in an unlisted field": (
        ".h5",
        _set("flatten", "data_format", lambda m, _: crafted.lambda_layer(m, passive=True)),
        "layer 'flatten' (Flatten), config.data_format",
    ),
    "h5 Lambda layer in the layers list": (
        ".h5",
        lambda c, m, _: c["config"]["layers"].append(
            {**crafted.lambda_layer(m), "name": "hidden", "inbound_nodes": []}
        ),
        "config.layers[4] is a Lambda layer 'hidden'",
    ),
    "h5 a string naming a registered function": (
        ".h5",
        _set("head", "activation", lambda m, _: "attack>payload"),
        "config.activation",
    ),
    "h5 TFOpLambda calling tf.print into a file": (
        ".h5",
        _add_tf_op("print"),
        "layer 'tf.op' (TFOpLambda), config.function",
    ),
    "h5 TFOpLambda calling a raw op": (".h5", _add_tf_op("raw_ops.PrintV2"), "config.function"),
    "h5 unknown activation name": (
        ".h5",
        _set("head", "activation", lambda m, _: "softmax_but_custom"),
        "config.activation",
    ),
    # .keras: a `module` beside a class or function name is imported by the full deserializer
    "keras module of the model itself": (
        ".keras",
        _set_top("module", lambda m, mod: mod),
        "model 'victim' (Functional), module",
    ),
    "keras module of a layer": (
        ".keras",
        _set_layer_key("head", "module", lambda m, mod: mod),
        "layer 'head' (Dense), module",
    ),
    "keras module in a Constant initializer's value": (
        ".keras",
        _set("head", "kernel_initializer", lambda m, mod: _constant(crafted.module_object(mod))),
        "config.kernel_initializer.config.value",
    ),
    "keras function record in a Constant initializer's value": (
        ".keras",
        _set("head", "kernel_initializer", lambda m, mod: _constant(crafted.module_function(mod))),
        "config.kernel_initializer.config.value",
    ),
    "keras serialized lambda in a Constant initializer's value": (
        ".keras",
        _set("head", "kernel_initializer", lambda m, _: _constant(crafted.keras_lambda(m))),
        "config.kernel_initializer.config.value",
    ),
    "keras type spec importing a module": (
        ".keras",
        _set("image", "type_spec", lambda m, mod: crafted.module_typespec(mod)),
        "layer 'image' (InputLayer), config.type_spec",
    ),
    "keras activation as a function from a module": (
        ".keras",
        _set("head", "activation", lambda m, mod: crafted.module_function(mod, "relu")),
        "config.activation.module",
    ),
    "keras activation as an unknown function": (
        ".keras",
        _set("head", "activation", lambda m, mod: crafted.module_function(mod)),
        "config.activation.config",
    ),
    "keras serialized lambda as an activation": (
        ".keras",
        _set("head", "activation", lambda m, _: crafted.keras_lambda(m)),
        "config.activation",
    ),
    "keras dtype policy from a module": (
        ".keras",
        _set("head", "dtype", lambda m, mod: crafted.module_object(mod)),
        "config.dtype",
    ),
    "keras initializer class from a module": (
        ".keras",
        _set("head", "bias_initializer", lambda m, mod: {**crafted.module_object(mod), "class_name": "Zeros"}),
        "config.bias_initializer.module",
    ),
    "keras registered name on a layer": (
        ".keras",
        _set_layer_key("head", "registered_name", lambda m, _: "attack>payload"),
        "layer 'head' (Dense), registered_name",
    ),
    "keras TFOpLambda calling tf.print into a file": (".keras", _add_tf_op("print"), "config.function"),
    "keras nested Sequential with a Lambda in a wrapper": (
        ".keras",
        lambda c, m, _: c["config"]["layers"].append(
            {
                "class_name": "TimeDistributed",
                "name": "wrapped",
                "inbound_nodes": [],
                "config": {
                    "name": "wrapped",
                    "layer": {
                        "class_name": "Sequential",
                        "config": {"name": "inner", "layers": [crafted.lambda_layer(m)]},
                    },
                },
            }
        ),
        "layer 'wrapped' (TimeDistributed), config.layer > layer 'inner' (Sequential), config.layers[0] is a Lambda layer 'hidden'",
    ),
}


def _crafted(tmp_path: Path, suffix: str, edit: Callable[[dict, Path, str], None], marker: Path, module: str) -> Path:
    path = crafted.save(crafted.tiny_functional(), tmp_path / f"model{suffix}")
    return crafted.edit_config(path, lambda config: edit(config, marker, module))


def _registered_payload(marker: Path) -> Callable[..., Any]:
    def payload(x, marker=str(marker)):
        Path(marker).write_text("ran")
        return x

    return payload


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_crafted_model_is_refused_by_field_and_its_code_never_runs(
    attack: str, tmp_path: Path, marker: Path, evil_module: str, capsys: pytest.CaptureFixture
) -> None:
    suffix, edit, expected = ATTACKS[attack]
    path = _crafted(tmp_path, suffix, edit, marker, evil_module)
    assert not marker.exists()
    # the attacker's ally: a library in the process that registered a function under a name
    with keras().utils.custom_object_scope({"attack>payload": _registered_payload(marker)}):
        code = main(
            [
                "deploy",
                "--data",
                "sklearn:digits",
                "--profile",
                "rpi4",
                str(path),
                "--dry-run",
                "--output",
                str(tmp_path / "runs"),
            ]
        )
    err = capsys.readouterr().err
    assert not marker.exists(), f"the payload ran: {attack}"
    assert evil_module not in sys.modules
    assert code == ModelError.exit_code
    assert "Traceback" not in err and "Error:" in err and "What to do:" in err
    assert expected in " ".join(err.split()), err
    assert "never runs code from a model file" in " ".join(err.split())
    assert not (tmp_path / "runs").exists()


def test_the_python_api_refuses_the_same_way(tmp_path: Path, marker: Path, evil_module: str) -> None:
    path = _crafted(tmp_path, ".h5", ATTACKS["h5 Lambda bytecode as an activation"][1], marker, evil_module)
    with pytest.raises(ModelError) as info:
        load_model(path)
    assert "layer 'head' (Dense), config.activation" in info.value.problem
    assert "do not use it" in info.value.fix
    assert not marker.exists()


# --- what tf-keras is handed: exactly what was checked ----------------------------------------


def test_a_file_swapped_after_the_check_is_not_what_tf_keras_loads(
    tmp_path: Path, marker: Path, evil_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shared folder lets an attacker replace the file between check and load (TOCTOU)."""
    from edgecompress import model_io

    path = crafted.save(crafted.tiny_functional(), tmp_path / "model.h5")
    evil = _crafted(tmp_path / "evil", ".h5", ATTACKS["h5 Lambda bytecode as an activation"][1], marker, evil_module)
    checked = model_io.check_architecture

    def check_then_swap(config: dict, *, source: str) -> Any:
        result = checked(config, source=source)
        path.write_bytes(evil.read_bytes())  # the attacker wins the race
        return result

    monkeypatch.setattr(model_io, "check_architecture", check_then_swap)
    loaded = load_model(path)
    assert not marker.exists()
    assert [layer.name for layer in loaded.model.layers] == ["image", "conv", "flatten", "head"]
    assert loaded.model.get_layer("head").activation.__name__ == "softmax"
    assert loaded.sha256 != model_io.sha256_of(path)  # the report names the bytes that were loaded


def test_training_settings_are_never_handed_to_tf_keras(tmp_path: Path, marker: Path, evil_module: str) -> None:
    """compile_config (.keras) and training_config (.h5) can name optimizers and losses; they are dropped unread."""
    keras_path = crafted.save(crafted.tiny_functional(), tmp_path / "model.keras")
    poisoned = {"optimizer": crafted.module_object(evil_module), "loss": crafted.keras_lambda(marker)}
    crafted.edit_config(keras_path, lambda config: config.update(compile_config=poisoned))
    h5_path = crafted.save(crafted.tiny_functional(), tmp_path / "model.h5")
    import h5py

    with h5py.File(h5_path, "r+") as handle:
        handle.attrs["training_config"] = json.dumps(
            {"optimizer_config": crafted.module_object(evil_module), "loss": crafted.lambda_layer(marker, passive=True)}
        )
    for path in (keras_path, h5_path):
        loaded = load_model(path)
        assert loaded.model.optimizer is None
    assert not marker.exists() and evil_module not in sys.modules


def test_a_keras_archive_with_extra_members_is_refused(tmp_path: Path) -> None:
    path = crafted.save(crafted.tiny_functional(), tmp_path / "model.keras")
    crafted.rewrite_zip(path, {"assets/vocabulary.txt": b"a\nb\n", "run_me.py": b"print('hi')\n"})
    with pytest.raises(ModelError, match="assets/vocabulary.txt") as info:
        load_model(path)
    assert "run_me.py" in info.value.problem


def test_a_config_json_bomb_is_refused_before_it_is_read(tmp_path: Path) -> None:
    from edgecompress import model_io

    path = crafted.save(crafted.tiny_functional(), tmp_path / "model.keras")
    crafted.rewrite_zip(path, {"config.json": b" " * (model_io.MAX_CONFIG_BYTES + 1)})
    with pytest.raises(ModelError, match="config.json"):
        load_model(path)


@pytest.mark.parametrize("depth", [600, 100_000])
def test_an_absurdly_nested_config_is_refused_without_a_traceback(
    depth: int, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = crafted.save(crafted.tiny_functional(), tmp_path / "model.h5")
    config = crafted.read_config(path)
    crafted.layer(config, "head")["config"]["padding"] = "DEEP"
    crafted.write_config_text(path, json.dumps(config).replace('"DEEP"', "[" * depth + "1" + "]" * depth))
    code = main(
        [
            "deploy",
            "--data",
            "sklearn:digits",
            "--profile",
            "rpi4",
            str(path),
            "--dry-run",
            "--output",
            str(tmp_path / "runs"),
        ]
    )
    err = capsys.readouterr().err
    assert code == ModelError.exit_code and "Traceback" not in err
    assert "nested too deeply" in err or "corrupt architecture" in err


# --- every legitimate model still loads -------------------------------------------------------


def _rich_functional():
    """Initializers, regularizers, constraints, BN, Dropout, Rescaling, Normalization, a nested Sequential, TF ops."""
    k, tf = keras(), tensorflow()
    layers = k.layers
    inputs = layers.Input((8, 8, 1), name="image")
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Normalization(mean=0.5, variance=0.25)(x)
    x = x * 2.0 - 1.0  # TFOpLambda math.multiply, __operators__.sub...
    x = layers.Conv2D(
        4,
        3,
        padding="same",
        kernel_initializer=k.initializers.HeNormal(seed=1),
        kernel_regularizer=k.regularizers.L2(1e-4),
        kernel_constraint=k.constraints.MaxNorm(2.0),
        bias_initializer=k.initializers.Constant(0.1),
        activation=tf.nn.relu6,
    )(x)
    x = layers.BatchNormalization()(x)
    x = layers.DepthwiseConv2D(3, padding="same", activation=layers.LeakyReLU(0.1))(x)
    block = k.Sequential(
        [layers.Input((8, 8, 4)), layers.SeparableConv2D(4, 1, activation="swish"), layers.ReLU(6.0)], name="block"
    )
    x = layers.Add()([x, block(x)])
    x = tf.clip_by_value(x, -6.0, 6.0)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(8, 1, dtype=k.mixed_precision.Policy("float32"), activity_regularizer=k.regularizers.L1(1e-5))(x)
    x = layers.PReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(16, activation="gelu", kernel_initializer="glorot_uniform")(x)
    x = x[:, :12]
    outputs = layers.Dense(3, activation="softmax", name="head")(x)
    return k.Model(inputs, outputs, name="rich")


def _mixed_precision():
    k = keras()
    layers = k.layers
    return k.Sequential(
        [
            layers.Input((8, 8, 1)),
            layers.Conv2D(2, 3, dtype=k.mixed_precision.Policy("mixed_float16")),
            layers.Flatten(),
            layers.Dense(3, dtype="float32"),
            layers.Activation("softmax", dtype="float32"),
        ]
    )


LEGITIMATE = {
    "the README example CNN": lambda: __import__("edgecompress.example_model", fromlist=["x"]).build_digits_cnn(10),
    "a rich Functional model": _rich_functional,
    "a mixed-precision Sequential": _mixed_precision,
    "the tiny Functional the attacks start from": crafted.tiny_functional,
}


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
@pytest.mark.parametrize("name", sorted(LEGITIMATE))
def test_every_legitimate_model_loads_and_computes_what_was_saved(name: str, suffix: str, tmp_path: Path) -> None:
    import numpy as np

    model = LEGITIMATE[name]()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    path = crafted.save(model, tmp_path / f"model{suffix}")
    loaded = load_model(path)
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(loaded.model(x, training=False), model(x, training=False), rtol=1e-5, atol=1e-6)
    assert loaded.layer_classes[0] in {"Sequential", "Functional"}
    assert loaded.model.optimizer is None  # never compiled from the file


def test_a_model_saved_by_keras_loads_unchanged_from_a_read_only_file(tmp_path: Path) -> None:
    path = crafted.save(crafted.tiny_functional(), tmp_path / "model.keras")
    path.chmod(0o444)
    before = path.read_bytes()
    assert load_model(path).n_outputs == 3
    assert path.read_bytes() == before


def test_a_keras_applications_network_with_tf_op_layers_loads(tmp_path: Path) -> None:
    """MobileNetV3's hard-swish is written as `x + 3.0` and `* (1 / 6)`: TFOpLambda layers."""
    model = keras().applications.MobileNetV3Small(input_shape=(32, 32, 3), alpha=0.75, weights=None, classes=3)
    loaded = load_model(crafted.save(model, tmp_path / "mobilenet_v3.h5"))
    assert "TFOpLambda" in loaded.layer_classes
    assert loaded.n_params == model.count_params()


# --- the checker on its own -------------------------------------------------------------------


def _check(config: dict) -> Any:
    from edgecompress.model_safety import check_architecture

    return check_architecture(config, source="model.keras")


def _functional(*layers: dict, **top: Any) -> dict:
    return {"class_name": "Functional", "config": {"name": "m", "layers": list(layers)}, **top}


def test_what_tf_keras_itself_writes_is_accepted_and_training_settings_are_dropped() -> None:
    dense = {
        "module": "keras.layers",
        "class_name": "Dense",
        "registered_name": None,
        "config": {
            "name": "head",
            "activation": {
                "module": "keras.activations",
                "class_name": "function",
                "config": "relu",
                "registered_name": "relu",
            },
            "kernel_initializer": "glorot_uniform",
            "kernel_regularizer": "l2",
            "dtype": "mixed_bfloat16",
        },
        "compile_config": {"optimizer": "adam"},
    }
    older = {"module": "keras.src.engine.functional", "class_name": "Functional", "registered_name": "Functional"}
    checked = _check(_functional(dense, **older, compile_config={"loss": "mse"}))
    assert "compile_config" not in checked.config
    assert "compile_config" not in checked.config["config"]["layers"][0]
    assert [(layer.name, layer.class_name) for layer in checked.layers] == [("m", "Functional"), ("head", "Dense")]


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {"class_name": "Dense", "config": {"name": "d", "kernel_initializer": "he_uniformly"}},
            "config.kernel_initializer is 'he_uniformly'",
        ),
        (
            {
                "class_name": "Dense",
                "config": {"name": "d", "kernel_regularizer": {"class_name": "GlorotUniform", "config": {}}},
            },
            "names the class 'GlorotUniform', which is not a built-in tf-keras regularizer",
        ),
        ({"class_name": "Dense", "config": {"name": "d", "dtype": "float33"}}, "config.dtype is 'float33'"),
        (
            {"class_name": "Dense", "config": {"name": "d", "bias_constraint": {"module": "os", "config": {}}}},
            "config.bias_constraint is an object record without a class name",
        ),
        (
            {
                "class_name": "Dense",
                "config": {"name": "d", "units": {"class_name": "__tuple__", "items": [1], "module": "os"}},
            },
            "config.units is a '__tuple__' data record",
        ),
        ({"class_name": "Dense", "config": {"name": "d", "output_shape_type": "lambda"}}, "marks Python bytecode"),
        (
            {"class_name": "SlicingOpLambda", "config": {"name": "s", "function": "compat.v1.py_func"}},
            "config.function is 'compat.v1.py_func'",
        ),
        (
            {"class_name": "TFOpLambda", "config": {"name": "t", "function": "io.read_file"}},
            "config.function is 'io.read_file'",
        ),
        (
            {"class_name": "TensorFlowOpLayer", "config": {"name": "op", "node_def": {}}},
            "builds whichever TensorFlow op",
        ),
        (
            {"class_name": "StringLookup", "config": {"name": "v", "vocabulary": "/etc/passwd"}},
            "reads a vocabulary file",
        ),
        ({"class_name": "Dense", "config": {"name": "d", "activation": "Lambda"}}, "config.activation is 'Lambda'"),
    ],
)
def test_the_checker_names_what_it_refuses(record: dict, expected: str) -> None:
    with pytest.raises(ModelError) as info:
        _check(_functional(record))
    assert expected in info.value.problem


@pytest.mark.parametrize(
    "function",
    [
        "math.truediv",
        "__operators__.add",
        "__operators__.getitem",
        "reshape",
        "concat",
        "nn.relu6",
        "clip_by_value",
        "image.resize",
        "math.reduce_mean",
    ],
)
def test_tf_op_layers_may_call_tensor_maths(function: str) -> None:
    _check(_functional({"class_name": "TFOpLambda", "config": {"name": "t", "function": function}}))
