"""Is the baseline any good on this data? Each task's figure in points, and its floor.

The same figure decides the input scaling (the scaling that scores clearly best wins) and
refuses a baseline that is no better than a useless model: every comparison after it would
be noise. Points are comparable across scalings: accuracy and ROC AUC in percent; an MAE or
a reconstruction error as the percentage of the mean-predictor's error that the model removes.
"""

from __future__ import annotations

import numpy as np

from edgecompress.tasks.metrics import Scored


def accuracy_points(scored: Scored, targets: np.ndarray | None, inputs: np.ndarray | None) -> float | None:
    return None if scored.value is None else 100.0 * scored.value


def mae_points(scored: Scored, targets: np.ndarray | None, inputs: np.ndarray | None) -> float | None:
    """100 x (1 - MAE / MAE of always predicting the mean): 0 for a useless model, 100 for a perfect one."""
    if scored.value is None or targets is None:
        return None
    truth = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
    floor = float(np.mean(np.abs(truth - truth.mean(axis=0))))
    return None if floor == 0 else 100.0 * (1.0 - scored.value / floor)


def anomaly_points(scored: Scored, targets: np.ndarray | None, inputs: np.ndarray | None) -> float | None:
    """ROC AUC in percent with labels; without them, the share of the input's variance an autoencoder reconstructs."""
    if scored.value is not None:
        return 100.0 * scored.value
    if inputs is None or scored.per_sample is None or scored.summary.get("score") != "reconstruction MSE":
        return None
    variance = float(np.var(np.asarray(inputs, dtype=np.float64)))
    return None if variance == 0 else 100.0 * (1.0 - float(np.mean(scored.per_sample)) / variance)


#: a baseline whose accuracy a one-sided binomial test cannot tell from chance at this level is refused
CHANCE_ALPHA = 0.01


def chance_problem(scored: Scored, targets: np.ndarray | None, n_classes: int) -> str | None:
    """Accuracy not significantly above always answering the most common class: a one-sided exact
    binomial test (scipy.stats.binomtest) of the correct answers against that chance level."""
    from scipy.stats import binomtest

    if scored.value is None or targets is None:
        return None
    labels = np.asarray(targets, dtype=np.int64)
    counts = np.bincount(labels, minlength=n_classes)
    chance = float(counts.max() / max(1, counts.sum()))
    n = len(labels)
    correct = int(round(scored.value * n))
    p_value = float(binomtest(correct, max(1, n), chance, alternative="greater").pvalue) if n else 1.0
    if p_value < CHANCE_ALPHA:
        return None
    return (
        f"scores {scored.value:.1%} on the {n} evaluation images: not significantly better than chance "
        f"({chance:.1%} by always answering the most common class), by a binomial test (p = {p_value:.2g}, needed "
        f"below {CHANCE_ALPHA})"
    )


def mean_problem(scored: Scored, targets: np.ndarray | None, n_classes: int) -> str | None:
    """R² at or below 0: no better than predicting the mean of the targets."""
    r2 = scored.summary.get("r2")
    if r2 is None or r2 > 0:
        return None
    return f"has R² {r2:.3f} on the {scored.summary.get('n')} evaluation samples: no better than predicting the mean"


def auc_problem(scored: Scored, targets: np.ndarray | None, n_classes: int) -> str | None:
    """ROC AUC at or below 0.5: anomalies score no higher than normal samples."""
    if scored.value is None or scored.value > 0.5:
        return None
    return (
        f"has ROC AUC {scored.value:.3f} on the {scored.summary.get('n')} evaluation samples: anomalous samples "
        "score no higher than normal ones"
    )
