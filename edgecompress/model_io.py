"""Load a user's Keras model without ever running code stored in the file.

A Keras file can carry Python: a Lambda layer stores marshalled bytecode, and custom layers
name classes to import. We therefore read the architecture JSON ourselves (h5py / zipfile,
no TensorFlow), refuse anything that is not a built-in Keras layer, and only then let
tf-keras deserialize it in safe mode.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from edgecompress.errors import ModelError

#: Layers that hold code (bytecode or arbitrary Python) instead of configuration.
CODE_CARRYING_LAYERS = {"Lambda"}
#: Containers that nest other layers; their children are checked too.
CONTAINER_KEYS = ("layers", "layer", "forward_layer", "backward_layer", "cell", "cells")
#: Layers whose presence near the input means the model rescales 0..255 pixels itself.
SELF_SCALING_LAYERS = {"Rescaling", "Normalization"}
SUPPORTED_SUFFIXES = (".h5", ".hdf5", ".keras")


@dataclass
class LoadedModel:
    """A user's model plus the facts about it the rest of the pipeline needs."""

    model: Any  # tf_keras.Model
    path: Path
    sha256: str
    input_shape: tuple[int, ...]  # without the batch dimension
    n_outputs: int
    output_kind: str  # 'softmax' | 'sigmoid' | 'logits'
    scaling: str | None  # '0-255' when the model rescales pixels itself; None when it does not say
    n_params: int
    layer_classes: list[str] = field(default_factory=list)
    scaling_evidence: str | None = None  # the layer class that makes `scaling` evident

    def describe(self) -> dict[str, Any]:
        """The model section of report.json."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "input_shape": list(self.input_shape),
            "n_outputs": self.n_outputs,
            "output_kind": self.output_kind,
            "expected_scaling": self.scaling,
            "parameters": self.n_params,
            "layers": self.layer_classes,
        }


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_architecture(path: Path) -> dict[str, Any]:
    """Return the model's architecture JSON, read without TensorFlow.

    Fails with a ModelError that says what the file actually is when it is not a Keras model.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"Model file '{path}' does not exist.", "Check the path and try again.")
    if path.is_dir():
        raise ModelError(
            f"'{path}' is a folder (a TensorFlow SavedModel?), not a Keras model file.",
            "Save the model with tf-keras as a single file: model.save('model.h5') or model.save('model.keras').",
        )
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise ModelError(
            f"'{path.name}' is not a Keras model file (expected {', '.join(SUPPORTED_SUFFIXES)}).",
            "Save the model with model.save('model.h5') or model.save('model.keras').",
        )
    if path.suffix.lower() == ".keras":
        return _architecture_from_keras_zip(path)
    return _architecture_from_h5(path)


def _architecture_from_h5(path: Path) -> dict[str, Any]:
    import h5py

    head = path.read_bytes()[:8]
    if head != b"\x89HDF\r\n\x1a\n":
        kind = "a text file" if _looks_like_text(path) else "not an HDF5 file"
        raise ModelError(
            f"'{path}' is {kind}, so it cannot be a Keras .h5 model (it may be truncated or mislabelled).",
            "Re-export the model from Keras with model.save('model.h5') and pass that file.",
        )
    try:
        with h5py.File(path, "r") as handle:
            raw = handle.attrs.get("model_config")
            has_weights = "model_weights" in handle or "layer_names" in handle.attrs
    except OSError as exc:
        raise ModelError(
            f"'{path}' is a damaged HDF5 file ({exc}).",
            "Re-export the model from Keras with model.save('model.h5'); check the copy was not cut short.",
        ) from None
    if raw is None:
        fix = (
            "This looks like a weights-only file (model.save_weights); save the whole model with model.save('model.h5')."
            if has_weights
            else "Save the whole model from Keras with model.save('model.h5')."
        )
        raise ModelError(f"'{path}' holds no model architecture.", fix)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    return _parse_json(raw, path)


def _architecture_from_keras_zip(path: Path) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(path) as archive:
            raw = archive.read("config.json").decode("utf-8")
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ModelError(
            f"'{path}' is not a readable .keras archive ({exc}).",
            "Re-export the model with tf-keras: model.save('model.keras') or model.save('model.h5').",
        ) from None
    return _parse_json(raw, path)


def _parse_json(raw: str, path: Path) -> dict[str, Any]:
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ModelError(f"'{path}' has a corrupt architecture record ({exc}).", "Re-export the model.") from None
    if not isinstance(config, dict) or "class_name" not in config:
        raise ModelError(f"'{path}' has no Keras architecture in it.", "Re-export the model.")
    return config


def _looks_like_text(path: Path) -> bool:
    sample = path.read_bytes()[:512]
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def iter_layer_configs(config: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every layer record in an architecture, containers and wrapped layers included."""
    yield config
    inner = config.get("config", {})
    if not isinstance(inner, dict):
        return
    for key in CONTAINER_KEYS:
        child = inner.get(key)
        children = child if isinstance(child, list) else [child]
        for item in children:
            if isinstance(item, dict) and "class_name" in item:
                yield from iter_layer_configs(item)


def builtin_layer_names() -> set[str]:
    """Class names tf-keras can build without user code: its own layers and model classes."""
    from edgecompress._tf import keras

    k = keras()
    names = {"Sequential", "Functional", "Model", "TFOpLambda", "SlicingOpLambda"}
    for name in dir(k.layers):
        obj = getattr(k.layers, name)
        if isinstance(obj, type) and issubclass(obj, k.layers.Layer):
            names.add(obj.__name__)
            names.add(name)
    return names - CODE_CARRYING_LAYERS


def check_layers(config: dict[str, Any], path: Path, allowed: set[str]) -> list[str]:
    """Refuse code-carrying and unknown layers; return the layer class names in order."""
    classes = []
    for layer in iter_layer_configs(config):
        class_name = str(layer.get("class_name"))
        classes.append(class_name)
        layer_name = layer.get("config", {}).get("name", "?") if isinstance(layer.get("config"), dict) else "?"
        if class_name in CODE_CARRYING_LAYERS:
            raise ModelError(
                f"'{path.name}' contains a {class_name} layer ('{layer_name}'), which stores Python code in the file; "
                "edgecompress never runs code from a model file.",
                "Replace the Lambda with a built-in layer (e.g. Rescaling, Activation, Reshape) or a tf-keras "
                "layer subclass, re-save the model, and run again.",
            )
        if class_name not in allowed:
            raise ModelError(
                f"'{path.name}' uses the layer '{class_name}' ('{layer_name}'), which is not a built-in tf-keras layer.",
                "edgecompress loads only built-in layers (custom classes would mean importing code). Rebuild the "
                "model from built-in layers, or strip training wrappers (e.g. tfmot strip_pruning) before saving.",
            )
    return classes


def load_model(path: str | Path) -> LoadedModel:
    """Load a Keras model file safely and describe it; see the module docstring for why."""
    path = Path(path).expanduser()
    config = read_architecture(path)
    classes = check_layers(config, path, builtin_layer_names())
    from edgecompress._tf import keras

    k = keras()
    try:
        model = k.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # tf-keras raises many types for damaged files
        raise ModelError(
            f"tf-keras could not rebuild '{path.name}': {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            "The file may be damaged or saved by an incompatible Keras (Keras 3 .keras files need re-saving "
            "with tf-keras). Re-export with tf-keras: model.save('model.h5').",
        ) from None
    return describe_model(model, path=path, layer_classes=classes)


def describe_model(model: Any, *, path: Path, layer_classes: list[str] | None = None) -> LoadedModel:
    """Facts about an in-memory tf-keras model (also used for models the user passes from Python)."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(
            f"'{path.name}' has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
            "edgecompress handles single-input, single-output classifiers.",
            "Export a single-input, single-output classifier.",
        )
    in_shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in in_shape):
        raise ModelError(
            f"'{path.name}' takes inputs of unfixed size {in_shape}; a device needs a fixed input shape.",
            "Give the model's Input layer a fixed shape, e.g. Input((32, 32, 3)), and re-save it.",
        )
    out_shape = tuple(model.outputs[0].shape[1:])
    if len(out_shape) != 1:
        raise ModelError(
            f"'{path.name}' outputs a tensor of shape {out_shape}; edgecompress expects class scores (N, classes).",
            "Export the classifier head that outputs one score per class.",
        )
    return LoadedModel(
        model=model,
        path=path,
        sha256=sha256_of(path) if path.is_file() else "",
        input_shape=tuple(int(d) for d in in_shape),
        n_outputs=int(out_shape[0]),
        output_kind=output_kind(model),
        scaling="0-255" if _self_scaling_layer(model) else None,
        scaling_evidence=_self_scaling_layer(model),
        n_params=int(model.count_params()),
        layer_classes=layer_classes or [type(layer).__name__ for layer in model.layers],
    )


def output_kind(model: Any) -> str:
    """How to read the scores: the last layer's activation decides."""
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", "") if activation is not None else ""
    if type(last).__name__ == "Softmax" or name == "softmax":
        return "softmax"
    if name == "sigmoid":
        return "sigmoid"
    return "logits"


def _self_scaling_layer(model: Any) -> str | None:
    """The Rescaling / Normalization layer near the input that takes raw 0..255 pixels, if any."""
    for layer in model.layers[:3]:
        if type(layer).__name__ in SELF_SCALING_LAYERS:
            return type(layer).__name__
    return None


_output_kind = output_kind  # older name, kept for callers inside the package
