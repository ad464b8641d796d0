"""Step 2: the unconverted Keras model on the evaluation images, scored exactly as boards are."""

from __future__ import annotations

from typing import Any

from edgecompress.pipeline.context import RunContext
from edgecompress.pipeline.steps.base import Step
from edgecompress.run_layout import LAYOUT


class KerasReference(Step):
    name = "reference"

    def run(self, ctx: RunContext) -> None:
        ctx.reference = ctx.folder.remember(
            self.name, lambda: _reference(ctx), files=[ctx.folder.path / LAYOUT.reference]
        )


def _reference(ctx: RunContext) -> dict[str, Any]:
    """Accuracy figures in the runner's shape; the per-sample predictions go to reference.json."""
    import edgecompress
    from edgecompress.evaluation import predictions_from_scores, tally

    prepared = ctx.prepared
    data = prepared.dataset
    predicted = predictions_from_scores(prepared.reference_scores, prepared.loaded.output_kind)
    summary = tally(predicted, data.y_test, data.class_names)
    ctx.folder.write_json(LAYOUT.reference, {"predictions": summary.pop("predictions"), "y": data.y_test.tolist()})
    summary["runtime"] = f"tf-keras {_tf_keras_version()} on the host (edgecompress {edgecompress.__version__})"
    return summary


def _tf_keras_version() -> str:
    import importlib.metadata as md

    try:
        return md.version("tf-keras")
    except md.PackageNotFoundError:  # pragma: no cover - a dependency
        return "?"
