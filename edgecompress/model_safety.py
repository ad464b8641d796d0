"""Check a stored Keras architecture before tf-keras sees it: only tf-keras's own vocabulary passes.

A tf-keras model file is JSON that *names* code, and tf-keras's deserializers act on those
names wherever they appear, not only in a model's `layers` list:

- `class_name` is looked up in the custom-object registry first, then among built-ins;
  `registered_name` is looked up in that registry too;
- in `.keras` files a `module` next to a class or function name is *imported* to find it
  (`serialization_lib._retrieve_class_or_fn`), from any nested record that reaches the full
  deserializer (a Constant initializer's `value`, an InputLayer's `type_spec`, the model itself);
- `.h5` files ignore `safe_mode`: a Lambda's marshalled bytecode is loaded and called, and a
  dict flagged `__passive_serialization__` in *any* field of a layer (its `activation`, an
  initializer, ...) is rebuilt as a layer -- a Lambda included;
- any string in a layer's config that names a registered function becomes that function;
- TFOpLambda layers call whichever TensorFlow API function the file names, at load time when
  given constants: `tf.print(..., output_stream="file:///...")` writes a file.

So this module walks the *whole* tree and accepts only what tf-keras itself ships: the class
names of its public layers, initializers, regularizers, constraints and dtype policies (read
from tf-keras at run time, not typed in here), its activation functions, TensorFlow ops from
TensorFlow's pure-compute modules, and a few plain-data markers. A `module` must resolve,
without importing anything, to that same built-in object. Anything else -- and any string
that names an entry of tf-keras's custom-object registry -- is refused with a ModelError that
names the layer and the field. Training settings (`compile_config`) are dropped unread: the
loader is told not to compile, so they are never needed.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgecompress.errors import ModelError

#: Keys that make a dict an object record tf-keras resolves to code.
OBJECT_KEYS = ("class_name", "module", "registered_name")
#: lists and records inside one another, at most: a genuine model (nested models included) is a few dozen deep
MAX_NESTING = 256
#: Keys whose value is a layer record (a container's children, a wrapper's layer, an RNN's cell).
LAYER_KEYS = frozenset({"layers", "layer", "forward_layer", "backward_layer", "cell", "cells"})
#: Classes a whole model may be saved as.
MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})
#: Exact field names whose value is an activation or a dtype policy.
FIELD_KINDS = {"activation": "activation", "recurrent_activation": "activation", "dtype": "dtype"}
#: Field-name endings whose value is an initializer, regularizer or constraint.
FIELD_SUFFIX_KINDS = {"_initializer": "initializer", "_regularizer": "regularizer", "_constraint": "constraint"}
#: What each kind of field is called in an error message.
KIND_NOUNS = {
    "model": "model class",
    "layer": "layer",
    "activation": "activation",
    "initializer": "initializer",
    "regularizer": "regularizer",
    "constraint": "constraint",
    "dtype": "dtype policy",
    "any": "class",
}
#: Plain-data records tf-keras decodes without looking anything up.
DATA_MARKERS = frozenset({"__tuple__", "__ellipsis__", "TensorShape", "__numpy__", "__tensor__", "__bytes__"})
#: Records tf-keras turns into code or imports for, and why they are refused.
REFUSED_MARKERS = {
    "__lambda__": "is a serialized Python lambda (marshalled bytecode)",
    "__typespec__": "is a type spec, whose class tf-keras would import from the module named beside it",
    "TypeSpec": "is a type spec tf-keras would look up in TensorFlow's registry",
    "CompositeTensor": "is a composite tensor tf-keras would rebuild from a looked-up type spec",
    "function": "names a Python function",
}
#: Built-in layers tf-keras can rebuild that are refused anyway, and why.
REFUSED_LAYERS = {
    "Lambda": "stores Python bytecode (or names a Python function) that would run",
    "TensorFlowOpLayer": "builds whichever TensorFlow op its stored node definition names",
    "ClassMethod": "calls a method the file names",
    "InstanceMethod": "calls a method the file names",
    "InstanceProperty": "reads an attribute the file names",
    "DropoutWrapper": "can store Python bytecode",
    "ResidualWrapper": "can store Python bytecode",
    "DeviceWrapper": "wraps a TF1 cell whose functions can be stored as bytecode",
    "DenseFeatures": "rebuilds feature columns, which can name Python functions",
    "SequenceFeatures": "rebuilds feature columns, which can name Python functions",
    "LinearModel": "rebuilds feature columns, which can name Python functions",
    "WideDeepModel": "rebuilds feature columns, which can name Python functions",
    "StringLookup": "reads a vocabulary file whose path the model names",
    "IntegerLookup": "reads a vocabulary file whose path the model names",
    "TextVectorization": "reads a vocabulary file and can name Python functions",
}
#: Layers that call the TensorFlow API function named in their `function` field.
TF_OP_LAYERS = frozenset({"TFOpLambda", "SlicingOpLambda"})
#: TensorFlow modules whose functions only compute on tensors (no files, printing, Python
#: callbacks or library loading); a TFOpLambda may call a function implemented in one of them.
PURE_TF_MODULES = frozenset(
    "tensorflow.python.ops." + name
    for name in (
        "array_ops",
        "array_ops_stack",
        "gen_array_ops",
        "math_ops",
        "gen_math_ops",
        "special_math_ops",
        "nn_ops",
        "nn_impl",
        "gen_nn_ops",
        "clip_ops",
        "image_ops_impl",
        "tensor_getitem_override",
        "manip_ops",
        "sort_ops",
    )
)
#: TensorFlow API namespaces refused even when the function lives in a pure module.
REFUSED_TF_NAMESPACES = ("raw_ops.", "compat.")
#: Policy names tf-keras accepts besides plain dtype names.
POLICY_NAMES = frozenset({"mixed_float16", "mixed_bfloat16", "_infer"})
#: Keys dropped from every object record before it is checked and handed to tf-keras.
DROPPED_KEYS = ("compile_config",)
#: What to tell the user to do when the file names code.
FIX = (
    "Re-save the model from built-in tf-keras layers and functions only (replace Lambda layers and "
    "custom classes with built-in layers such as Rescaling, Activation or Reshape). If you did not "
    "make this file yourself, do not use it: it may have been crafted to run code."
)


@dataclass(frozen=True)
class LayerRecord:
    """One layer found in the architecture, and where."""

    name: str
    class_name: str
    config: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)
    parent: LayerRecord | None = field(repr=False, compare=False, default=None)
    at: str = field(repr=False, compare=False, default="")  # where it sits in its parent's record

    def label(self) -> str:
        """ "layer 'gru' (GRU) in 'both_ways' (Bidirectional)": the layers around it, not the model."""
        outer, parent = [], self.parent
        while parent is not None and parent.parent is not None:
            outer.append(f" in '{parent.name}' ({parent.class_name})")
            parent = parent.parent
        return f"layer '{self.name}' ({self.class_name})" + "".join(outer)


@dataclass(frozen=True)
class CheckedArchitecture:
    """The architecture as it will be handed to tf-keras, and the layers in it (outermost first)."""

    config: dict[str, Any]
    layers: list[LayerRecord] = field(default_factory=list)

    @property
    def layer_classes(self) -> list[str]:
        return [layer.class_name for layer in self.layers]


@dataclass(frozen=True)
class Vocabulary:
    """tf-keras's own names, by kind, each mapped to the objects tf-keras would build for it."""

    by_kind: Mapping[str, Mapping[str, frozenset[Any]]]
    activation_functions: Mapping[str, Any]

    def objects(self, kind: str, name: str) -> frozenset[Any]:
        return self.by_kind[kind].get(name, frozenset())


def _public_classes(module: Any, base: type) -> dict[str, frozenset[Any]]:
    """Every name in a public tf-keras namespace that is a subclass of `base` (aliases included)."""
    found: dict[str, set[Any]] = {}
    for name in dir(module):
        obj = getattr(module, name)
        if isinstance(obj, type) and issubclass(obj, base):
            found.setdefault(name, set()).add(obj)
            found.setdefault(obj.__name__, set()).add(obj)
    return {name: frozenset(objs) for name, objs in found.items()}


def _classes_of_a_traced_model() -> tuple[type, tuple[type, ...]]:
    """The classes tf-keras itself builds for a functional model and for TensorFlow calls on
    symbolic tensors (TFOpLambda, SlicingOpLambda): public tf-keras exports none of them, so they
    are read from a two-layer model traced here rather than imported from tf-keras's internals."""
    from edgecompress._tf import keras, tensorflow

    k, tf = keras(), tensorflow()
    x = k.Input((2,))
    model = k.Model(x, [x[:, :1], tf.math.add(x, 1.0)])
    return type(model), tuple(type(layer) for layer in model.layers[1:])


@functools.lru_cache(maxsize=1)
def builtin_vocabulary() -> Vocabulary:
    """Read tf-keras's public namespaces once: the allowlist follows the installed tf-keras."""
    from edgecompress._tf import keras

    k = keras()
    functional, op_layers = _classes_of_a_traced_model()
    layers = {
        name: objs for name, objs in _public_classes(k.layers, k.layers.Layer).items() if name not in REFUSED_LAYERS
    }
    layers.update(
        {"Functional": frozenset({functional}), "Sequential": frozenset({k.Sequential}), "Model": frozenset({k.Model})}
    )
    layers.update({cls.__name__: frozenset({cls}) for cls in op_layers})
    # activations.deserialize looks names up in the globals of the module that defines tf-keras's
    # activations, which also holds tf.nn's relu6, silu, ... (imported there): read that module
    # through a public function's own __module__, minus its lookup helpers.
    activation_module = sys.modules[k.activations.relu.__module__]
    activations = {
        name: fn
        for name, fn in vars(activation_module).items()
        if inspect.isroutine(fn) and not name.startswith("_") and name not in {"get", "serialize", "deserialize"}
    }
    by_kind = {
        "layer": layers,
        "model": {name: layers[name] for name in MODEL_CLASSES},
        "initializer": _public_classes(k.initializers, k.initializers.Initializer),
        "regularizer": _public_classes(k.regularizers, k.regularizers.Regularizer),
        "constraint": _public_classes(k.constraints, k.constraints.Constraint),
        "dtype": {"Policy": frozenset({k.mixed_precision.Policy})},
        "activation": layers,  # an activation may be a layer instance (LeakyReLU(), ...)
    }
    union: dict[str, set[Any]] = {}
    for kind in ("layer", "initializer", "regularizer", "constraint", "dtype"):
        for name, objs in by_kind[kind].items():
            union.setdefault(name, set()).update(objs)
    by_kind["any"] = {name: frozenset(objs) for name, objs in union.items()}
    return Vocabulary(by_kind=by_kind, activation_functions=activations)


def is_registered(name: str) -> bool:
    """True when tf-keras's custom-object registry (global, or a `custom_object_scope` of this
    thread) holds `name` right now.

    tf-keras resolves these before its built-ins, and turns any matching string in a layer's
    config into the registered function, so a file must not name one.
    """
    from edgecompress._tf import keras

    return keras().saving.get_registered_object(name) is not None


def _field_kind(key: str) -> str:
    if key in LAYER_KEYS:
        return "layer"
    if key in FIELD_KINDS:
        return FIELD_KINDS[key]
    for suffix, kind in FIELD_SUFFIX_KINDS.items():
        if key.endswith(suffix):
            return kind
    return "any"


def _resolve_module(module: str, name: str) -> Any:
    """What tf-keras's `_retrieve_class_or_fn` finds for (module, name), found without importing.

    Returns None when tf-keras would have to import a module that is not loaded yet.
    """
    from tensorflow.python.util import tf_export

    if module in ("keras", "tf_keras") or module.startswith(("keras.", "tf_keras.")):
        api_name = f"{module}.{name}"
        if "__internal__.legacy" in api_name:
            api_name = "compat.v1." + api_name
        found = tf_export.get_symbol_from_name(api_name)
        if found is not None:
            return found
    loaded = sys.modules.get("tf_" + module if module.startswith("keras") else module)
    return None if loaded is None else vars(loaded).get(name)


def _pure_tf_function(name: str) -> bool:
    """Whether a TFOpLambda's `function` names a TensorFlow function that only computes on tensors."""
    from tensorflow.python.util import tf_export

    if name.startswith(REFUSED_TF_NAMESPACES):
        return False
    function = tf_export.get_symbol_from_name(name)
    return function is not None and getattr(function, "__module__", None) in PURE_TF_MODULES


def _valid_dtype(name: str) -> bool:
    if name in POLICY_NAMES:
        return True
    from edgecompress._tf import tensorflow

    try:
        tensorflow().as_dtype(name)
    except (TypeError, ValueError):
        return False
    return True


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Walk:
    """One pass over a config: checks every node and builds the copy handed to tf-keras."""

    def __init__(self, vocabulary: Vocabulary, registered: Callable[[str], bool], source: str) -> None:
        self.vocabulary = vocabulary
        self.registered = registered
        self.source = source
        self.layers: list[LayerRecord] = []
        self.depth = 0

    def where(self, owner: LayerRecord | None, path: str) -> str:
        """'layer 'head' (Dense), config.activation', with the layers around a nested one (not the model)."""
        if owner is None:
            return _join("the model record", path, ", ")
        segments = [_join(self.named(owner), path, ", ")]
        while owner.parent is not None and owner.parent.parent is not None:
            segments.append(_join(self.named(owner.parent), owner.at, ", "))
            owner = owner.parent
        return " > ".join(reversed(segments))

    def named(self, record: LayerRecord) -> str:
        role = "model" if record.parent is None else "layer"
        return f"{role} '{record.name}' ({record.class_name})"

    def refuse(self, owner: LayerRecord | None, path: str, what: str) -> ModelError:
        return ModelError(
            f"'{self.source}' was refused: {self.where(owner, path)} {what}. edgecompress never runs "
            "code from a model file, so it loads only tf-keras's own layers, initializers, regularizers, "
            "constraints, activations and dtypes.",
            FIX,
        )

    def value(self, node: Any, owner: LayerRecord | None, path: str, kind: str) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:  # the same limit on every Python, however deep its stack goes
                raise RecursionError(f"nested deeper than {MAX_NESTING}")
            return self._checked(node, owner, path, kind)
        finally:
            self.depth -= 1

    def _checked(self, node: Any, owner: LayerRecord | None, path: str, kind: str) -> Any:
        if isinstance(node, dict):
            if any(key in node for key in OBJECT_KEYS):
                return self.record(node, owner, path, kind)
            if kind != "any":
                raise self.refuse(owner, path, f"is a plain dict where a {KIND_NOUNS[kind]} belongs")
            return self.mapping(node, owner, path)
        if isinstance(node, list):
            return [self.value(item, owner, f"{path}[{index}]", kind) for index, item in enumerate(node)]
        if isinstance(node, str):
            self.string(node, owner, path, kind)
        return node

    def mapping(self, node: dict[str, Any], owner: LayerRecord | None, path: str) -> dict[str, Any]:
        checked = {}
        for key, item in node.items():
            where = f"{path}.{key}" if path else key
            if key.endswith("_type") and item == "lambda":
                raise self.refuse(owner, where, "marks Python bytecode stored beside it")
            checked[key] = self.value(item, owner, where, _field_kind(key))
        return checked

    def string(self, text: str, owner: LayerRecord | None, path: str, kind: str) -> None:
        if self.registered(text):
            raise self.refuse(
                owner,
                path,
                f"names the registered custom object {_shown(text)}, which tf-keras would use instead of a built-in",
            )
        if kind == "dtype":
            if not _valid_dtype(text):
                raise self.refuse(owner, path, f"is {_shown(text)}, which is not a dtype or dtype policy name")
            return
        names = self.vocabulary.activation_functions if kind == "activation" else self.vocabulary.by_kind[kind]
        if kind != "any" and text not in names:
            raise self.refuse(owner, path, f"is {_shown(text)}, which is not a built-in tf-keras {KIND_NOUNS[kind]}")

    def record(self, node: dict[str, Any], owner: LayerRecord | None, path: str, kind: str) -> dict[str, Any]:
        """An object record: a data marker, an activation function, or a built-in class."""
        class_name = node.get("class_name")
        if not isinstance(class_name, str):
            found = ", ".join(f"{key} {_shown(node[key])}" for key in OBJECT_KEYS if key in node)
            raise self.refuse(owner, path, f"is an object record without a class name ({found})")
        self.string(class_name, owner, _join(path, "class_name"), "any")
        if class_name == "function" and kind == "activation":
            return self.function(node, owner, path)
        if class_name in REFUSED_MARKERS:
            raise self.refuse(owner, path, f"{REFUSED_MARKERS[class_name]} ({_origin(node)})")
        if class_name in DATA_MARKERS:
            if kind != "any" or "module" in node or "registered_name" in node:
                raise self.refuse(
                    owner, path, f"is a {_shown(class_name)} data record where a {KIND_NOUNS[kind]} belongs"
                )
            return self.mapping(node, owner, path)
        objects = self.vocabulary.objects(kind, class_name)
        if not objects:
            raise self.unknown_class(node, owner, path, kind, class_name)
        inner, here = owner, path
        if kind in ("model", "layer", "activation") or (
            kind == "any" and class_name in self.vocabulary.by_kind["layer"]
        ):
            inner, here = self.layer(node, owner, path), ""  # errors inside a layer name that layer
        self.origin(node, inner, here, class_name, objects)
        checked = self.members(node, inner, here, class_name)
        if inner is not None and inner is not owner and inner.class_name in TF_OP_LAYERS:
            self.tf_op(inner)
        return checked

    def unknown_class(
        self, node: dict[str, Any], owner: LayerRecord | None, path: str, kind: str, class_name: str
    ) -> ModelError:
        """The refusal for a class tf-keras does not ship: a layer's own name and the known reason when there is one."""
        config = node.get("config")
        name = f" {_shown(config['name'])}" if isinstance(config, dict) and isinstance(config.get("name"), str) else ""
        reason = REFUSED_LAYERS.get(class_name)
        what = (
            f"is a {class_name} layer{name}, which {reason}"
            if reason
            else f"names the class {_origin(node)}, which is not a built-in tf-keras {KIND_NOUNS[kind]}"
        )
        return self.refuse(owner, path, what)

    def origin(self, node: dict[str, Any], inner: LayerRecord | None, here: str, class_name: str, objects: Any) -> None:
        """A built-in class name is not enough: tf-keras would import `module` or look up `registered_name` too."""
        registered = node.get("registered_name")
        if registered is not None and registered != class_name:
            raise self.refuse(
                inner,
                _join(here, "registered_name"),
                f"is {_shown(registered)}: a registered custom class, not the built-in {class_name}",
            )
        module = node.get("module")
        if module is not None and (not isinstance(module, str) or _resolve_module(module, class_name) not in objects):
            raise self.refuse(
                inner,
                _join(here, "module"),
                f"is {_shown(module)}, which is not where tf-keras keeps "
                f"{class_name}: tf-keras would import that module to look for it",
            )

    def members(self, node: dict[str, Any], inner: LayerRecord | None, here: str, class_name: str) -> dict[str, Any]:
        """Every key of an object record checked, the keys tf-keras ignores dropped."""
        checked = {}
        for key, item in node.items():
            where = _join(here, key)
            if key in DROPPED_KEYS:
                continue
            if key in OBJECT_KEYS:
                checked[key] = item
            elif key == "config" and isinstance(item, dict):
                checked[key] = self.mapping(item, inner, where)
            elif key == "config" and isinstance(item, list) and class_name in MODEL_CLASSES:
                checked[key] = self.value(item, inner, where, "layer")  # a Sequential as very old Keras saved it
            else:
                checked[key] = self.value(item, inner, where, "any")
        return checked

    def function(self, node: dict[str, Any], owner: LayerRecord | None, path: str) -> dict[str, Any]:
        """An activation stored as a function record: a tf-keras activation, found where tf-keras keeps it."""
        name, module, registered = node.get("config"), node.get("module"), node.get("registered_name")
        function = self.vocabulary.activation_functions.get(name) if isinstance(name, str) else None
        if function is None:
            raise self.refuse(
                owner, _join(path, "config"), f"names the function {_shown(name)}, which is not a tf-keras activation"
            )
        if registered is not None and registered != name:
            raise self.refuse(
                owner, _join(path, "registered_name"), f"is {_shown(registered)}: a registered custom function"
            )
        if module not in (None, "builtins") and (
            not isinstance(module, str) or _resolve_module(module, str(name)) is not function
        ):
            raise self.refuse(
                owner,
                _join(path, "module"),
                f"is {_shown(module)}, which is not where tf-keras keeps "
                f"the activation {name}: tf-keras would import that module to look for it",
            )
        if set(node) - {"class_name", "config", "module", "registered_name"}:
            raise self.refuse(
                owner, path, f"carries unexpected fields {sorted(set(node) - set(OBJECT_KEYS) - {'config'})}"
            )
        return dict(node)

    def layer(self, node: dict[str, Any], parent: LayerRecord | None, at: str) -> LayerRecord:
        config: dict[str, Any] = node["config"] if isinstance(node.get("config"), dict) else {}
        name = config.get("name", node.get("name", "?"))
        record = LayerRecord(name=str(name), class_name=node["class_name"], config=config, parent=parent, at=at)
        self.layers.append(record)
        return record

    def tf_op(self, record: LayerRecord) -> None:
        function = record.config.get("function")
        if not isinstance(function, str) or not _pure_tf_function(function):
            raise self.refuse(
                record,
                "config.function",
                f"is {_shown(function)}, which is not a TensorFlow op that only "
                "computes on tensors (functions that touch files, print, call Python or load libraries are refused)",
            )


def _origin(node: dict[str, Any]) -> str:
    """'Payload' from module 'evil' -- what a record asks tf-keras to find, and where."""
    name = node.get("config") if node.get("class_name") == "function" else node.get("class_name")
    module = node.get("module")
    return f"{_shown(name)}" + (f" from module {_shown(module)}" if module is not None else "")


def _join(path: str, key: str, separator: str = ".") -> str:
    return f"{path}{separator}{key}" if path and key else path or key


def check_architecture(config: Any, *, source: str) -> CheckedArchitecture:
    """Check a parsed architecture; return what tf-keras may see (training settings dropped).

    Raises ModelError naming the layer and the field of the first thing that is not tf-keras's
    own. `source` is the file name shown in messages.
    """
    walk = _Walk(builtin_vocabulary(), is_registered, source)
    try:
        checked = walk.value(config, None, "", "model")
    except RecursionError:
        raise ModelError(
            f"'{source}' has an architecture nested too deeply to check.",
            "Re-export the model with model.save(); a genuine Keras model is never nested this deep.",
        ) from None
    if not isinstance(checked, dict):
        raise ModelError(
            f"'{source}' has no Keras model record at the top of its architecture.", "Re-export the model."
        )
    return CheckedArchitecture(config=checked, layers=walk.layers)
