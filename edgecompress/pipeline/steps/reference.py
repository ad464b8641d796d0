"""Step 2: the unconverted Keras model on the evaluation samples, scored exactly as boards are."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgecompress.pipeline.context import RunContext
from edgecompress.pipeline.steps.base import Step
from edgecompress.pipeline.steps.measure import ensure_eval_npz
from edgecompress.run_layout import LAYOUT


class KerasReference(Step):
    name = "reference"

    def run(self, ctx: RunContext) -> None:
        files = [ctx.folder.path / LAYOUT.reference, ctx.folder.path / LAYOUT.reference_outputs]
        ctx.reference = ctx.folder.remember(self.name, lambda: _reference(ctx), files=files)


def _reference(ctx: RunContext) -> dict[str, Any]:
    """The task's figures in the runner's shape (accuracy figures for a classifier); the raw outputs go
    to reference.outputs.npy and a classifier's per-sample predictions to reference.json."""
    import io

    import edgecompress
    from edgecompress.evaluation import keras_scores
    from edgecompress.run_folder import write_atomically
    from edgecompress.tasks import task_named
    from edgecompress.tasks.scoring import truth_from_eval

    prepared = ctx.prepared
    task = task_named(prepared.dataset.task)
    with np.load(ensure_eval_npz(ctx), allow_pickle=False) as archive:
        truth, x = truth_from_eval(archive, task), np.asarray(archive["x"])
    same = len(x) == len(prepared.dataset.x_test)
    outputs = prepared.reference_scores if same else keras_scores(prepared.loaded.model, x)
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(outputs, dtype=np.float32), allow_pickle=False)
    write_atomically(ctx.folder.sub(LAYOUT.reference_outputs), buffer.getvalue())
    summary = _figures(ctx, task, outputs, truth)
    summary["runtime"] = f"tf-keras {_tf_keras_version()} on the host (edgecompress {edgecompress.__version__})"
    return summary


def _figures(ctx: RunContext, task: Any, outputs: np.ndarray, truth: Any) -> dict[str, Any]:
    from edgecompress.evaluation import predictions_from_scores, tally

    if task.labels == "classes":
        predicted = predictions_from_scores(outputs, ctx.prepared.loaded.output_kind)
        summary = tally(predicted, truth.targets, truth.class_names)
        ctx.folder.write_json(
            LAYOUT.reference, {"predictions": summary.pop("predictions"), "y": truth.targets.tolist()}
        )
        return summary
    ctx.folder.write_json(LAYOUT.reference, {"outputs_file": LAYOUT.reference_outputs})
    if task.score is None or (truth.targets is None and task.labels != "binary"):
        return {"n": len(outputs), "overall": None}
    scored = task.score(outputs, truth, ctx.prepared.loaded.facts)
    return {"n": len(outputs), "overall": None, "metric": scored.value, "metrics": scored.summary}


def _tf_keras_version() -> str:
    import importlib.metadata as md

    try:
        return md.version("tf-keras")
    except md.PackageNotFoundError:  # pragma: no cover - a dependency
        return "?"
