"""An exported model file, how it was made, and how it is described in report.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgecompress.budget import Budget, artifact_resources

BASELINE = "baseline-fp32"

#: what each profile PTQ choice produces, and why a user would want it
PTQ_DESCRIPTIONS = {
    "int8": "post-training full-integer int8 (calibrated on training images)",
    "fp16": "post-training float16 weights (for fp16-capable GPUs / no int8 path)",
    "dynamic": "post-training dynamic-range (int8 weights, float activations)",
    "float32": "no quantization",
}


@dataclass
class Artifact:
    """One exported model file and how it was made."""

    name: str
    kind: str  # the export mode, e.g. 'float32', 'int8'
    description: str
    path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """What the run folder remembers (paths relative to the folder, which is renamed at the end)."""
        return {**asdict(self), "path": self.path.name}

    @classmethod
    def from_record(cls, record: dict[str, Any], artifacts_dir: Path) -> Artifact:
        return cls(**{**record, "path": artifacts_dir / record["path"]})

    def describe(self, budget: Budget) -> dict[str, Any]:
        """The artifact's entry in report.json: sizes, hash and whether the file fits the budget.

        Per-tensor weight statistics and the bit-packed size are added when the report is
        completed (reporting.schema.complete_report), where the plan's layer names are known.
        """
        from edgecompress.export import artifact_sizes
        from edgecompress.model_io import sha256_of

        sizes = artifact_sizes(self.path)
        figures = {**sizes, **{k: v for k, v in self.extra.items() if isinstance(v, int)}}  # a firmware's flash, RAM
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "format": self.path.suffix.lstrip("."),
            "path": self.path.name,
            "sha256": sha256_of(self.path),
            **sizes,
            "fits_budget": budget.fits(artifact_resources(figures)),
            **self.extra,
        }
