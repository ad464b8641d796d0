"""Rebuild a Keras model with different layer shapes: what structured pruning and low rank share.

tfmot-style wrapping (`graph.rebuild`) swaps one layer for another of the same interface;
structured pruning changes how many channels layers have and low rank replaces one layer
by two. Both are done on the model's *config*: the layer graph is edited as data (fewer
filters, an extra layer spliced in), the model is built again from it with the standard
`from_config`, and the weights are set layer by layer from the old model, sliced or
factorised where a layer changed. Layer names are kept, so plans, significance results and
TFLite tensor names still line up.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgecompress._tf import keras
from edgecompress.compression.graph import require_graph_model
from edgecompress.errors import ModelError


@dataclass
class Node:
    """One layer of the graph as its config entry, with the layers it reads from."""

    name: str
    class_name: str
    entry: dict[str, Any]  # the layer's entry in the model config (edited in place)
    inputs: list[str]  # layers whose outputs it reads (in call order)
    calls: int = 1  # how many times the layer is called (shared layers: > 1)

    @property
    def config(self) -> dict[str, Any]:
        return self.entry["config"]


@dataclass
class LayerGraph:
    """A Sequential or Functional model's layer graph, editable before it is built again."""

    model: Any
    sequential: bool
    config: dict[str, Any]
    nodes: list[Node]
    outputs: list[str]
    weights: dict[str, list[np.ndarray]] = field(default_factory=dict)  # new weights by layer name

    @classmethod
    def of(cls, model: Any) -> LayerGraph:
        require_graph_model(model)
        k = keras()
        config = copy.deepcopy(model.get_config())
        sequential = isinstance(model, k.Sequential)
        entries = config["layers"]
        nodes: list[Node] = []
        if sequential:
            previous: list[str] = []
            for entry in entries:
                name = entry["config"]["name"]
                nodes.append(Node(name, entry["class_name"], entry, list(previous)))
                previous = [name]
            outputs = [nodes[-1].name] if nodes else []
        else:
            for entry in entries:
                inbound = entry.get("inbound_nodes") or []
                inputs = [item[0] for call in inbound[:1] for item in _call_items(call)]
                nodes.append(
                    Node(entry["config"]["name"], entry["class_name"], entry, inputs, calls=max(1, len(inbound)))
                )
            outputs = [item[0] for item in config.get("output_layers", [])]
        for entry in entries:  # shapes recorded at save time would contradict the edited ones
            entry.pop("build_config", None)
        return cls(model, sequential, config, nodes, outputs)

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def consumers(self, name: str) -> list[Node]:
        return [node for node in self.nodes if name in node.inputs]

    def insert_before(self, name: str, class_name: str, layer_config: dict[str, Any]) -> None:
        """Splice a new layer in front of layer `name`, which then reads from it alone."""
        target = self.node(name)
        entry: dict[str, Any] = {
            "module": "keras.layers",
            "class_name": class_name,
            "config": layer_config,
            "registered_name": None,
        }
        new_name = layer_config["name"]
        index = self.config["layers"].index(target.entry)
        if not self.sequential:
            entry["name"] = new_name
            entry["inbound_nodes"] = copy.deepcopy(target.entry["inbound_nodes"])
            target.entry["inbound_nodes"] = [[[new_name, 0, 0, {}]]]
        elif index == 0 or self.config["layers"][index - 1]["class_name"] != "InputLayer":
            shape = target.config.pop("batch_input_shape", None)  # a Sequential without Input layer starts here
            if shape is not None:
                layer_config["batch_input_shape"] = shape
        self.config["layers"].insert(index, entry)
        node = Node(new_name, class_name, entry, list(target.inputs))
        self.nodes.insert(self.nodes.index(target), node)
        target.inputs = [new_name]

    def build(self) -> Any:
        """The edited model, with `weights` where given and the old model's weights elsewhere."""
        k = keras()
        try:
            model = (k.Sequential if self.sequential else k.Model).from_config(self.config)
        except Exception as exc:  # from_config raises assorted errors for a graph it cannot build
            raise ModelError(
                f"Rebuilding model '{self.model.name}' with changed layer shapes failed: {str(exc).splitlines()[0][:300]}",
                "Structured pruning and low rank support Sequential and Functional models built from standard Keras layers.",
            ) from exc
        old = {layer.name: layer for layer in self.model.layers}
        for layer in model.layers:
            if not layer.weights:
                continue
            values = self.weights.get(layer.name)
            if values is None:
                values = old[layer.name].get_weights()
            layer.set_weights(values)
        return model


def _call_items(call: Any) -> list[list[Any]]:
    """[[layer, node, tensor, kwargs], ...] of one inbound call, whatever nesting tf-keras used."""
    if isinstance(call, dict):  # Keras 3 style {'args': ..., 'kwargs': ...}: not produced by tf-keras 2
        raise ModelError(
            "The model config uses a layout tf-keras 2 does not write.",
            "Load the model with edgecompress's model loader.",
        )
    if call and isinstance(call[0], str):
        return [call]
    return [list(item) for item in call if isinstance(item, (list, tuple)) and item and isinstance(item[0], str)]


def weight_names(layer: Any) -> list[str]:
    """'kernel', 'bias', 'gamma', ... in `get_weights()` order."""
    return [weight.name.split("/")[-1].split(":")[0] for weight in layer.weights]


__all__ = ["LayerGraph", "Node", "weight_names"]
