"""Where fine-tuning runs: `--device auto|cpu|gpu`.

edgecompress hides no GPU (importing it changes no environment variable): `auto` fine-tunes on
the first GPU TensorFlow sees and on the CPU when it sees none; `cpu` keeps training on the CPU
even on a GPU machine (TensorFlow still sees the GPUs); `gpu` insists on one, and stops
before anything is trained when there is none. What was used is kept in training.json and
the report. Conversion, export and measurement do not depend on this: they run on the CPU.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from edgecompress.errors import EdgeCompressError

DEVICES = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class TrainingDevice:
    """The device a run's fine-tuning uses, and why."""

    requested: str  # auto | cpu | gpu, as asked
    used: str  # cpu | gpu
    visible_gpus: tuple[str, ...]  # what TensorFlow sees, e.g. ('/physical_device:GPU:0',)

    @property
    def tensorflow_device(self) -> str:
        return "/GPU:0" if self.used == "gpu" else "/CPU:0"

    def describe(self) -> str:
        """Where training runs, in words, for the log and the report."""
        seen = f"{len(self.visible_gpus)} GPU(s)" if self.visible_gpus else "no GPU"
        place = f"the GPU ({self.visible_gpus[0]})" if self.used == "gpu" else "the CPU"
        return f"{place} (--device {self.requested}; TensorFlow sees {seen})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "used": self.used,
            "tensorflow_device": self.tensorflow_device,
            "visible_gpus": list(self.visible_gpus),
            "description": self.describe(),
        }


def check_device_name(requested: str) -> None:
    if requested not in DEVICES:
        raise EdgeCompressError(
            f"--device {requested!r} is not a training device.", f"Use one of: {', '.join(DEVICES)}."
        )


def training_device(requested: str) -> TrainingDevice:
    """The device for `requested`, or an error when `gpu` is asked for and TensorFlow sees none."""
    from edgecompress._tf import tensorflow

    check_device_name(requested)
    gpus = tuple(device.name for device in tensorflow().config.list_physical_devices("GPU"))
    if requested == "gpu" and not gpus:
        hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
        raise EdgeCompressError(
            "--device gpu asks to fine-tune on a GPU, but TensorFlow sees no GPU on this machine"
            + (f" (CUDA_VISIBLE_DEVICES is {hidden!r} in this environment)." if hidden is not None else "."),
            "Use --device auto (a GPU when one is visible, else the CPU) or --device cpu; for a GPU, "
            "run on a machine with an NVIDIA driver and TensorFlow's CUDA build "
            "(pip install 'tensorflow[and-cuda]'), and check that `nvidia-smi` lists it.",
        )
    return TrainingDevice(requested, "gpu" if gpus and requested != "cpu" else "cpu", gpus)


@contextlib.contextmanager
def placed(device: TrainingDevice) -> Iterator[None]:
    """Build and train the model on `device` (variables and ops alike)."""
    from edgecompress._tf import tensorflow

    with tensorflow().device(device.tensorflow_device):
        yield


__all__ = ["DEVICES", "TrainingDevice", "check_device_name", "placed", "training_device"]
