"""A run's task figures, computed on the host from the raw outputs each board sent.

`score_all` scores every measurement (and the Keras reference) with the run's task;
`fidelity_all` holds every measurement's outputs against the baseline's on the same target.
Both read a run folder through a duck-typed `files` object (reporting.run_files.RunFiles:
`outputs(measurement, facts)`, `reference_outputs(facts)`, `truth(task)`), and keep their results on it, so
the report and the verdict compute each figure once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgecompress.tasks.metrics import Scored, fidelity
from edgecompress.tasks.outputs import ModelFacts, OutputSpec
from edgecompress.tasks.registry import TASKS, Task, Truth

Key = tuple[str, str]  # (artifact, target)


def task_of(report: dict[str, Any]) -> Task:
    """The run's task; a report from before tasks existed (schema 4 or older) is a classifier's."""
    name = (report.get("task") or {}).get("name") or "classification"
    return TASKS.get(str(name), TASKS["classification"])


def facts_of(report: dict[str, Any]) -> ModelFacts:
    """The model's facts as report.json records them (older reports: one score vector)."""
    model = report.get("model") or {}
    outputs = model.get("outputs")
    if isinstance(outputs, list) and outputs:
        return ModelFacts(
            tuple(int(d) for d in model.get("input_shape") or ()),
            tuple(
                OutputSpec(str(o.get("name")), tuple(int(d) for d in o.get("shape") or ()), str(o.get("kind")))
                for o in outputs
            ),
        )
    return ModelFacts.classifier(
        tuple(int(d) for d in model.get("input_shape") or ()),
        int(model.get("n_outputs") or 1),
        str(model.get("output_kind") or "softmax"),
    )


def score_all(report: dict[str, Any], files: Any) -> dict[Key, Scored]:
    """The task's figures per (artifact, target) from the raw outputs; ('keras', 'host') for the reference."""
    cached = getattr(files, "_task_scores", None)
    if cached is not None:
        return cached
    task, facts = task_of(report), facts_of(report)
    truth = files.truth(task) if files is not None else None
    found: dict[Key, Scored] = {}
    if task.score is not None and truth is not None and (truth.targets is not None or task.labels == "binary"):
        for measurement in report.get("measurements") or []:
            outputs = files.outputs(measurement, facts)
            if outputs is not None:
                found[(measurement["artifact"], measurement["target"])] = _score(task, outputs, truth, facts)
        reference = files.reference_outputs(facts)
        if reference is not None:
            found[("keras", "host")] = _score(task, reference, truth, facts)
    if files is not None:
        files._task_scores = found
    return found


def _score(task: Task, outputs: np.ndarray, truth: Truth, facts: ModelFacts) -> Scored:
    assert task.score is not None
    return task.score(outputs, truth, facts)


def fidelity_all(report: dict[str, Any], files: Any) -> dict[Key, dict[str, Any]]:
    """Every measurement's outputs against the baseline's on the same target (SQNR, cosine, max error, agreement)."""
    if files is None:
        return {}
    cached = getattr(files, "_fidelity", None)
    if cached is not None:
        return cached
    task, facts = task_of(report), facts_of(report)
    measurements = report.get("measurements") or []
    baselines = {m["target"]: m for m in measurements if m["artifact"] == report.get("baseline")}
    found: dict[Key, dict[str, Any]] = {}
    for measurement in measurements:
        base = baselines.get(measurement["target"])
        outputs = files.outputs(measurement, facts)
        reference = files.outputs(base, facts) if base is not None else None
        if outputs is not None and reference is not None:
            found[(measurement["artifact"], measurement["target"])] = fidelity(
                reference, outputs, facts, scores=task.per_class
            )
    files._fidelity = found
    return found


def truth_from_eval(archive: Any, task: Task) -> Truth:
    """What the host knows of the eval samples, from eval.npz: labels or targets, inputs, class names."""
    files = set(archive.files)
    targets = None
    if task.labels == "classes" and "y" in files:
        targets = np.asarray(archive["y"]).astype(np.int64)
    elif task.labels in ("targets", "binary") and "targets" in files:
        targets = np.asarray(archive["targets"])
    names = [str(c) for c in np.asarray(archive["class_names"]).reshape(-1)] if "class_names" in files else []
    inputs = np.asarray(archive["x"]) if task.labels == "binary" else None  # an autoencoder is scored against them
    return Truth(targets, inputs, names)
