"""Check that an array is a usable point cloud before an estimator spends time on it."""

from __future__ import annotations

import numpy as np

from edgecompress.errors import DataError


def as_points(x: np.ndarray, *, minimum: int, estimator: str) -> np.ndarray:
    """`x` as an (n_points, n_features) view, or DataError saying why it cannot be used."""
    points = np.asarray(x)
    if points.ndim < 2 or len(points) < minimum:
        raise DataError(
            f"{estimator} needs an array of at least {minimum} points (one per row); got shape {points.shape}.",
            "Pass samples as rows, e.g. shape (n_samples, n_features), and use more samples.",
        )
    # One float64 sum instead of an isfinite() mask as large as the data: NaN and inf survive it.
    if not np.isfinite(np.sum(points, dtype=np.float64)):
        raise DataError(
            f"The points given to {estimator} contain NaN or infinite values.", "Remove or repair those samples first."
        )
    return points.reshape(len(points), -1)
