"""The statistics that keep a verdict honest: is a difference real, or noise?

Three questions come up whenever a compressed artifact is judged against its baseline:

* accuracy: both were scored on the *same* images, so the right test is a paired one.
  McNemar's exact test looks only at the images on which the two disagree (b: the baseline
  right and the artifact wrong, c: the reverse); under "no difference" b ~ Binomial(b + c, 1/2).
* latency: timed runs come in interleaved rounds (every artifact once per round, the order
  rotated), and runs within one round are not independent draws: a board that heats up or
  gets a background job moves a whole round. So an artifact's figure is the median of its
  round medians, and its interval a two-level bootstrap (rounds, then runs within each
  round, seeded so a report re-rendered tomorrow says the same): drift between rounds widens
  it. Two artifacts are compared by their per-round ratio, paired round by round, and never
  called faster or slower by less than the board's own timing noise (`NoiseFloor`: the same
  baseline timed twice per round). A single block of runs (reports from before rounds) gets
  the percentile bootstrap of its median.
* per class: with several seeds, Welch's t-test (unequal variances) over the seeds' per-class
  recalls, the classes' p-values adjusted together for the false discovery rate
  (Benjamini-Hochberg); with one seed, the sigma rule in `reporting.per_class`.

Everything here is a pure function of numbers; scipy does the arithmetic.
"""

from __future__ import annotations

import math
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
ROUNDS_METHOD = "median of round medians; two-level percentile bootstrap (rounds, then runs within a round)"
NOISE_METHOD = (
    "the baseline timed twice per round, half a round apart: the farthest reach from 1 of the 95% interval of "
    "their ratio (median over rounds, two-level bootstrap)"
)


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
    method: str = "percentile bootstrap of the median"
    rounds: int | None = None  # timed in interleaved rounds: the median is the median of round medians

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def _within(rounds: list[np.ndarray], picks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap medians shaped like `picks`: each picked round's runs drawn again with replacement."""
    medians = np.empty(picks.shape, dtype=np.float64)
    for index, values in enumerate(rounds):
        chosen = picks == index
        count = int(chosen.sum())
        if count:
            medians[chosen] = np.median(values[rng.integers(0, values.size, size=(count, values.size))], axis=1)
    return medians


def _as_rounds(rounds: Sequence[Sequence[float]]) -> list[np.ndarray]:
    arrays = [np.asarray([float(v) for v in r], dtype=np.float64) for r in rounds]
    return [a[np.isfinite(a)] for a in arrays if np.isfinite(a).any()]


def round_medians(rounds: Sequence[Sequence[float]]) -> list[float]:
    return [float(np.median(r)) for r in _as_rounds(rounds)]


def rounds_interval(
    rounds: Sequence[Sequence[float]], *, confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = SEED
) -> Interval | None:
    """The median of the round medians, with a two-level bootstrap interval (rounds, then runs in a round).

    With one round this is the bootstrap of that round's runs alone; None without two samples.
    """
    arrays = _as_rounds(rounds)
    if not arrays or sum(a.size for a in arrays) < 2:
        return None
    point = float(np.median([np.median(a) for a in arrays]))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(arrays), size=(resamples, len(arrays)))
    replicates = np.median(_within(arrays, picks, rng), axis=1)
    low, high = np.percentile(replicates, [50 * (1 - confidence), 50 * (1 + confidence)])
    return Interval(
        point, min(float(low), point), max(float(high), point), sum(a.size for a in arrays), confidence, resamples, seed,
        method=ROUNDS_METHOD, rounds=len(arrays),
    )  # fmt: skip


@dataclass(frozen=True)
class Ratio:
    """`a`'s latency over `b`'s (below 1: a is faster) with its interval."""

    ratio: float
    low: float
    high: float
    rounds: int
    paired: bool  # measured in the same rounds (ratio per round), or through each run's own baseline

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_ratio(
    a: Sequence[Sequence[float]],
    b: Sequence[Sequence[float]],
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Ratio | None:
    """The median over rounds of a's round median / b's, both timed in the same rounds, with a two-level
    bootstrap interval (the same rounds drawn for both, then each one's runs within them)."""
    ra, rb = _as_rounds(a), _as_rounds(b)
    if not ra or len(ra) != len(rb) or any(v.min() <= 0 for v in ra + rb):
        return None
    point = float(np.median([np.median(x) / np.median(y) for x, y in zip(ra, rb)]))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(ra), size=(resamples, len(ra)))
    replicates = np.median(_within(ra, picks, rng) / _within(rb, picks, rng), axis=1)
    low, high = np.percentile(replicates, [50 * (1 - confidence), 50 * (1 + confidence)])
    return Ratio(point, min(float(low), point), max(float(high), point), len(ra), True)


def through_baselines(a_vs_base: Ratio, b_vs_base: Ratio) -> Ratio:
    """a / b from two runs, each against its own run's baseline (the same file): drift between the runs cancels."""
    return Ratio(
        a_vs_base.ratio / b_vs_base.ratio,
        a_vs_base.low / b_vs_base.high,
        a_vs_base.high / b_vs_base.low,
        min(a_vs_base.rounds, b_vs_base.rounds),
        False,
    )


@dataclass(frozen=True)
class NoiseFloor:
    """The board's timing noise: how far apart the baseline's two slots per round are, at most (a fraction)."""

    fraction: float
    ratio: Ratio
    artifact: str

    @property
    def percent(self) -> float:
        return round(100 * self.fraction, 2)

    def words(self, target: str) -> str:
        return f"timing noise on {target}: ±{self.percent:.1f} %"

    def to_dict(self) -> dict[str, Any]:
        return {
            "fraction": self.fraction,
            "percent": self.percent,
            "artifact": self.artifact,
            "ratio": self.ratio.to_dict(),
            "method": NOISE_METHOD,
        }


def noise_floor(
    first: Sequence[Sequence[float]], second: Sequence[Sequence[float]], artifact: str
) -> NoiseFloor | None:
    """The A/A ratio of one file timed twice per round; its interval's farthest reach from 1 is the noise."""
    ratio = paired_ratio(first, second)
    if ratio is None:
        return None
    return NoiseFloor(round(max(ratio.high - 1.0, 1.0 - ratio.low, 0.0), 6), ratio, artifact)


def latency_order(ratio: Ratio | None, noise: float, tolerance: float) -> int:
    """+1 when a is faster than b beyond noise, -1 when slower, 0 when they cannot be told apart.

    Told apart only when the interval of a/b excludes 1 *and* the ratio is farther from 1 than
    `tolerance` times the noise floor (symmetrically: 1.05 and 1/1.05 are as far).
    """
    if ratio is None:
        return 0
    outside = ratio.high < 1.0 or ratio.low > 1.0
    beyond = abs(math.log(ratio.ratio)) > math.log1p(max(tolerance, 0.0) * max(noise, 0.0))
    if not (outside and beyond):
        return 0
    return 1 if ratio.ratio < 1.0 else -1


@dataclass(frozen=True)
class SpeedComparison:
    """How a candidate's latency compares with a reference's, in words a person reads right."""

    ratio: float | None  # reference median / candidate median: > 1 is faster
    equal: bool  # not told apart (within the timing noise, or the interval holds 1, or the intervals overlap)
    words: str
    low: float | None = None  # the speed-up's 95% interval, when timed in rounds
    high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_in_rounds(
    ratio: Ratio | None, noise: NoiseFloor | None, *, reference_name: str = "the baseline"
) -> SpeedComparison:
    """Candidate against reference timed in the same rounds: 'equally fast' unless the interval of their ratio
    excludes 1 and the ratio is beyond the board's timing noise; else '1.20x faster' / '1.07x slower'."""
    if ratio is None:
        return SpeedComparison(None, False, f"not compared with {reference_name} (no latency samples in rounds)")
    speedup, low, high = round(1 / ratio.ratio, 3), round(1 / ratio.high, 3), round(1 / ratio.low, 3)
    floor = noise.fraction if noise is not None else 0.0
    if latency_order(ratio, floor, 1.0) == 0:
        holds_one = ratio.low <= 1.0 <= ratio.high
        why = (
            f"the {CONFIDENCE:.0%} interval of the ratio, {low:.2f}-{high:.2f}x, includes 1"
            if holds_one
            else f"within the board's timing noise of ±{100 * floor:.1f} %"
        )
        return SpeedComparison(speedup, True, f"equally fast as {reference_name} ({speedup:.2f}x: {why})", low, high)
    words = (
        f"{speedup:.2f}x faster than {reference_name}"
        if speedup >= 1
        else f"{1 / speedup:.2f}x slower than {reference_name}"
    )
    return SpeedComparison(speedup, False, words, low, high)


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


def false_discovery(p_values: dict[Any, float]) -> dict[Any, float]:
    """Benjamini-Hochberg adjusted p-values (q) of a family of tests, keyed as given; q < alpha keeps the
    expected share of false discoveries among the discoveries below alpha."""
    from scipy.stats import false_discovery_control

    if not p_values:
        return {}
    keys = list(p_values)
    adjusted = false_discovery_control(np.asarray([p_values[k] for k in keys], dtype=np.float64), method="bh")
    return {key: float(q) for key, q in zip(keys, adjusted)}
