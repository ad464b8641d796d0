"""Figures computed on the host from raw outputs: each task's metric, and fidelity to the baseline.

Pure NumPy and scikit-learn (imported when a figure is computed). Every function takes the
raw-outputs rows (`outputs.split_outputs`) and returns a `Scored`: the summary shown in the
report, the one figure the task's rule reads, and the per-sample values a paired test needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgecompress.tasks.outputs import ModelFacts, split_outputs

#: partial ROC AUC up to this false-positive rate, as the anomaly-detection benchmarks report it
MAX_FPR = 0.1
#: per-output rows listed in a report (a 640-value reconstruction is summarised, not listed)
LISTED_OUTPUTS = 16


@dataclass
class Scored:
    """One artifact's (or the Keras model's) figures for the task."""

    value: float | None  # the figure the task's rule reads (accuracy share, MAE, ROC AUC)
    summary: dict[str, Any] = field(default_factory=dict)
    per_sample: np.ndarray | None = None  # correctness, absolute error or anomaly score, in eval order


# --------------------------------------------------------------------------- classification


def classification(outputs: np.ndarray, targets: np.ndarray, facts: ModelFacts, class_names: list[str]) -> Scored:
    """Accuracy from the scores, with the board runner's own thresholds and tally (so both agree)."""
    from edgecompress.evaluation import predictions_from_scores, tally

    kind = facts.outputs[0].kind
    predicted = predictions_from_scores(outputs, kind)
    summary = tally(predicted, np.asarray(targets, dtype=np.int64), class_names)
    correct = np.asarray(predicted) == np.asarray(targets)
    return Scored(summary["overall"], {k: v for k, v in summary.items() if k != "predictions"}, correct)


# --------------------------------------------------------------------------- regression


def regression(outputs: np.ndarray, targets: np.ndarray, facts: ModelFacts) -> Scored:
    """MAE, RMSE and R² overall (averaged over outputs) and per output; per-sample absolute error."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    truth = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
    predicted = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    mae = mean_absolute_error(truth, predicted, multioutput="raw_values")
    rmse = np.sqrt(mean_squared_error(truth, predicted, multioutput="raw_values"))
    r2 = r2_score(truth, predicted, multioutput="raw_values") if len(truth) > 1 else np.full(truth.shape[1], np.nan)
    per_output = [
        {"index": i, "mae": _round(mae[i]), "rmse": _round(rmse[i]), "r2": _round(r2[i])}
        for i in range(min(truth.shape[1], LISTED_OUTPUTS))
    ]
    summary: dict[str, Any] = {
        "n": len(truth),
        "mae": _round(mae.mean()),
        "rmse": _round(rmse.mean()),
        "r2": _round(np.nanmean(r2)) if np.isfinite(r2).any() else None,
        "outputs": truth.shape[1],
        "per_output": per_output,
    }
    return Scored(summary["mae"], summary, np.abs(truth - predicted).mean(axis=1))


# --------------------------------------------------------------------------- anomaly


def anomaly_scores(outputs: np.ndarray, inputs: np.ndarray, facts: ModelFacts) -> tuple[np.ndarray, str]:
    """Per-sample anomaly score: reconstruction MSE for an autoencoder, else the model's own score."""
    if facts.reconstructs_input:
        x = np.asarray(inputs, dtype=np.float64).reshape(len(inputs), -1)
        return np.mean((np.asarray(outputs, dtype=np.float64) - x) ** 2, axis=1), "reconstruction MSE"
    return np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)[:, 0], "the model's own score"


def anomaly(outputs: np.ndarray, labels: np.ndarray | None, inputs: np.ndarray, facts: ModelFacts) -> Scored:
    """ROC AUC and partial AUC (max FPR 0.1) of the anomaly scores when both labels occur."""
    scores, how = anomaly_scores(outputs, inputs, facts)
    summary: dict[str, Any] = {"n": len(scores), "score": how, "mean_score": _round(scores.mean())}
    value = None
    if labels is not None and len(np.unique(labels)) == 2:
        from sklearn.metrics import roc_auc_score

        truth = np.asarray(labels, dtype=np.int64)
        value = _round(roc_auc_score(truth, scores))
        summary.update(
            auc=value,
            pauc=_round(roc_auc_score(truth, scores, max_fpr=MAX_FPR)),
            max_fpr=MAX_FPR,
            n_normal=int((truth == 0).sum()),
            n_anomalous=int((truth == 1).sum()),
            mean_score_normal=_round(scores[truth == 0].mean()),
            mean_score_anomalous=_round(scores[truth == 1].mean()),
        )
    return Scored(value, summary, scores)


# --------------------------------------------------------------------------- fidelity


def fidelity(
    reference: np.ndarray, candidate: np.ndarray, facts: ModelFacts, *, scores: bool = False
) -> dict[str, Any]:
    """How close `candidate`'s outputs stay to `reference`'s on the same samples, per output tensor.

    SQNR (dB) = 10 log10(sum(ref²) / sum((ref - cand)²)) over all samples; identical outputs
    have no finite SQNR and are marked `identical`. Cosine similarity is per sample, averaged.
    Top-1 agreement is given for score vectors (softmax outputs, or the vector output of a
    classifier when `scores`): argmax over the last axis, at every position. Sigmoid outputs
    are independent probabilities (multi-label, a reconstruction), not one decision.
    """
    rows = []
    for spec, ref, cand in zip(facts.outputs, split_outputs(reference, facts), split_outputs(candidate, facts)):
        ref64, cand64 = ref.astype(np.float64), cand.astype(np.float64)
        noise = float(np.sum((ref64 - cand64) ** 2))
        signal = float(np.sum(ref64**2))
        row: dict[str, Any] = {
            "output": spec.name,
            "identical": noise == 0.0,
            "sqnr_db": None if noise == 0.0 or signal == 0.0 else _round(10 * math.log10(signal / noise), 3),
            "cosine": _round(_cosine(ref64, cand64)),
            "max_abs_error": _round(float(np.max(np.abs(ref64 - cand64))) if ref.size else 0.0),
        }
        if spec.shape[-1] >= 2 and (spec.kind == "softmax" or (scores and spec.is_vector)):
            row["agreement"] = _round(float(np.mean(ref.argmax(axis=-1) == cand.argmax(axis=-1))))
        rows.append(row)
    return {"outputs": rows, **fidelity_overall(rows)}


def fidelity_overall(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The worst output decides: lowest SQNR (identical outputs count as perfect), lowest agreement."""
    finite = [row["sqnr_db"] for row in rows if row["sqnr_db"] is not None]
    agreements = [row["agreement"] for row in rows if "agreement" in row]
    return {
        "identical": all(row["identical"] for row in rows),
        "sqnr_db": min(finite) if finite else None,
        "cosine": min(row["cosine"] for row in rows) if rows else None,
        "max_abs_error": max(row["max_abs_error"] for row in rows) if rows else None,
        "agreement": min(agreements) if agreements else None,
    }


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    both_zero = (np.linalg.norm(a, axis=1) == 0) & (np.linalg.norm(b, axis=1) == 0)
    cosine = np.where(norms > 0, np.sum(a * b, axis=1) / np.where(norms > 0, norms, 1.0), np.where(both_zero, 1.0, 0.0))
    return float(cosine.mean()) if len(cosine) else 1.0


def _round(value: Any, digits: int = 6) -> float | None:
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None
