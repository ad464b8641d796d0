"""Write the evaluation set the board-side runner reads (see firmware/runner/README.md).

The file carries already-scaled inputs and the output kind, so the runner on the device needs
to know nothing about where the data came from or how the model was trained.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from edgecompress.data.dataset import Dataset
from edgecompress.data.pool import Pool
from edgecompress.data.selection import stratified_sample
from edgecompress.errors import DataError

OUTPUT_KINDS = ("softmax", "sigmoid", "logits")


def write_eval_npz(
    dataset: Dataset, path: Path, *, output_kind: str, max_samples: int | None = None, seed: int = 0
) -> Path:
    """Write `dataset`'s test set to `path`; `max_samples` keeps a stratified, seeded subset.

    Compressed because the file is copied to the device, often over SSH; written to a
    temporary name first so a half-written file is never measured.
    """
    if output_kind not in OUTPUT_KINDS:
        raise DataError(f"Unknown output kind {output_kind!r}.", f"Use one of {', '.join(OUTPUT_KINDS)}.")
    pool = Pool.over(dataset.y_test, lambda rows: (dataset.x_test[rows], []))
    pool, _ = stratified_sample(pool, max_samples, seed=seed, what="max_samples")
    x, _ = pool.load()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez_compressed(
                stream,
                x=np.ascontiguousarray(x, dtype=np.float32),
                y=pool.labels.astype(np.int64),
                class_names=np.array(dataset.class_names, dtype=str),
                output_kind=np.array(output_kind),
            )
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
