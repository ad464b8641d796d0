"""Which task a run is: `--task` when given, else read off the model's outputs and the labels.

The rules, first match wins (each decision is stated with the evidence in the plan, deploy.log
and the report):

1. no labels anywhere (an .npz with only x, a folder of unlabelled images or .npy files):
   fidelity -- the artifacts are judged against the fp32 model's own outputs;
2. class labels (class folders, label strings, `class_names`, one-hot rows): classification;
3. 0/1 labels with the anomaly-detection layout (training samples all normal: y_train all 0
   or absent; test labels both 0 and 1), or 0/1 labels for a model whose output has the
   input's shape (an autoencoder): anomaly;
4. whole-number labels that index the model's single score vector: classification;
5. labels of the model's output size: regression;
6. anything else is refused, saying what the labels and the outputs are and naming --task.

A task given with --task is still checked against the model (`check_fits`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from edgecompress.errors import DataError
from edgecompress.tasks.outputs import ModelFacts
from edgecompress.tasks.registry import TASKS


@dataclass(frozen=True)
class LabelFacts:
    """What the data's labels look like, read before any label is interpreted."""

    given: Literal["classes", "numbers", "none"]
    sample_shape: tuple[int, ...] = ()  # () for one label per sample, (k,) for k targets per sample
    integral: bool = False
    binary: bool = False  # every value is 0 or 1
    anomaly_layout: bool = False  # training labels all 0 or absent, test labels both 0 and 1
    minimum: float | None = None
    maximum: float | None = None

    @property
    def size(self) -> int:
        size = 1
        for d in self.sample_shape:
            size *= d
        return size

    def describe(self) -> str:
        if self.given == "none":
            return "no labels"
        if self.given == "classes":
            return "class labels"
        kind = "whole numbers" if self.integral else "non-integer numbers"
        shape = (
            "one per sample"
            if not self.sample_shape
            else f"{self.size} per sample"
            + (f" (shape {list(self.sample_shape)})" if len(self.sample_shape) > 1 else "")
        )
        shown = (
            f" from {self.minimum:g} to {self.maximum:g}"
            if self.minimum is not None and self.maximum is not None
            else ""
        )
        return f"labels that are {kind}{shown}, {shape}"


@dataclass(frozen=True)
class TaskDecision:
    task: str
    how: str  # 'option' | 'data'
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "decided_by": self.how, "reason": self.reason}

    def line(self) -> str:
        return f"Task {self.task} ({self.reason})"


def decide_task(requested: str | None, facts: ModelFacts, labels: LabelFacts) -> TaskDecision:
    """The run's task and why; raises DataError when none fits (or the requested one does not)."""
    if requested is not None:
        if requested not in TASKS:
            raise DataError(f"Unknown task {requested!r}.", f"Use --task {' | '.join(TASKS)}.")
        check_fits(requested, facts, labels)
        return TaskDecision(requested, "option", f"--task {requested}")
    task, reason = _inferred(facts, labels)
    check_fits(task, facts, labels)
    return TaskDecision(task, "data", reason)


def _inferred(facts: ModelFacts, labels: LabelFacts) -> tuple[str, str]:
    model = f"the model has {facts.describe()}"
    seen = f"{labels.describe()}; {model}"  # the evidence, after the reason (one level of brackets when shown)
    if labels.given == "none":
        return "fidelity", f"the data has no labels, so artifacts are judged against the fp32 model's outputs; {model}"
    if labels.given == "classes":
        return "classification", f"the data has class labels; {model}"
    scalar = labels.sample_shape in ((), (1,))
    if scalar and labels.binary and (labels.anomaly_layout or facts.reconstructs_input):
        why = (
            "training samples are all normal (0) and the test labels are 0 and 1"
            if labels.anomaly_layout
            else "the labels are 0/1 and the model reconstructs its input"
        )
        return "anomaly", f"{why}: {seen}"
    classes = facts.class_scores
    if (
        scalar
        and labels.integral
        and classes is not None
        and labels.minimum is not None
        and labels.maximum is not None
        and labels.minimum >= 0
        and labels.maximum < classes
    ):
        return "classification", f"the whole-number labels index the model's {classes} class scores: {seen}"
    if labels.size == facts.output_size and facts.single is not None:
        return "regression", f"the labels have the model's output size ({facts.output_size} per sample): {seen}"
    raise DataError(
        f"edgecompress cannot tell what task this is: the data has {seen}. The labels are neither class indices "
        "of the model's score vector, nor 0/1 anomaly labels, nor targets of the model's output size.",
        "Say it with --task classification | regression | anomaly | fidelity (fidelity needs no labels: the "
        "artifacts are judged by how close their outputs stay to the fp32 model's).",
    )


def check_fits(task: str, facts: ModelFacts, labels: LabelFacts) -> None:
    """Refuse, in one paragraph, a task the model or the labels cannot serve."""
    problem, fix = _misfit(task, facts, labels)
    if problem:
        raise DataError(f"--task {task} does not fit: {problem}", fix)


def _misfit(task: str, facts: ModelFacts, labels: LabelFacts) -> tuple[str, str]:
    shown = facts.describe()
    if task == "classification":
        if facts.class_scores is None:
            return f"a classifier outputs one vector of class scores, but the model has {shown}.", _OTHER_TASK
        if labels.given == "none":
            return "classification needs labels, and the data has none.", _LABELS_FIX
        if labels.given == "numbers" and not (labels.integral and labels.sample_shape in ((), (1,))):
            return f"the data has {labels.describe()}, not class indices.", _LABELS_FIX
    if task == "regression":
        if labels.given != "numbers":
            return f"regression needs numeric targets, and the data has {labels.describe()}.", _TARGETS_FIX
        if facts.single is None or labels.size != facts.output_size:
            return (
                f"the targets hold {labels.size} value(s) per sample but the model has {shown} "
                f"({facts.output_size} value(s) per sample).",
                _TARGETS_FIX,
            )
    if task == "anomaly":
        single = facts.single
        if single is None or not (facts.reconstructs_input or single.size == 1):
            return (
                f"an anomaly detector either reconstructs its input (output shape = input shape) or outputs one "
                f"score, but the model has {shown}.",
                _OTHER_TASK,
            )
        if labels.given != "none" and not labels.binary:
            return f"anomaly labels must be 0 (normal) or 1 (anomalous), but the data has {labels.describe()}.", (
                "Save y_test with 0 for normal and 1 for anomalous samples (y_train may be left out: training "
                "samples are taken as normal)."
            )
    return "", ""


_OTHER_TASK = "Pick the task the model was built for with --task, or --task fidelity to judge any outputs against the fp32 model's."
_LABELS_FIX = "Give class labels (class folders, or y of class indices 0..k-1 in the model's output order), or use --task fidelity."
_TARGETS_FIX = (
    "Save y with one row of targets per sample, shaped like the model's output (e.g. (N,) or (N, 1) for one "
    "output), or use --task fidelity."
)
