"""How an exported artifact's outputs are judged against the Keras model's."""

from __future__ import annotations

import numpy as np


def _decisions(y: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Predicted class per sample, as the runner decides it; a single output unit reads as a
    probability when the reference outputs lie in [0, 1], else as a logit."""
    from edgecompress.evaluation import predictions_from_scores

    kind = "sigmoid" if reference.min() >= 0.0 and reference.max() <= 1.0 else "logits"
    return predictions_from_scores(y, kind)


def compare_outputs(reference: np.ndarray, candidate: np.ndarray, tolerance: float) -> dict:
    """Numbers a report can show: worst and mean drift, the tolerance applied, and decision agreement.

    `ok` is the drift check only; argmax agreement is reported, not judged, because a
    near-tie between two classes can flip under any quantization without being a defect.
    """
    reference = reference.reshape(len(reference), -1)
    candidate = candidate.reshape(len(candidate), -1).astype(np.float32)
    diff = np.abs(reference.astype(np.float64) - candidate)
    max_abs = float(diff.max())
    return {
        "max_abs_diff": max_abs,
        "mean_abs_diff": float(diff.mean()),
        "tolerance": float(tolerance),
        "argmax_agreement": float(np.mean(_decisions(reference, reference) == _decisions(candidate, reference))),
        "n_samples": int(len(reference)),
        "ok": bool(max_abs <= tolerance),
    }
