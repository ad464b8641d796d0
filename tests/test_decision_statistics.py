"""The statistics behind a verdict, checked against statsmodels and an independent bootstrap on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest

from edgecompress.decision import statistics as stats


def _pairs(b: int, c: int, both_right: int = 50, both_wrong: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Correctness of a reference and a candidate on the same images with b / c discordant pairs."""
    reference = [True] * both_right + [False] * both_wrong + [True] * b + [False] * c
    candidate = [True] * both_right + [False] * both_wrong + [False] * b + [True] * c
    return np.array(reference), np.array(candidate)


@pytest.mark.parametrize("b, c", [(0, 0), (1, 0), (3, 7), (10, 2), (25, 25), (40, 12), (0, 9), (120, 95)])
def test_mcnemar_exact_matches_statsmodels(b: int, c: int) -> None:
    from statsmodels.stats.contingency_tables import mcnemar

    reference, candidate = _pairs(b, c)
    ours = stats.mcnemar_exact(reference, candidate)
    table = [[50, b], [c, 5]]  # rows: reference right / wrong; columns: candidate right / wrong
    theirs = mcnemar(table, exact=True)
    assert ours.only_reference_right == b and ours.only_candidate_right == c
    assert ours.p_value == pytest.approx(min(1.0, theirs.pvalue), rel=1e-9, abs=1e-12)
    assert ours.significant == (theirs.pvalue < 0.05)


def test_a_small_change_on_few_images_is_not_significant_and_a_large_one_is() -> None:
    assert not stats.mcnemar_exact(*_pairs(3, 1)).significant  # -0.3 pt of noise
    assert stats.mcnemar_exact(*_pairs(30, 4)).significant
    assert stats.mcnemar_exact(*_pairs(30, 4)).change_points < 0


def _numpy_bootstrap(samples: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """An independent percentile bootstrap of the median, written out in NumPy."""
    rng = np.random.default_rng(seed)
    medians = np.median(samples[rng.integers(0, len(samples), (resamples, len(samples)))], axis=1)
    return float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))


@pytest.mark.parametrize("shape", ["normal", "skewed", "ties"])
def test_median_interval_agrees_with_an_independent_bootstrap(shape: str) -> None:
    rng = np.random.default_rng(7)
    samples = {
        "normal": rng.normal(10, 0.5, 100),
        "skewed": 5 + rng.exponential(0.4, 100),
        "ties": np.round(rng.normal(2, 0.05, 100), 2),
    }[shape]
    interval = stats.median_interval(samples)
    low, high = _numpy_bootstrap(samples, 20000, seed=123)
    spread = float(np.percentile(samples, 75) - np.percentile(samples, 25))
    assert interval.low <= interval.median <= interval.high and interval.median == pytest.approx(np.median(samples))
    assert interval.low == pytest.approx(low, abs=0.1 * spread) and interval.high == pytest.approx(
        high, abs=0.1 * spread
    )
    assert stats.median_interval(samples) == interval  # seeded: a report re-rendered tomorrow says the same


def test_median_interval_edge_cases() -> None:
    assert stats.median_interval([]) is None and stats.median_interval([3.0]) is None
    flat = stats.median_interval([2.0] * 30)
    assert flat.low == flat.high == flat.median == 2.0


def test_overlapping_intervals_are_equally_fast_and_separate_ones_get_a_ratio() -> None:
    rng = np.random.default_rng(0)
    base = stats.median_interval(rng.normal(10.0, 0.3, 100))
    same = stats.median_interval(rng.normal(10.05, 0.3, 100))
    fast = stats.median_interval(rng.normal(8.0, 0.3, 100))
    slow = stats.median_interval(rng.normal(10.7, 0.3, 100))
    assert stats.compare_speed(same, base).equal and stats.compare_speed(same, base).words.startswith("equally fast")
    faster = stats.compare_speed(fast, base)
    assert not faster.equal and faster.words.startswith("1.2") and "faster" in faster.words
    slower = stats.compare_speed(slow, base)
    assert "x slower" in slower.words and slower.ratio < 1
    assert stats.compare_speed(None, base).ratio is None


def test_welch_matches_statsmodels_and_needs_two_seeds() -> None:
    from statsmodels.stats.weightstats import ttest_ind

    a, b = [91.0, 93.5, 92.0, 90.5], [85.0, 88.0, 84.5]
    ours = stats.welch(a, b)
    t, p, _ = ttest_ind(a, b, usevar="unequal")
    assert ours.statistic == pytest.approx(t) and ours.p_value == pytest.approx(p) and ours.significant
    assert not stats.welch([90.0], [80.0]).significant  # one seed proves nothing
    assert stats.welch([90.0, 90.0], [90.0, 90.0]).p_value == 1.0
