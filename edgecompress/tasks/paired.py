"""Paired statistics of a task's metric: an artifact against the baseline on the very same samples.

* classification: McNemar's exact test on per-sample correctness (decision.statistics);
* regression: Wilcoxon's signed-rank test on the per-sample absolute errors, with a paired
  percentile-bootstrap interval of the MAE change;
* anomaly: a paired bootstrap of the ROC AUC change, resampling normal and anomalous samples
  separately (so every resample has both), with the two-sided p-value read off the bootstrap
  distribution.

Each returns the same small document (`PairedTest`): the change in the metric's own units,
its interval when there is one, a p-value, and whether it is significant at `alpha`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: bootstrap settings: confidence, resamples and the fixed seed that makes a re-rendered report agree
CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0


@dataclass(frozen=True)
class PairedTest:
    test: str  # 'mcnemar-exact' | 'wilcoxon-signed-rank' | 'paired-bootstrap'
    n: int
    change: float  # candidate - reference, in the metric's units (accuracy/AUC as shares, MAE as is)
    p_value: float | None
    significant: bool
    alpha: float
    low: float | None = None  # interval of `change`, when the test gives one
    high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def words(self, unit_scale: float = 1.0, unit: str = "") -> str:
        """'significant, Wilcoxon p = 0.003' / 'within noise, bootstrap p = 0.41, 95% interval -0.8..+0.3 pt'."""
        name = {"mcnemar-exact": "McNemar", "wilcoxon-signed-rank": "Wilcoxon", "paired-bootstrap": "bootstrap"}.get(
            self.test, self.test
        )
        shown = "n/a" if self.p_value is None else f"{self.p_value:.2g}"
        interval = (
            f", {CONFIDENCE:.0%} interval {self.low * unit_scale:+.3g}..{self.high * unit_scale:+.3g}{unit}"
            if self.low is not None and self.high is not None
            else ""
        )
        verdict = "significant" if self.significant else "within noise"
        return f"{verdict}, {name} p = {shown} on {self.n:,} samples{interval}"


def mcnemar(reference_correct: np.ndarray, candidate_correct: np.ndarray, alpha: float) -> PairedTest:
    from edgecompress.decision.statistics import mcnemar_exact

    result = mcnemar_exact(reference_correct, candidate_correct, alpha=alpha)
    change = (result.only_candidate_right - result.only_reference_right) / result.n if result.n else 0.0
    return PairedTest("mcnemar-exact", result.n, round(change, 6), result.p_value, result.significant, alpha)


def wilcoxon_mae(reference_errors: np.ndarray, candidate_errors: np.ndarray, alpha: float) -> PairedTest:
    """Wilcoxon signed-rank on |error| pairs (p = 1 when no pair differs) and a bootstrap interval of the MAE change."""
    from scipy.stats import bootstrap, wilcoxon

    a, b = _pair(reference_errors, candidate_errors)
    differences = b - a
    change = float(differences.mean()) if differences.size else 0.0
    if differences.size < 2 or not np.any(differences):
        return PairedTest("wilcoxon-signed-rank", int(a.size), round(change, 6), 1.0, False, alpha, change, change)
    p = float(wilcoxon(b, a, zero_method="wilcox").pvalue)
    interval = bootstrap(
        (differences,),
        np.mean,
        confidence_level=CONFIDENCE,
        n_resamples=RESAMPLES,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(SEED),
    ).confidence_interval
    return PairedTest(
        "wilcoxon-signed-rank",
        int(a.size),
        round(change, 6),
        p,
        p < alpha,
        alpha,
        round(float(interval.low), 6),
        round(float(interval.high), 6),
    )


def bootstrap_auc(
    reference_scores: np.ndarray, candidate_scores: np.ndarray, labels: np.ndarray, alpha: float
) -> PairedTest | None:
    """Paired, label-stratified bootstrap of AUC(candidate) - AUC(reference); None without both labels."""
    from sklearn.metrics import roc_auc_score

    a, b = _pair(reference_scores, candidate_scores)
    truth = np.asarray(labels, dtype=np.int64)
    normal, anomalous = np.flatnonzero(truth == 0), np.flatnonzero(truth == 1)
    if not len(normal) or not len(anomalous):
        return None
    change = float(roc_auc_score(truth, b) - roc_auc_score(truth, a))
    rng = np.random.default_rng(SEED)
    picked_normal = rng.choice(normal, (RESAMPLES, len(normal)))
    picked_anomalous = rng.choice(anomalous, (RESAMPLES, len(anomalous)))
    draws = _auc(b, picked_anomalous, picked_normal) - _auc(a, picked_anomalous, picked_normal)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    # two-sided bootstrap p-value: how often the resampled change falls on the other side of zero
    p = min(1.0, 2 * min(float(np.mean(draws <= 0)), float(np.mean(draws >= 0)))) if np.any(draws != 0) else 1.0
    return PairedTest(
        "paired-bootstrap",
        int(a.size),
        round(change, 6),
        p,
        p < alpha,
        alpha,
        round(float(low), 6),
        round(float(high), 6),
    )


def _auc(scores: np.ndarray, anomalous: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """ROC AUC of every resample at once: the Mann-Whitney U of anomalous against normal scores over n1 n0
    (ties count half, exactly as roc_auc_score counts them)."""
    from scipy.stats import mannwhitneyu

    u = mannwhitneyu(scores[anomalous], scores[normal], axis=1, method="asymptotic", use_continuity=False).statistic
    return np.asarray(u, dtype=np.float64) / (anomalous.shape[1] * normal.shape[1])


def _pair(reference: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(reference, dtype=np.float64).ravel(), np.asarray(candidate, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length ({a.size} and {b.size})")
    return a, b
