"""Rebuilding a Keras model layer by layer: how every recipe wraps and unwraps layers.

tfmot and our own straight-through quantizers all work the same way: clone the model,
swapping selected layers for wrappers around them, train, then clone again swapping the
wrappers for plain layers. Only Sequential and Functional models can be cloned like that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgecompress._tf import keras
from edgecompress.errors import ModelError


def require_graph_model(model: Any) -> None:
    """Subclassed models have no layer graph to rebuild; say so instead of failing inside tfmot."""
    k = keras()
    if isinstance(model, k.Sequential) or _is_functional(model):
        return
    raise ModelError(
        f"Model '{model.name}' is a subclassed Keras model; compression rebuilds the model layer by layer, "
        "which needs a Sequential or Functional model.",
        "Rebuild the network with keras.Sequential([...]) or the functional API (keras.Model(inputs, outputs)), "
        "load the trained weights into it, and save that.",
    )


def _is_functional(model: Any) -> bool:
    """A Functional model's config lists its input layers; a subclassed model's has no graph to list."""
    try:
        return "input_layers" in (model.get_config() or {})
    except NotImplementedError:
        return False


def copy_model(model: Any) -> Any:
    """An independent copy with the same weights, so compression never changes the caller's model."""
    k = keras()
    require_graph_model(model)
    copy = k.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def rebuild(model: Any, replace: Callable[[Any], Any]) -> Any:
    """Clone `model`, passing every layer through `replace` (return the layer itself to keep it).

    Kept layers are shared with `model`, so their trained weights carry over untouched.
    """
    k = keras()
    copy = k.models.clone_model(model, input_tensors=None, clone_function=replace)
    if isinstance(copy, k.Sequential) and not copy.built and model.built:
        # a Sequential without an Input layer takes its input shape from its first layer; a
        # wrapper (or an unwrapped layer) standing in for that layer may not carry it
        copy.build(model.input_shape)
    return copy


def selected(names: set[str] | dict[str, Any], wrap: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A `replace` function that wraps only the layers named in `names`."""
    return lambda layer: wrap(layer) if layer.name in names else layer


def inner_layer(layer: Any) -> Any:
    """The Keras layer itself, through any tfmot wrapper (QuantizeWrapper, ClusterWeights, ...)."""
    while hasattr(layer, "layer") and not hasattr(layer, "layers"):
        layer = layer.layer
    return layer
