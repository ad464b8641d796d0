"""Examples whose labels are known before their pixels are read.

Class selection, splitting and subsampling only need labels, so they run on a `Pool` first and
only the rows that survive are decoded: `max_train=500` on a 50,000-image folder decodes 500.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: rows -> (pixels in 0..255, uint8 or float32, fitted to the model's input; notes for the report)
Reader = Callable[[np.ndarray], "tuple[np.ndarray, list[str]]"]


@dataclass(frozen=True)
class Pool:
    labels: np.ndarray  # int64 per example: the class index, the 0/1 anomaly label, or 0 (what splits stratify on)
    rows: np.ndarray  # where each example lives in the source (index into its arrays or file list)
    read: Reader
    targets: np.ndarray | None = None  # per example, when the task learns other values than `labels` (regression)

    @classmethod
    def over(cls, labels: np.ndarray, read: Reader, targets: np.ndarray | None = None) -> Pool:
        return cls(np.asarray(labels, dtype=np.int64), np.arange(len(labels)), read, targets)

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> Pool:
        targets = None if self.targets is None else self.targets[index]
        return Pool(self.labels[index], self.rows[index], self.read, targets)

    def relabel(self, mapping: np.ndarray) -> Pool:
        """Apply old->new class indices; examples mapped to -1 are dropped."""
        new = mapping[self.labels]
        keep = np.flatnonzero(new >= 0)
        return Pool(new[keep], self.rows[keep], self.read, None if self.targets is None else self.targets[keep])

    @property
    def values(self) -> np.ndarray:
        """What the model is judged against: the targets when there are any, else the labels."""
        return self.labels if self.targets is None else self.targets

    def counts(self, n_classes: int) -> np.ndarray:
        return np.bincount(self.labels, minlength=n_classes)

    def load(self) -> tuple[np.ndarray, list[str]]:
        return self.read(self.rows)
