"""Which input scaling a model expects, decided from data when the model does not say.

A model trained on 0..255 pixels without a Rescaling layer and fed 0..1 images scores at
chance, and fine-tuning would then quietly re-learn the other scale: the report would show
a baseline at chance and a compressed model "+70 points" better. So when neither the user
(--scaling) nor the model (a Rescaling layer) says, every candidate scaling is scored on a
sample of training data with the task's own figure (accuracy; an MAE or a reconstruction
error as a share of what predicting the mean would miss; ROC AUC) and the clearly better
one is kept; a model that is no better than chance at every scaling is refused before
anything is trained. Data that is not pixels is taken as stored (scaling none): there is
nothing to decide. No TensorFlow here: the caller passes a function that scores samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from edgecompress.data.dataset import AS_STORED, SCALINGS, Dataset
from edgecompress.errors import DataError

#: how many training samples are scored per candidate scaling
SAMPLE_SIZE = 512
#: a scaling wins only when it beats every other by this many points of the task's figure
MARGIN_POINTS = 5.0
#: what is assumed when no scaling is clearly better (the Keras image tutorials' convention)
FALLBACK = "0-1"

#: (scaled samples, their labels or targets) -> the task's figure in points, higher is better; None: cannot tell
Score = Callable[[np.ndarray, np.ndarray], "float | None"]


@dataclass
class ScalingDecision:
    """The scaling a run uses and how it was chosen; quoted in the plan and the report."""

    scaling: str
    how: str  # 'option' | 'model' | 'data' | 'default'
    reason: str
    accuracy_by_scaling: dict[str, float] = field(default_factory=dict)  # the task's figure in points per scaling
    figure: str = "accuracy"  # what the points of `accuracy_by_scaling` are

    def to_dict(self) -> dict[str, object]:
        return {
            "scaling": self.scaling,
            "decided_by": self.how,
            "reason": self.reason,
            "accuracy_by_scaling": self.accuracy_by_scaling,
            "figure": self.figure,
        }


def rescale(x: np.ndarray, source: str, target: str, pixel_factor: float | None = 1.0) -> np.ndarray:
    """Samples scaled for `source` re-expressed for `target` (keys of SCALINGS, or none: as stored)."""
    if source == target:
        return x
    pixels = x * np.float32(pixel_factor or 1.0) if source == AS_STORED else _to_pixels(x, source)
    if target == AS_STORED:
        return pixels / np.float32(pixel_factor or 1.0)
    factor, offset = SCALINGS[target]
    return pixels * np.float32(factor) + np.float32(offset)


def _to_pixels(x: np.ndarray, scaling: str) -> np.ndarray:
    factor, offset = SCALINGS[scaling]
    return (x - np.float32(offset)) / np.float32(factor)


def rescaled(dataset: Dataset, target: str) -> Dataset:
    """`dataset` with its samples moved to `target` scaling (a no-op when it already is)."""
    if dataset.scaling == target:
        return dataset
    return replace(
        dataset,
        x_train=rescale(dataset.x_train, dataset.scaling, target, dataset.pixel_factor),
        x_test=rescale(dataset.x_test, dataset.scaling, target, dataset.pixel_factor),
        scaling=target,
    )


def decide_scaling(dataset: Dataset, score: Score, *, seed: int = 0, figure: str = "accuracy") -> ScalingDecision:
    """Score a seeded sample of training data at every scaling; keep the clearly better one."""
    if dataset.pixel_factor is None:
        return ScalingDecision(AS_STORED, "data", "the data is not pixels: its values are given as stored")
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(dataset.x_train))[:SAMPLE_SIZE]
    x, y = dataset.x_train[rows], dataset.y_train[rows]
    found = {name: score(rescale(x, dataset.scaling, name, dataset.pixel_factor), y) for name in SCALINGS}
    scores = {name: round(float(value), 2) for name, value in found.items() if value is not None}
    if len(scores) < 2:
        return ScalingDecision(
            FALLBACK, "default", f"nothing in the data tells the scalings apart; assumed {FALLBACK}", scores, figure
        )
    ranked = sorted(scores, key=scores.__getitem__, reverse=True)
    best, runner_up = ranked[0], ranked[1]
    shown = ", ".join(f"{name}: {scores[name]:.1f}" for name in ranked)
    if scores[best] - scores[runner_up] >= MARGIN_POINTS:
        return ScalingDecision(
            best,
            "data",
            f"the model scores clearly best on {len(rows)} training samples at {best} ({figure}: {shown})",
            scores,
            figure,
        )
    return ScalingDecision(
        FALLBACK,
        "default",
        f"no scaling scores clearly better on {len(rows)} training samples ({figure}: {shown}); assumed {FALLBACK}",
        scores,
        figure,
    )


def useless_baseline(problem: str, decision: ScalingDecision, fix: str) -> DataError:
    """The refusal of a baseline no better than a useless model, with the scaling it was scored at."""
    return DataError(
        f"The uncompressed model {problem}, with inputs scaled {decision.scaling} ({decision.reason}). "
        "Every comparison after this would be noise.",
        fix,
    )


def require_better_than_chance(
    accuracy: float, labels: np.ndarray, class_names: list[str], decision: ScalingDecision
) -> None:
    """Refuse a classifier whose accuracy is not significantly better than guessing (the classification
    task's floor: a one-sided exact binomial test against always answering the most common class)."""
    from edgecompress.tasks import task_named
    from edgecompress.tasks.metrics import Scored

    task = task_named("classification")
    assert task.floor is not None
    problem = task.floor(Scored(accuracy), labels, len(class_names))
    if problem:
        raise useless_baseline(problem, decision, task.floor_fix)
