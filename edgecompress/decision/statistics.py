"""The statistics that keep a verdict honest: is a difference real, or noise?

Three questions come up whenever a compressed artifact is judged against its baseline:

* accuracy: both were scored on the *same* images, so the right test is a paired one.
  McNemar's exact test looks only at the images on which the two disagree (b: the baseline
  right and the artifact wrong, c: the reverse); under "no difference" b ~ Binomial(b + c, 1/2).
* latency: a median from 100 timed runs has an error bar. A percentile bootstrap interval of
  the median (seeded, so a report re-rendered tomorrow says the same) tells "1.07x slower"
  from "equally fast": two artifacts whose intervals overlap are not told apart.
* per class: with several seeds, Welch's t-test (unequal variances) over the seeds' per-class
  recalls; with one, the sigma rule in `reporting.per_class`.

Everything here is a pure function of numbers; scipy does the arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: significance level of every test unless the acceptance rules say otherwise
ALPHA = 0.05
#: the bootstrap: confidence of the interval, resamples, and the fixed seed that makes it repeatable
CONFIDENCE = 0.95
RESAMPLES = 4000
SEED = 0


@dataclass(frozen=True)
class PairedAccuracy:
    """McNemar's exact test of one artifact against another on the same images."""

    n: int
    only_reference_right: int  # b: the reference right, the candidate wrong
    only_candidate_right: int  # c: the reverse
    p_value: float
    significant: bool
    alpha: float

    @property
    def change_points(self) -> float:
        """Accuracy change of the candidate in points, from the discordant pairs alone."""
        return round(100 * (self.only_candidate_right - self.only_reference_right) / self.n, 4) if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"test": "mcnemar-exact", **asdict(self), "change_points": self.change_points}


def mcnemar_exact(
    reference_correct: Sequence[bool] | np.ndarray,
    candidate_correct: Sequence[bool] | np.ndarray,
    *,
    alpha: float = ALPHA,
) -> PairedAccuracy:
    """Two-sided exact McNemar test; p = 1 when the two never disagree."""
    from scipy.stats import binomtest

    reference = np.asarray(reference_correct, dtype=bool)
    candidate = np.asarray(candidate_correct, dtype=bool)
    if reference.shape != candidate.shape:
        raise ValueError(f"paired samples differ in length ({reference.size} and {candidate.size})")
    b = int(np.sum(reference & ~candidate))
    c = int(np.sum(~reference & candidate))
    p = 1.0 if b + c == 0 else float(binomtest(min(b, c), b + c, 0.5, alternative="two-sided").pvalue)
    return PairedAccuracy(int(reference.size), b, c, min(p, 1.0), p < alpha, alpha)


def correct_mask(predictions: Sequence[int] | np.ndarray, labels: Sequence[int] | np.ndarray) -> np.ndarray:
    predicted, truth = np.asarray(predictions, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    if predicted.shape != truth.shape:
        raise ValueError(f"{predicted.size} predictions for {truth.size} labels")
    return np.asarray(predicted == truth)


@dataclass(frozen=True)
class Interval:
    """A bootstrap confidence interval of the median of one set of latency samples (ms)."""

    median: float
    low: float
    high: float
    n: int
    confidence: float
    resamples: int
    seed: int

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {"method": "percentile bootstrap of the median", **asdict(self)}


def median_interval(
    samples: Sequence[float], *, confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = SEED
) -> Interval | None:
    """The percentile bootstrap interval of the median; None with fewer than 2 samples.

    Percentile rather than BCa: the median of timings has many ties, where BCa's acceleration
    estimate degenerates (scipy warns and returns NaN); the percentile interval stays defined.
    """
    from scipy.stats import bootstrap

    values = np.asarray([float(v) for v in samples], dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return None
    median = float(np.median(values))
    if float(values.min()) == float(values.max()):
        low = high = median
    else:
        result = bootstrap(
            (values,),
            np.median,
            confidence_level=confidence,
            n_resamples=resamples,
            method="percentile",
            vectorized=True,
            rng=np.random.default_rng(seed),
        )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return Interval(median, low, high, int(values.size), confidence, resamples, seed)


@dataclass(frozen=True)
class SpeedComparison:
    """How a candidate's latency compares with a reference's, in words a person reads right."""

    ratio: float | None  # reference median / candidate median: > 1 is faster
    equal: bool  # the intervals overlap: not told apart
    words: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_speed(
    candidate: Interval | None, reference: Interval | None, *, reference_name: str = "the baseline"
) -> SpeedComparison:
    """'equally fast as X' when the intervals overlap, else '1.20x faster than X' / '1.07x slower than X'."""
    if candidate is None or reference is None or candidate.median <= 0 or reference.median <= 0:
        return SpeedComparison(None, False, f"not compared with {reference_name} (no latency samples)")
    ratio = round(reference.median / candidate.median, 3)
    if candidate.overlaps(reference):
        return SpeedComparison(
            ratio,
            True,
            f"equally fast as {reference_name} (the {candidate.confidence:.0%} intervals of the medians overlap)",
        )
    words = (
        f"{ratio:.2f}x faster than {reference_name}" if ratio >= 1 else f"{1 / ratio:.2f}x slower than {reference_name}"
    )
    return SpeedComparison(ratio, False, words)


@dataclass(frozen=True)
class WelchTest:
    statistic: float | None
    p_value: float | None
    significant: bool
    n_reference: int
    n_candidate: int

    def to_dict(self) -> dict[str, Any]:
        return {"test": "welch-t", **asdict(self)}


def welch(reference: Sequence[float], candidate: Sequence[float], *, alpha: float = ALPHA) -> WelchTest:
    """Welch's t-test of two sets of per-seed figures; not significant when either has < 2 values
    or both are constant and equal (no evidence of a difference)."""
    from scipy.stats import ttest_ind

    a = np.asarray([v for v in reference if v is not None], dtype=np.float64)
    b = np.asarray([v for v in candidate if v is not None], dtype=np.float64)
    if a.size < 2 or b.size < 2:
        return WelchTest(None, None, False, int(a.size), int(b.size))
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        differ = bool(a[0] != b[0])
        return WelchTest(None, 0.0 if differ else 1.0, differ, int(a.size), int(b.size))
    result = ttest_ind(a, b, equal_var=False)
    p = float(result.pvalue)
    return WelchTest(float(result.statistic), p, p < alpha, int(a.size), int(b.size))
