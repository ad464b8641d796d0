"""What a model takes and gives, without TensorFlow: the facts a task is inferred from and checked against.

Every host-side figure is computed from a model's *raw outputs*: one float32 row per sample,
every output tensor flattened and laid side by side in the Keras model's output order
(`OutputSpec.size` values each). Boards send exactly that back (the runner's
`--outputs-out`, the firmware's output tensor), so a figure never has to be taken from a board.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: output kinds that make an output a vector of class scores (softmax/sigmoid activations)
SCORE_KINDS = ("softmax", "sigmoid")


@dataclass(frozen=True)
class OutputSpec:
    """One output tensor of the model, per sample."""

    name: str
    shape: tuple[int, ...]
    kind: str  # 'softmax' | 'sigmoid' | 'logits' (the last layer's activation; logits = anything else)

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))

    @property
    def is_vector(self) -> bool:
        return len(self.shape) == 1

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "kind": self.kind}


@dataclass(frozen=True)
class ModelFacts:
    """The model's single input and its outputs, as the data and task checks need them."""

    input_shape: tuple[int, ...]
    outputs: tuple[OutputSpec, ...]

    @property
    def output_size(self) -> int:
        """Values per sample in the raw-outputs row (all outputs flattened)."""
        return sum(spec.size for spec in self.outputs)

    @property
    def single(self) -> OutputSpec | None:
        return self.outputs[0] if len(self.outputs) == 1 else None

    @property
    def class_scores(self) -> int | None:
        """Classes a classifier's single score vector stands for (one sigmoid unit: 2); None otherwise."""
        single = self.single
        if single is None or not single.is_vector:
            return None
        return 2 if single.size == 1 else single.size

    @property
    def reconstructs_input(self) -> bool:
        """One output of exactly the input's shape: an autoencoder."""
        single = self.single
        return single is not None and (single.shape == self.input_shape or single.size == math.prod(self.input_shape))

    def describe(self) -> str:
        shown = ", ".join(f"{spec.name} {list(spec.shape)} ({spec.kind})" for spec in self.outputs)
        return f"input {list(self.input_shape)}; {len(self.outputs)} output(s): {shown}"

    def to_dict(self) -> dict[str, Any]:
        return {"input_shape": list(self.input_shape), "outputs": [spec.to_dict() for spec in self.outputs]}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> ModelFacts:
        return cls(
            tuple(int(d) for d in document["input_shape"]),
            tuple(
                OutputSpec(str(o["name"]), tuple(int(d) for d in o["shape"]), str(o.get("kind", "logits")))
                for o in document["outputs"]
            ),
        )

    @classmethod
    def classifier(cls, input_shape: tuple[int, ...], n_outputs: int, kind: str = "softmax") -> ModelFacts:
        """A single-output classifier's facts: what a report from before tasks implies."""
        return cls(tuple(input_shape), (OutputSpec("output", (int(n_outputs),), kind),))


def split_outputs(flat: np.ndarray, facts: ModelFacts) -> list[np.ndarray]:
    """The raw-outputs rows cut back into one (N, *shape) array per output tensor."""
    pieces, start = [], 0
    for spec in facts.outputs:
        pieces.append(flat[:, start : start + spec.size].reshape((len(flat), *spec.shape)))
        start += spec.size
    return pieces


def outputs_problem(outputs: Any, n: int, facts: ModelFacts) -> str | None:
    """Why `outputs` cannot be the raw outputs of `n` samples of this model; None when it can be."""
    if not isinstance(outputs, np.ndarray):
        return f"the outputs are {type(outputs).__name__}, not an array"
    if outputs.dtype.kind != "f":
        return f"the outputs have dtype {outputs.dtype}, not floating point"
    want = (n, facts.output_size)
    if outputs.shape != want:
        return (
            f"the outputs have shape {list(outputs.shape)} but {n} samples of {facts.output_size} values were expected"
        )
    bad = ~np.isfinite(outputs)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        return f"{int(bad.sum())} output value(s) are NaN or infinite (first in sample {row})"
    return None
