"""The loaded data set, scaled for the model, and its description for report.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgecompress.errors import DataError

#: pixels p in 0..255 become p * factor + offset
SCALINGS: dict[str, tuple[float, float]] = {"0-1": (1.0 / 255.0, 0.0), "0-255": (1.0, 0.0), "-1-1": (1.0 / 127.5, -1.0)}
#: the values exactly as the data holds them: what a model of sensor data, features or spectrograms expects
AS_STORED = "none"
SCALING_NAMES = (*SCALINGS, AS_STORED)


def check_scaling(scaling: str, pixel_factor: float | None = 1.0) -> None:
    """Refuse an unknown scaling, and a pixel scaling of data that is not pixels."""
    if scaling not in SCALING_NAMES:
        raise DataError(
            f"Unknown scaling {scaling!r}.",
            f"Use one of {', '.join(SCALING_NAMES)} (the range the model was trained on; none: the values as stored).",
        )
    if scaling != AS_STORED and pixel_factor is None:
        raise DataError(
            f"--scaling {scaling} maps pixel values 0..255, but this data is not pixels (see the data notes).",
            "Leave --scaling out or use --scaling none: such data is given to the model as stored, so save it "
            "already scaled the way the model was trained.",
        )


def scale_values(stored: np.ndarray, scaling: str, pixel_factor: float | None) -> np.ndarray:
    """Stored values to float32 in the model's range, in one pass over the data."""
    check_scaling(scaling, pixel_factor)
    if scaling == AS_STORED:
        return np.asarray(stored, dtype=np.float32)
    factor, offset = SCALINGS[scaling]
    x = np.multiply(stored, np.float32(factor * float(pixel_factor or 1.0)), dtype=np.float32)
    if offset:
        x += np.float32(offset)
    return x


def scale_pixels(pixels: np.ndarray, scaling: str) -> np.ndarray:
    """Map 0..255 pixels (uint8 or float) to float32 in the model's range."""
    return scale_values(pixels, scaling, 1.0)


@dataclass
class Dataset:
    """Train and test examples ready for `model.predict`, and where they came from.

    `y_*` hold what the task judges against: class indices (classification), 0/1 labels
    (anomaly), float targets (regression, one row per sample), or zeros (fidelity, or an
    anomaly set without labels: `labelled` is then False). `notes` records every
    interpretation the loader made on the user's behalf (pixel range or values as stored,
    files skipped, images converted, subsampling) so a report can show it.
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
    task: str = "classification"
    labelled: bool = True
    pixel_factor: float | None = 1.0  # stored value x factor = 0..255 pixel; None: not pixels
    task_decision: dict[str, Any] | None = None

    def counts(self, part: str) -> dict[str, int]:
        """Examples per class (per label value for anomaly data); the total for other tasks."""
        labels = {"train": self.y_train, "test": self.y_test}[part]
        if not self.class_names or labels.ndim != 1 or labels.dtype.kind not in "iu":
            return {"total": int(len(labels))}
        per_class = np.bincount(labels, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, per_class)}

    def value_range(self) -> tuple[float, float]:
        """The smallest and largest input value the model is given (after scaling)."""
        parts = [x for x in (self.x_train, self.x_test) if x.size]
        return float(min(x.min() for x in parts)), float(max(x.max() for x in parts))

    def describe(self) -> dict[str, Any]:
        low, high = self.value_range()
        return {
            "source": self.source,
            "classes": list(self.class_names),
            "counts": {"train": self.counts("train"), "test": self.counts("test")},
            "shapes": {"x_train": list(self.x_train.shape), "x_test": list(self.x_test.shape)},
            "scaling": self.scaling,
            "split": self.split,
            "notes": list(self.notes),
            "kind": "values" if self.pixel_factor is None else "pixels",
            "labelled": self.labelled,
            "value_range": [round(low, 6), round(high, 6)],
        }
