"""The loaded data set, scaled for the model, and its description for report.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgecompress.errors import DataError

#: pixels p in 0..255 become p * factor + offset
SCALINGS: dict[str, tuple[float, float]] = {"0-1": (1.0 / 255.0, 0.0), "0-255": (1.0, 0.0), "-1-1": (1.0 / 127.5, -1.0)}


def check_scaling(scaling: str) -> tuple[float, float]:
    if scaling not in SCALINGS:
        raise DataError(
            f"Unknown scaling {scaling!r}.", f"Use one of {', '.join(SCALINGS)} (the range the model was trained on)."
        )
    return SCALINGS[scaling]


def scale_pixels(pixels: np.ndarray, scaling: str) -> np.ndarray:
    """Map 0..255 pixels (uint8 or float) to float32 in the model's range in one pass over the data."""
    factor, offset = check_scaling(scaling)
    x = np.multiply(pixels, np.float32(factor), dtype=np.float32)
    if offset:
        x += np.float32(offset)
    return x


@dataclass
class Dataset:
    """Train and test examples ready for `model.predict`, and where they came from.

    `notes` records every interpretation the loader made on the user's behalf (pixel range
    guessed from an .npz, files skipped, images converted, subsampling) so a report can show it.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str
    scaling: str
    split: str
    notes: list[str] = field(default_factory=list)

    def counts(self, part: str) -> dict[str, int]:
        labels = {"train": self.y_train, "test": self.y_test}[part]
        per_class = np.bincount(labels, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, per_class)}

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "classes": list(self.class_names),
            "counts": {"train": self.counts("train"), "test": self.counts("test")},
            "shapes": {"x_train": list(self.x_train.shape), "x_test": list(self.x_test.shape)},
            "scaling": self.scaling,
            "split": self.split,
            "notes": list(self.notes),
        }
