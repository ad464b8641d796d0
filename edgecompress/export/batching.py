"""Run any predictor over a sample array, in the batch size its graph was frozen with."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Chunk size for graphs that accept any batch: bounds memory on a big evaluation set.
DYNAMIC_BATCH = 256


def predict_in_batches(
    predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, fixed_batch: int | None
) -> np.ndarray:
    """Feed `x` in chunks; a fixed-batch graph gets its last chunk padded and trimmed back.

    Padding repeats the last sample, so it never changes the outputs that are kept.
    """
    batch = fixed_batch or DYNAMIC_BATCH
    outputs = []
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        n = len(chunk)
        if fixed_batch and n < fixed_batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], fixed_batch - n, axis=0)])
        outputs.append(np.asarray(predict(chunk))[:n])
    return np.concatenate(outputs)
