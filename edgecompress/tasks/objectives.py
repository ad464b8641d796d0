"""What fine-tuning learns from: the task's loss on its labels, or the fp32 model's own outputs.

* classification: cross-entropy on the class labels (sparse; binary for one sigmoid unit);
* regression: mean squared error on the targets;
* anomaly (an autoencoder): mean squared error reconstructing the normal training samples;
* with no labels (fidelity), a model that outputs its own anomaly score, or `--distill`:
  distillation from the fp32 model -- its outputs on the training inputs are the targets,
  KL divergence for softmax score vectors (cross-entropy against soft targets for sigmoid
  ones), mean squared error for every other output -- so clustering, CQAT, binarisation and
  pruning work from representative inputs alone.

The chosen objective's words go into training.json and the report, beside each stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecompress.tasks.outputs import ModelFacts, split_outputs
from edgecompress.tasks.registry import Task


@dataclass
class Objective:
    """A fine-tuning loss with the arrays it is computed on."""

    kind: str  # 'labels' | 'targets' | 'reconstruction' | 'distill'
    words: str  # what the report says trained the artifact
    x: np.ndarray
    y: Any  # one array, or one per output (several outputs)
    loss: Any  # a Keras loss, or one per output
    metrics: tuple[str, ...] = ()  # 'accuracy' for class labels

    def key(self) -> str:
        """What a fine-tuning cache key must include besides the data: the loss and its targets."""
        return f"{self.kind}:{self.words}"


def objective_for(task: Task, model: Any, facts: ModelFacts, data: Any, *, distill: bool) -> Objective:
    """The objective for `task` on `data` (an edgecompress Dataset), or distillation when asked or needed."""
    kind = task.loss
    if distill or not getattr(data, "labelled", True) or (kind == "reconstruction" and not facts.reconstructs_input):
        kind = "distill"
    return _BUILDERS[kind](model, facts, data)


def _labels(model: Any, facts: ModelFacts, data: Any) -> Objective:
    from edgecompress.compression.finetune import loss_for

    loss = loss_for(model)
    words = "binary cross-entropy on the labels" if facts.output_size == 1 else "cross-entropy on the class labels"
    return Objective("labels", words, data.x_train, data.y_train, loss, ("accuracy",))


def _targets(model: Any, facts: ModelFacts, data: Any) -> Objective:
    from edgecompress._tf import keras

    spec = facts.outputs[0]
    y = np.asarray(data.y_train, dtype=np.float32).reshape((len(data.y_train), *spec.shape))
    return Objective("targets", "mean squared error on the targets", data.x_train, y, keras().losses.MeanSquaredError())


def _reconstruction(model: Any, facts: ModelFacts, data: Any) -> Objective:
    from edgecompress._tf import keras

    normal = np.asarray(data.y_train).reshape(-1) == 0
    x = data.x_train[normal] if normal.any() else data.x_train
    y = x.reshape((len(x), *facts.outputs[0].shape)).astype(np.float32)
    return Objective(
        "reconstruction",
        f"mean squared error reconstructing the {len(x):,} normal training samples",
        x,
        y,
        keras().losses.MeanSquaredError(),
    )


def _distill(model: Any, facts: ModelFacts, data: Any) -> Objective:
    """The fp32 model's outputs on the training inputs as targets, one loss per output."""
    from edgecompress.evaluation import keras_scores

    x = data.x_train
    teacher = split_outputs(keras_scores(model, x), facts)
    losses = [_distill_loss(spec.kind) for spec in facts.outputs]
    kinds = sorted({_distill_words(spec.kind) for spec in facts.outputs})
    words = "distillation from the fp32 model: " + ", ".join(kinds)
    single = len(facts.outputs) == 1
    return Objective("distill", words, x, teacher[0] if single else tuple(teacher), losses[0] if single else losses)


def _distill_loss(kind: str) -> Any:
    from edgecompress._tf import keras

    losses = keras().losses
    if kind == "softmax":
        return losses.KLDivergence()
    if kind == "sigmoid":
        return losses.BinaryCrossentropy()  # against soft targets: the Bernoulli KL up to a constant
    return losses.MeanSquaredError()


def _distill_words(kind: str) -> str:
    return {
        "softmax": "KL divergence on its softmax scores",
        "sigmoid": "cross-entropy against its sigmoid scores",
    }.get(kind, "mean squared error on its outputs")


_BUILDERS = {"labels": _labels, "targets": _targets, "reconstruction": _reconstruction, "distill": _distill}
