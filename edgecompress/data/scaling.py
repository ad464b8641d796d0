"""Which input scaling a model expects, decided from data when the model does not say.

A model trained on 0..255 pixels without a Rescaling layer and fed 0..1 images scores at
chance, and fine-tuning would then quietly re-learn the other scale: the report would show
a baseline at chance and a compressed model "+70 points" better. So when neither the user
(--scaling) nor the model (a Rescaling layer) says, every candidate scaling is scored on a
sample of training images and the clearly better one is kept; a model that is near chance
at every scaling is refused before anything is trained.
No TensorFlow here: the caller passes a function that scores images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edgecompress.data.dataset import SCALINGS, Dataset
from edgecompress.errors import DataError

#: how many training images are scored per candidate scaling
SAMPLE_SIZE = 512
#: a scaling wins only when it beats every other by this many accuracy points
MARGIN_POINTS = 5.0
#: what is assumed when no scaling is clearly better (the Keras image tutorials' convention)
FALLBACK = "0-1"

Predict = Callable[[np.ndarray], np.ndarray]  # images -> predicted class indices


@dataclass
class ScalingDecision:
    """The scaling a run uses and how it was chosen; quoted in the plan and the report."""

    scaling: str
    how: str  # 'option' | 'model' | 'data' | 'default'
    reason: str
    accuracy_by_scaling: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "scaling": self.scaling,
            "decided_by": self.how,
            "reason": self.reason,
            "accuracy_by_scaling": self.accuracy_by_scaling,
        }


def rescale(x: np.ndarray, source: str, target: str) -> np.ndarray:
    """Images scaled for `source` re-expressed for `target` (both keys of SCALINGS)."""
    (f_src, o_src), (f_dst, o_dst) = SCALINGS[source], SCALINGS[target]
    factor = f_dst / f_src
    return (x - np.float32(o_src)) * np.float32(factor) + np.float32(o_dst)


def rescaled(dataset: Dataset, target: str) -> Dataset:
    """`dataset` with its images moved to `target` scaling (a no-op when it already is)."""
    if dataset.scaling == target:
        return dataset
    return Dataset(
        x_train=rescale(dataset.x_train, dataset.scaling, target),
        y_train=dataset.y_train,
        x_test=rescale(dataset.x_test, dataset.scaling, target),
        y_test=dataset.y_test,
        class_names=dataset.class_names,
        source=dataset.source,
        scaling=target,
        split=dataset.split,
        notes=dataset.notes,
    )


def decide_scaling(dataset: Dataset, predict: Predict, *, seed: int = 0) -> ScalingDecision:
    """Score a seeded sample of training images at every scaling; keep the clearly better one."""
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(dataset.x_train))[:SAMPLE_SIZE]
    x, y = dataset.x_train[rows], dataset.y_train[rows]
    scores = {
        name: round(100.0 * float(np.mean(predict(rescale(x, dataset.scaling, name)) == y)), 2) for name in SCALINGS
    }
    ranked = sorted(scores, key=scores.__getitem__, reverse=True)
    best, runner_up = ranked[0], ranked[1]
    shown = ", ".join(f"{name}: {scores[name]:.1f}%" for name in ranked)
    if scores[best] - scores[runner_up] >= MARGIN_POINTS:
        return ScalingDecision(
            best, "data", f"the model scores clearly best on {len(rows)} training images at {best} ({shown})", scores
        )
    return ScalingDecision(
        FALLBACK,
        "default",
        f"no scaling scores clearly better on {len(rows)} training images ({shown}); assumed {FALLBACK}",
        scores,
    )


def chance_level(labels: np.ndarray, n_classes: int) -> float:
    """Accuracy of always answering the most common class: what a useless model reaches."""
    counts = np.bincount(labels, minlength=n_classes)
    return float(counts.max() / max(1, counts.sum()))


#: a baseline whose accuracy a one-sided binomial test cannot tell from chance at this level is refused
CHANCE_ALPHA = 0.01


def require_better_than_chance(
    accuracy: float, labels: np.ndarray, class_names: list[str], decision: ScalingDecision
) -> None:
    """Refuse a baseline that is not significantly better than guessing: every figure after it would be noise.

    One-sided exact binomial test (scipy.stats.binomtest) of the correct answers against the chance
    level, the accuracy of always answering the most common class."""
    from scipy.stats import binomtest

    chance = chance_level(labels, len(class_names))
    n = len(labels)
    correct = int(round(accuracy * n))
    p_value = float(binomtest(correct, max(1, n), chance, alternative="greater").pvalue) if n else 1.0
    if p_value < CHANCE_ALPHA:
        return
    raise DataError(
        f"The uncompressed model scores {accuracy:.1%} on the {n} evaluation images: not significantly better "
        f"than chance ({chance:.1%} by always answering the most common class), by a binomial test "
        f"(p = {p_value:.2g}, needed below {CHANCE_ALPHA}), with inputs scaled {decision.scaling} "
        f"({decision.reason}). Every comparison after this would be noise.",
        "Check that the data is what the model was trained on, that --classes lists the classes in the model's "
        "output order, and the input scaling (--scaling 0-1, 0-255 or -1-1).",
    )
