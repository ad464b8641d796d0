"""Crafting hostile model files the way an attacker would: save a real tiny tf-keras model, then
edit the architecture JSON stored in it (the h5 `model_config` attribute, or `config.json`
inside the .keras zip) to plant a payload. Every payload's code, if it ever runs, writes a
marker file -- so a test proves it did not run by the marker's absence.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgecompress._tf import keras

#: A layer call on a constant instead of a Keras tensor: how a functional node passes a literal.
CONSTANT = "_CONSTANT_VALUE"


def tiny_functional():
    """image -> conv -> flatten -> head: small, with a bias, an activation and initializers to abuse."""
    k = keras()
    inputs = k.layers.Input((8, 8, 1), name="image")
    x = k.layers.Conv2D(2, 3, activation="relu", name="conv")(inputs)
    x = k.layers.Flatten(name="flatten")(x)
    outputs = k.layers.Dense(3, activation="softmax", name="head")(x)
    return k.Model(inputs, outputs, name="victim")


def save(model: Any, path: Path) -> Path:
    model.save(path)
    return path


def read_config(path: Path) -> dict[str, Any]:
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))
    import h5py

    with h5py.File(path, "r") as handle:
        return json.loads(handle.attrs["model_config"])


def edit_config(path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """Rewrite the stored architecture in place, leaving the weights exactly as saved."""
    config = read_config(path)
    edit(config)
    return write_config_text(path, json.dumps(config))


def write_config_text(path: Path, text: str) -> Path:
    """Store architecture JSON text as is (an attacker need not produce what json.dumps can)."""
    if path.suffix == ".keras":
        rewrite_zip(path, {"config.json": text.encode()})
    else:
        import h5py

        with h5py.File(path, "r+") as handle:
            handle.attrs["model_config"] = text
    return path


def rewrite_zip(path: Path, members: dict[str, bytes]) -> None:
    """Replace (or add) members of a .keras archive."""
    with zipfile.ZipFile(path) as archive:
        kept = {name: archive.read(name) for name in archive.namelist() if name not in members}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in {**kept, **members}.items():
            archive.writestr(name, data)


def layer(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The stored record of the layer called `name` (top level of a Functional/Sequential)."""
    return next(record for record in config["config"]["layers"] if record["config"].get("name") == name)


# --- payloads -------------------------------------------------------------------------------


def bytecode(marker: Path) -> list[Any]:
    """A function's marshalled bytecode as tf-keras stores it ([code, defaults, closure])."""
    from tf_keras.src.utils.generic_utils import func_dump

    def payload(x=None, marker=str(marker)):
        with open(marker, "w") as handle:
            handle.write("ran")
        return x

    code, defaults, closure = func_dump(payload)
    return [code, list(defaults), closure]


def lambda_layer(marker: Path, *, passive: bool = False) -> dict[str, Any]:
    """A Lambda layer record whose function is the marker-writing bytecode.

    `passive` adds the flag tf-keras's h5 reader uses to deserialize a dict found in any
    field of a layer's config, which is how a Lambda hides outside the `layers` list.
    """
    record = {
        "class_name": "Lambda",
        "config": {
            "name": "hidden",
            "trainable": True,
            "dtype": "float32",
            "function": bytecode(marker),
            "function_type": "lambda",
            "module": "builtins",
            "output_shape": None,
            "output_shape_type": "raw",
            "output_shape_module": None,
            "arguments": {},
        },
    }
    if passive:
        record["__passive_serialization__"] = True
    return record


def keras_lambda(marker: Path) -> dict[str, Any]:
    """The .keras format's own serialized lambda."""
    return {"class_name": "__lambda__", "config": {"value": bytecode(marker)}}


def module_file(folder: Path, name: str, marker: Path) -> str:
    """A Python module that writes the marker when imported; returns its import name."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(
        f"with open({str(marker)!r}, 'w') as handle:\n    handle.write('imported')\n"
        "class Payload:\n    pass\n"
        "def payload(*args, **kwargs):\n    return args[0] if args else None\n"
    )
    return name


def module_object(module: str) -> dict[str, Any]:
    """An object record whose `module` tf-keras would import to find the class."""
    return {"module": module, "class_name": "Payload", "config": {}, "registered_name": None}


def module_function(module: str, name: str = "payload") -> dict[str, Any]:
    """A function record whose `module` tf-keras would import to find the function."""
    return {"module": module, "class_name": "function", "config": name, "registered_name": name}


def module_typespec(module: str) -> dict[str, Any]:
    """A type-spec record whose `module` tf-keras would import."""
    return {
        "class_name": "__typespec__",
        "spec_name": "Payload",
        "module": module,
        "config": [],
        "registered_name": None,
    }


def tf_op_layer(function: str, args: list[Any], kwargs: dict[str, Any], name: str = "tf.op") -> dict[str, Any]:
    """A TFOpLambda layer: a layer that calls the TensorFlow API function named in the file."""
    return {
        "class_name": "TFOpLambda",
        "config": {"name": name, "trainable": True, "dtype": "float32", "function": function},
        "name": name,
        "inbound_nodes": [[[CONSTANT, -1, *args, kwargs]]],
    }
