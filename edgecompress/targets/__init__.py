"""Where artifacts are measured: this machine or a board. See base.Target for the contract."""

from __future__ import annotations

from edgecompress.targets.base import MeasureJob, Measurement, Target
from edgecompress.targets.registry import resolve_target

__all__ = ["MeasureJob", "Measurement", "Target", "resolve_target"]
