"""Linear dimension: principal components needed to explain a share of the variance.

This is the Hybrid-Net criterion (Chakraborty et al. 2020, 99% of variance), offered as the
baseline to TwoNN: it counts the flat directions the data occupy, so on curved
representations it reads higher than the intrinsic dimension.
"""

from __future__ import annotations

import numpy as np

from edgecompress.analysis.points import as_points

#: Working memory for one chunk of centred data.
CHUNK_BYTES = 128 * 2**20


def pca_dimension(x: np.ndarray, *, variance: float = 0.99) -> int:
    """Smallest number of principal components whose variance reaches `variance` of the total."""
    if not 0 < variance <= 1:
        raise ValueError(f"variance must be in (0, 1], got {variance}")
    spectrum = variance_spectrum(x)
    total = spectrum.sum()
    if total <= 0:
        return 0  # all points equal: no direction carries variance
    explained = np.cumsum(spectrum) / total
    return min(len(spectrum), int(np.searchsorted(explained, variance * (1 - 1e-12))) + 1)


def variance_spectrum(x: np.ndarray) -> np.ndarray:
    """Eigenvalues of the covariance of the rows of `x`, largest first.

    The covariance (features x features) and the Gram matrix (samples x samples) share
    their nonzero eigenvalues, so the smaller of the two is formed: a 2,000 x 32,768 conv
    output costs a 2,000 x 2,000 eigenproblem. Each chunk is centred in float64 before its
    product, which avoids the cancellation of forming X^T X and subtracting the mean after.
    """
    data = as_points(x, minimum=2, estimator="PCA")
    n, width = data.shape
    mean = data.mean(axis=0, dtype=np.float64)
    if width <= n:
        gram = _covariance_by_rows(data, mean)
    else:
        gram = _gram_by_columns(data, mean)
    eigenvalues = np.linalg.eigvalsh(gram)[::-1] / (n - 1)
    return np.clip(eigenvalues, 0, None)


def _covariance_by_rows(data: np.ndarray, mean: np.ndarray) -> np.ndarray:
    n, width = data.shape
    step = max(1, CHUNK_BYTES // (8 * width))
    covariance = np.zeros((width, width))
    for start in range(0, n, step):
        centred = data[start : start + step] - mean
        covariance += centred.T @ centred
    return covariance


def _gram_by_columns(data: np.ndarray, mean: np.ndarray) -> np.ndarray:
    n, width = data.shape
    step = max(1, CHUNK_BYTES // (8 * n))
    gram = np.zeros((n, n))
    for start in range(0, width, step):
        centred = data[:, start : start + step] - mean[start : start + step]
        gram += centred @ centred.T
    return gram
