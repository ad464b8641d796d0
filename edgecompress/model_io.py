"""Load a user's Keras model without ever running code stored in the file.

A Keras file is JSON that names code (see `model_safety` for every way it can). So:

1. the file is copied once into a private temporary folder (only this user can write there),
   hashing it on the way; everything after reads that copy, so a file swapped on a shared
   folder between the check and the load is never what tf-keras sees;
2. the architecture JSON is read from the copy without TensorFlow (h5py / zipfile) and
   checked in full by `model_safety.check_architecture`;
3. the copy is rewritten to hold exactly the checked JSON -- re-serialized from what was
   checked, training settings dropped, no .keras member besides config, metadata and weights;
4. only then does tf-keras load it: safe mode on, no custom objects, no compiling.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecompress.errors import ModelError
from edgecompress.model_safety import CheckedArchitecture, LayerRecord, check_architecture
from edgecompress.tasks.outputs import ModelFacts, OutputSpec

#: Layers whose presence near the input means the model rescales 0..255 pixels itself.
SELF_SCALING_LAYERS = {"Rescaling", "Normalization"}
SUPPORTED_SUFFIXES = (".h5", ".hdf5", ".keras")
#: The members tf-keras writes into a .keras archive; anything else is refused, not extracted.
KERAS_ARCHIVE_MEMBERS = ("config.json", "metadata.json", "model.weights.h5", "model.weights.npz")
#: Architecture JSON larger than this is refused before it is read (a zip member can be a bomb).
MAX_CONFIG_BYTES = 64 << 20
#: h5 attributes tf-keras reads only to compile; the loader never compiles, so they are removed.
H5_TRAINING_ATTRS = ("training_config",)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass
class LoadedModel:
    """A user's model plus the facts about it the rest of the pipeline needs."""

    model: Any  # tf_keras.Model
    path: Path
    sha256: str
    input_shape: tuple[int, ...]  # without the batch dimension
    n_outputs: int  # values per sample in all outputs together (a classifier: its class scores)
    output_kind: str  # 'softmax' | 'sigmoid' | 'logits' (of the first output)
    scaling: str | None  # '0-255' when the model rescales pixels itself; None when it does not say
    n_params: int
    layer_classes: list[str] = field(default_factory=list)
    scaling_evidence: str | None = None  # the layer class that makes `scaling` evident
    fixed_batch: int | None = None  # the batch size the model was built for; None: any batch
    #: every layer record of the checked architecture (empty for a model passed from Python)
    records: list[LayerRecord] = field(default_factory=list, repr=False)
    outputs: tuple[OutputSpec, ...] = ()  # every output tensor: name, shape per sample, activation kind

    @property
    def facts(self) -> ModelFacts:
        """The input and outputs, as the data loader and the tasks check them (no TensorFlow needed)."""
        outputs = self.outputs or (OutputSpec("output", (self.n_outputs,), self.output_kind),)
        return ModelFacts(tuple(self.input_shape), outputs)

    def describe(self) -> dict[str, Any]:
        """The model section of report.json."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "input_shape": list(self.input_shape),
            "n_outputs": self.n_outputs,
            "output_kind": self.output_kind,
            "outputs": [spec.to_dict() for spec in self.facts.outputs],
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


def _check_model_path(path: Path) -> None:
    if not path.exists():
        raise ModelError(f"Model file '{path}' does not exist.", "Check the path and try again.")
    if path.is_dir():
        raise ModelError(
            f"'{path}' is a folder (a TensorFlow SavedModel?), not a Keras model file.",
            "Save the model with tf-keras as a single file: model.save('model.h5') or model.save('model.keras').",
        )
    if not path.is_file():
        raise ModelError(f"'{path}' is not a regular file.", "Pass the model file itself, saved with model.save().")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise ModelError(
            f"'{path.name}' is not a Keras model file (expected {', '.join(SUPPORTED_SUFFIXES)}).",
            "Save the model with model.save('model.h5') or model.save('model.keras').",
        )


def read_architecture(path: Path, *, shown: Path | None = None) -> dict[str, Any]:
    """Return the model's architecture JSON, read without TensorFlow.

    Fails with a ModelError that says what the file actually is when it is not a Keras model.
    `shown` is the path to name in messages when `path` is a private copy of it.
    """
    path = Path(path)
    shown = Path(shown) if shown is not None else path
    _check_model_path(path)
    if path.suffix.lower() == ".keras":
        return _architecture_from_keras_zip(path, shown)
    return _architecture_from_h5(path, shown)


def _architecture_from_h5(path: Path, shown: Path) -> dict[str, Any]:
    import h5py

    with path.open("rb") as handle:
        head = handle.read(len(HDF5_SIGNATURE))
    if head != HDF5_SIGNATURE:
        kind = "a text file" if _looks_like_text(path) else "not an HDF5 file"
        raise ModelError(
            f"'{shown}' is {kind}, so it cannot be a Keras .h5 model (it may be truncated or mislabelled).",
            "Re-export the model from Keras with model.save('model.h5') and pass that file.",
        )
    try:
        with h5py.File(path, "r") as handle:
            raw = handle.attrs.get("model_config")
            has_weights = "model_weights" in handle or "layer_names" in handle.attrs
    except OSError as exc:
        raise ModelError(
            f"'{shown}' is a damaged HDF5 file ({exc}).",
            "Re-export the model from Keras with model.save('model.h5'); check the copy was not cut short.",
        ) from None
    if raw is None:
        fix = (
            "This looks like a weights-only file (model.save_weights); save the whole model with model.save('model.h5')."
            if has_weights
            else "Save the whole model from Keras with model.save('model.h5')."
        )
        raise ModelError(f"'{shown}' holds no model architecture.", fix)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not isinstance(raw, str):
        raise ModelError(
            f"'{shown}' stores its architecture as {type(raw).__name__}, not JSON text.", "Re-export the model."
        )
    return _parse_json(raw, shown)


def _architecture_from_keras_zip(path: Path, shown: Path) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(path) as archive:
            _check_archive_members(archive, shown)
            info = archive.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise ModelError(
                    f"'{shown}' has a {info.file_size:,}-byte config.json; a Keras architecture is far smaller.",
                    "Re-export the model with tf-keras: model.save('model.keras').",
                )
            raw = archive.read(info).decode("utf-8", errors="replace")
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ModelError(
            f"'{shown}' is not a readable .keras archive ({exc}).",
            "Re-export the model with tf-keras: model.save('model.keras') or model.save('model.h5').",
        ) from None
    return _parse_json(raw, shown)


def _check_archive_members(archive: zipfile.ZipFile, shown: Path) -> None:
    """tf-keras extracts extra members (assets) to disk and hands them to layers: accept none."""
    extra = sorted({name for name in archive.namelist() if name not in KERAS_ARCHIVE_MEMBERS})
    if extra:
        listed = ", ".join(repr(name) for name in extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        raise ModelError(
            f"'{shown}' carries files tf-keras never writes for an image classifier ({listed}); "
            "edgecompress loads only config.json, metadata.json and the weights from a .keras archive.",
            "Re-export the model with tf-keras (model.save('model.keras')) without lookup or text layers that need assets.",
        )


def _parse_json(raw: str, shown: Path) -> dict[str, Any]:
    try:
        config = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ModelError(f"'{shown}' has a corrupt architecture record ({exc}).", "Re-export the model.") from None
    if not isinstance(config, dict) or "class_name" not in config:
        raise ModelError(f"'{shown}' has no Keras architecture in it.", "Re-export the model.")
    return config


def _looks_like_text(path: Path) -> bool:
    with path.open("rb") as handle:
        sample = handle.read(512)
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _private_copy(path: Path, folder: Path) -> tuple[Path, str]:
    """Copy the model into `folder` (mode 0700, ours alone) and hash exactly the bytes copied."""
    copy = folder / f"model{path.suffix.lower()}"
    digest = hashlib.sha256()
    with path.open("rb") as source, copy.open("wb") as target:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):  # checked on the opened file, not the name
            raise ModelError(f"'{path}' is not a regular file.", "Pass the model file itself, saved with model.save().")
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
            target.write(chunk)
    return copy, digest.hexdigest()


def _hand_over(copy: Path, checked: CheckedArchitecture) -> None:
    """Make the private copy hold exactly the checked architecture, and nothing only compiling reads."""
    text = json.dumps(checked.config)
    if copy.suffix == ".keras":
        rebuilt = copy.with_name("checked.keras")
        with zipfile.ZipFile(copy) as source, zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_STORED) as target:
            target.writestr("config.json", text)
            for name in KERAS_ARCHIVE_MEMBERS[1:]:
                if name in source.namelist():
                    with source.open(name) as member, target.open(name, "w") as out:
                        shutil.copyfileobj(member, out, 1 << 20)
        rebuilt.replace(copy)
        return
    import h5py

    with h5py.File(copy, "r+") as handle:
        handle.attrs["model_config"] = text
        for name in H5_TRAINING_ATTRS:
            if name in handle.attrs:
                del handle.attrs[name]


def load_model(path: str | Path, *, for_export: bool = True) -> LoadedModel:
    """Load a Keras model file safely and describe it; see the module docstring for how.

    With `for_export` (what `deploy` needs) a model with a layer the TFLite / ONNX export
    cannot carry is refused here, before any training, naming the layer (see `layer_support`).
    """
    from edgecompress.layer_support import check_exportable_layers

    path = Path(path).expanduser()
    _check_model_path(path)
    with tempfile.TemporaryDirectory(prefix="edgecompress-model-") as private:
        copy, sha256 = _private_copy(path, Path(private))
        checked = check_architecture(read_architecture(copy, shown=path), source=path.name)
        _hand_over(copy, checked)
        model = _tf_keras_load(copy, path)
    loaded = describe_model(model, path=path, layer_classes=checked.layer_classes, sha256=sha256)
    loaded.records = checked.layers
    if for_export:
        check_exportable_layers(loaded)
    return loaded


def _tf_keras_load(copy: Path, shown: Path) -> Any:
    from edgecompress._tf import keras

    try:
        return keras().models.load_model(copy, custom_objects=None, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - tf-keras raises many types for damaged files
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise ModelError(
            f"tf-keras could not rebuild '{shown.name}': {type(exc).__name__}: {first_line[:300]}",
            "The file may be damaged or saved by an incompatible Keras (Keras 3 .keras files need re-saving "
            "with tf-keras). Re-export with tf-keras: model.save('model.h5').",
        ) from None


def describe_model(
    model: Any, *, path: Path, layer_classes: list[str] | None = None, sha256: str | None = None
) -> LoadedModel:
    """Facts about an in-memory tf-keras model (also used for models the user passes from Python).

    One input of fixed shape; any number of outputs of any fixed shape (class scores,
    regression values, a reconstruction, detection heads). `sha256` is the hash of the bytes
    actually loaded; without it the file at `path` is hashed.
    """
    if len(model.inputs) != 1:
        names = ", ".join(str(t.name).split(":")[0] for t in model.inputs)
        raise ModelError(
            f"'{path.name}' takes {len(model.inputs)} inputs ({names}); edgecompress deploys models with one input "
            "(a board's runner and a firmware feed one input tensor).",
            "Combine the inputs inside the model (e.g. stack or concatenate them in a first layer) and save it with "
            "one Input, then give the data as one array x.",
        )
    in_shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in in_shape):
        raise ModelError(
            f"'{path.name}' takes inputs of unfixed size {in_shape}; a device needs a fixed input shape.",
            "Give the model's Input layer a fixed shape, e.g. Input((32, 32, 3)), and re-save it.",
        )
    outputs = output_specs(model, path)
    return LoadedModel(
        model=model,
        path=path,
        sha256=sha256 if sha256 is not None else (sha256_of(path) if path.is_file() else ""),
        input_shape=tuple(int(d) for d in in_shape),
        n_outputs=sum(spec.size for spec in outputs),
        output_kind=outputs[0].kind,
        scaling="0-255" if _self_scaling_layer(model) else None,
        scaling_evidence=_self_scaling_layer(model),
        n_params=int(model.count_params()),
        fixed_batch=None if model.inputs[0].shape[0] is None else int(model.inputs[0].shape[0]),
        layer_classes=layer_classes or [type(layer).__name__ for layer in model.layers],
        outputs=outputs,
    )


def output_specs(model: Any, path: Path) -> tuple[OutputSpec, ...]:
    """Name, shape per sample and activation kind of every output, in the model's output order."""
    specs = []
    for index, tensor in enumerate(model.outputs):
        shape = tuple(tensor.shape[1:])
        if any(d is None for d in shape) or not shape:
            raise ModelError(
                f"'{path.name}' has an output of shape {shape or '(scalar)'}; edgecompress needs every output to "
                "have a fixed shape per sample.",
                "Give the model a fixed input shape and outputs of fixed size (e.g. (N, classes)).",
            )
        name = model.output_names[index] if index < len(model.output_names) else f"output_{index}"
        layer = _layer_named(model, name)
        specs.append(OutputSpec(str(name), tuple(int(d) for d in shape), _kind_of(layer)))
    return tuple(specs)


def _layer_named(model: Any, name: str) -> Any:
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def _kind_of(layer: Any) -> str:
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", "") if activation is not None else ""
    if type(layer).__name__ == "Softmax" or name == "softmax":
        return "softmax"
    return "sigmoid" if name == "sigmoid" else "logits"


def output_kind(model: Any) -> str:
    """How to read the scores: the last layer's activation decides."""
    return _kind_of(model.layers[-1])


def _self_scaling_layer(model: Any) -> str | None:
    """The Rescaling / Normalization layer near the input that takes raw 0..255 pixels, if any."""
    for layer in model.layers[:3]:
        if type(layer).__name__ in SELF_SCALING_LAYERS:
            return type(layer).__name__
    return None


_output_kind = output_kind  # older name, kept for callers inside the package
