"""Write the evaluation set the board-side runner reads (see firmware/runner/README.md).

The file carries already-scaled inputs and, for a classifier, its labels and output kind, so
the runner on the device needs to know nothing about where the data came from or how the
model was trained. Every other task's figures are computed on the host from the raw outputs
the runner sends back; the file then says `output_kind` 'raw', and holds the host's targets
only for the host to read back (`targets`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from edgecompress.data.dataset import Dataset
from edgecompress.data.pool import Pool
from edgecompress.data.selection import subsample
from edgecompress.errors import DataError
from edgecompress.tasks import ModelFacts, task_named

OUTPUT_KINDS = ("softmax", "sigmoid", "logits")
#: what the runner is told when it is not to score classes: it only returns the outputs
RAW_OUTPUTS = "raw"
#: the raw outputs of the whole eval set a board sends back stay under this many bytes
OUTPUTS_BUDGET_BYTES = 128 << 20


def outputs_cap(facts: ModelFacts | None) -> int | None:
    """The most eval samples whose raw outputs fit OUTPUTS_BUDGET_BYTES (a segmentation head is large)."""
    if facts is None:
        return None
    return max(2, OUTPUTS_BUDGET_BYTES // (4 * max(1, facts.output_size)))


def write_eval_npz(
    dataset: Dataset,
    path: Path,
    *,
    output_kind: str = "softmax",
    facts: ModelFacts | None = None,
    max_samples: int | None = None,
    seed: int = 0,
) -> Path:
    """Write `dataset`'s test set to `path`; `max_samples` keeps a seeded subset (stratified when the task is).

    Compressed because the file is copied to the device, often over SSH; written to a
    temporary name first so a half-written file is never measured.
    """
    if output_kind not in OUTPUT_KINDS:
        raise DataError(f"Unknown output kind {output_kind!r}.", f"Use one of {', '.join(OUTPUT_KINDS)}.")
    task = task_named(dataset.task)
    pool = Pool.over(dataset.y_test if task.stratified else np.zeros(len(dataset.x_test)), lambda rows: (rows, []))
    pool, _ = subsample(pool, max_samples, seed=seed, what="max_samples", stratified=task.stratified)
    rows = pool.rows
    arrays: dict[str, np.ndarray] = {
        "x": np.ascontiguousarray(dataset.x_test[rows], dtype=np.float32),
        "task": np.array(task.name),
        "output_kind": np.array(output_kind if task.labels == "classes" else RAW_OUTPUTS),
    }
    if task.labels == "classes":
        arrays.update(y=dataset.y_test[rows].astype(np.int64), class_names=np.array(dataset.class_names, dtype=str))
    elif task.labels != "none" and dataset.labelled:
        arrays["targets"] = np.asarray(dataset.y_test[rows])
    if facts is not None:
        arrays.update(
            output_names=np.array([spec.name for spec in facts.outputs], dtype=str),
            output_sizes=np.array([spec.size for spec in facts.outputs], dtype=np.int64),
        )
    return _write(path, arrays)


def _write(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez_compressed(stream, **arrays)  # type: ignore[arg-type]
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
