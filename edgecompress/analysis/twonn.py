"""TwoNN intrinsic dimension (Facco, d'Errico, Rodriguez & Laio, Sci. Rep. 7, 12140, 2017).

For each point, mu = r2 / r1 (second over first nearest-neighbour distance) follows a
Pareto law with exponent d when the density is locally uniform, whatever the embedding
dimension. So d is read off the empirical CDF F of mu: -log(1 - F(mu)) = d log(mu), fitted
by a line through the origin after discarding the largest mu (they come from points in
sparse regions, where local uniformity fails). The maximum-likelihood variant treats the
discarded ratios as censored (Denti et al. 2022). Both follow scikit-dimension's
conventions exactly (`skdim.id.TwoNN`: keep int(N (1 - f)) ratios, F_i = i / N), so the two
agree on the same points; the differences are speed, memory and duplicates: scikit-dimension
drops every copy of a repeated point, here one copy stays (it is a genuine sample) and the
others are dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgecompress.analysis.neighbours import distinct_rows, two_nearest
from edgecompress.analysis.points import as_points
from edgecompress.errors import DataError, EdgeCompressError

METHODS = ("linear", "mle")


@dataclass(frozen=True)
class TwoNNResult:
    """An intrinsic-dimension estimate and what it was computed from."""

    d: float
    n_used: int  # distinct points whose ratio mu entered the estimate (before the discard)
    n_duplicates_dropped: int  # rows equal to an earlier row; r1 = 0 leaves mu undefined
    method: str = "linear"
    discard_fraction: float = 0.1


def twonn(
    x: np.ndarray, *, discard_fraction: float = 0.1, method: str = "linear", block_size: int | None = None
) -> TwoNNResult:
    """Estimate the intrinsic dimension of the rows of `x` (any shape; rows are flattened)."""
    result, _ = twonn_with_spread(x, discard_fraction=discard_fraction, method=method, block_size=block_size)
    return result


def twonn_with_spread(
    x: np.ndarray,
    *,
    n_subsamples: int = 0,
    seed: int = 0,
    discard_fraction: float = 0.1,
    method: str = "linear",
    block_size: int | None = None,
) -> tuple[TwoNNResult, list[float]]:
    """The estimate on all rows, plus estimates on `n_subsamples` random halves of them.

    The halves show how much the estimate moves with the sample, which is what decides
    whether a layer's significance is robust to the threshold. They share the full set's
    nearest-neighbour pass, so the error bars cost little beyond the estimate itself.
    """
    check_twonn_settings(discard_fraction, method)
    points = as_points(x, minimum=3, estimator="TwoNN")
    distinct = distinct_rows(points)
    if len(distinct) < 3:
        raise DataError(
            f"Only {len(distinct)} distinct point(s) among {len(points)}: TwoNN needs at least 3.",
            "Use more samples, or samples that differ from each other.",
        )
    rng = np.random.default_rng(seed)
    half = len(distinct) // 2
    halves = [np.sort(rng.choice(distinct, size=half, replace=False)) for _ in range(n_subsamples)] if half >= 3 else []
    full, *subsamples = two_nearest(points, [distinct, *halves], block_size=block_size)

    def estimate(r1: np.ndarray, r2: np.ndarray) -> float:
        apart = r1 > 0  # distinct rows closer than float underflow would give mu = inf
        return dimension_from_ratios(r2[apart] / r1[apart], discard_fraction=discard_fraction, method=method)

    result = TwoNNResult(
        d=estimate(full.r1, full.r2),
        n_used=len(distinct),
        n_duplicates_dropped=len(points) - len(distinct),
        method=method,
        discard_fraction=discard_fraction,
    )
    return result, [estimate(s.r1, s.r2) for s in subsamples]


def dimension_from_ratios(mu: np.ndarray, *, discard_fraction: float = 0.1, method: str = "linear") -> float:
    """d from the ratios mu = r2 / r1 (all finite, >= 1)."""
    check_twonn_settings(discard_fraction, method)
    n = len(mu)
    n_keep = int(n * (1 - discard_fraction))
    if n_keep < 2:
        raise DataError(
            f"Only {n_keep} ratio(s) remain after discarding {discard_fraction:.0%} of {n}: TwoNN needs 2.",
            "Use more samples or a smaller discard fraction.",
        )
    log_mu = np.log(np.sort(mu)[:n_keep])
    if method == "mle":
        # log mu is exponential with rate d; the discarded tail is Type-II censored.
        denominator = log_mu.sum() + (n - n_keep) * log_mu[-1]
        d = (n_keep - 1) / denominator if denominator > 0 else np.inf
    else:
        log_mu = log_mu[: n - 1]  # F = N / N would put the largest ratio at -log(0)
        empirical_cdf = np.arange(1, len(log_mu) + 1) / n
        y = -np.log1p(-empirical_cdf)
        sxx = float(log_mu @ log_mu)
        d = float(log_mu @ y) / sxx if sxx > 0 else np.inf
    if not np.isfinite(d):
        raise DataError(
            "Every point's two nearest neighbours are equally far (mu = 1), as on a regular grid: "
            "TwoNN cannot estimate a dimension.",
            "Use samples drawn from the data's distribution, not a lattice.",
        )
    return float(d)


def check_twonn_settings(discard_fraction: float, method: str) -> None:
    """Reject settings that would silently give a meaningless dimension."""
    if method not in METHODS:
        raise EdgeCompressError(f"Unknown TwoNN method {method!r}.", f"Use one of: {', '.join(METHODS)}.")
    if not 0 <= discard_fraction < 1:
        raise EdgeCompressError(
            f"The TwoNN discard fraction {discard_fraction} is outside [0, 1).",
            "Use a fraction such as 0.1 (the default, from Facco et al. 2017).",
        )
