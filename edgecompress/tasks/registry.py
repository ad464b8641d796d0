"""The tasks edgecompress judges a model on, each declared once as data and looked up by name.

A task says how labels are read, which figure measures the model (its unit, which way is
better, how a loss of it is limited by default), which paired statistic tells a real change
from noise, how the model is fine-tuned, and which columns the report shows. Nothing
elsewhere branches on a task's name: it asks the task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from edgecompress.errors import DataError
from edgecompress.tasks import metrics, paired, sanity
from edgecompress.tasks.outputs import ModelFacts

LabelKind = Literal["classes", "targets", "binary", "none"]
#: how fine-tuning learns: from class labels, from float targets, by reconstructing the input, or from the fp32 model
LossKind = Literal["labels", "targets", "reconstruction", "distill"]


@dataclass(frozen=True)
class Metric:
    """The figure a task is judged by and how its changes read."""

    key: str  # the name in report.json, e.g. 'accuracy', 'mae', 'auc'
    title: str  # 'accuracy', 'MAE', 'ROC AUC'
    higher_is_better: bool
    shown: Literal["percent", "number"]  # shares are shown as %, other figures as plain numbers
    change_scale: float  # a change of the figure x this = the change in `change_unit`
    change_unit: str  # 'pt' (points of a share) or '' (the target's own units)
    worse_word: str  # 'drop' / 'rise': what a loss of this figure is called

    def drop(self, reference: float | None, candidate: float | None) -> float | None:
        """How much worse `candidate` is, in change units (negative: better)."""
        if reference is None or candidate is None:
            return None
        change = (candidate - reference) * self.change_scale
        return round(-change if self.higher_is_better else change, 6)

    def delta(self, reference: float | None, candidate: float | None) -> float | None:
        """candidate - reference in change units, as the report's Δ column shows it."""
        return None if reference is None or candidate is None else round((candidate - reference) * self.change_scale, 6)

    def text(self, value: float) -> str:
        """The figure as sentences quote it: a share with four decimals (1.0000, not '1'), else 4 digits."""
        return f"{value:.4f}" if self.shown == "percent" else f"{value:.4g}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "higher_is_better": self.higher_is_better,
            "change_unit": self.change_unit,
        }


@dataclass(frozen=True)
class Column:
    """One figure a report's table shows for this task (a field of a report.json comparison row)."""

    key: str
    title: str
    shown: Literal["percent", "points", "figure", "fraction", "signed", "decibels"]
    help: str
    higher_is_better: bool | None = None  # colour the value as a change when set
    terminal: bool = True  # also in the table printed at the end of deploy


@dataclass(frozen=True)
class DropLimit:
    """The default for --max-metric-drop when neither the command line nor the profile sets it."""

    points: float | None = None  # a fixed limit in change units
    relative: float | None = None  # a share of the baseline's own figure
    acceptance_field: str | None = None  # or an existing acceptance rule (classification: --max-accuracy-drop)

    def limit(self, rules: Any, baseline: float | None) -> tuple[float | None, str]:
        """(limit, where it comes from) for this task under `rules` (profiles.Acceptance)."""
        if self.acceptance_field is not None:
            return getattr(rules, self.acceptance_field), "--max-accuracy-drop"
        if self.relative is not None:
            if baseline is None:
                return None, "no baseline figure"
            return round(
                abs(baseline) * self.relative, 6
            ), f"task default: {self.relative:.0%} of the baseline's figure"
        return self.points, "task default"


@dataclass(frozen=True)
class Truth:
    """What the host knows of the evaluation samples, in eval order."""

    targets: np.ndarray | None  # class indices, float targets or 0/1 anomaly labels; None without labels
    inputs: np.ndarray | None  # the eval inputs (an autoencoder is scored against them)
    class_names: list[str] = field(default_factory=list)


Scorer = Callable[[np.ndarray, Truth, ModelFacts], metrics.Scored]
Pairer = Callable[[metrics.Scored, metrics.Scored, Truth, float], "paired.PairedTest | None"]
#: (scored, targets, inputs) -> the figure in points that picks the input scaling (higher is better)
Points = Callable[[metrics.Scored, "np.ndarray | None", "np.ndarray | None"], "float | None"]
#: (scored, targets, number of classes) -> why the baseline is useless on this data, or None
Floor = Callable[[metrics.Scored, "np.ndarray | None", int], "str | None"]


@dataclass(frozen=True)
class Task:
    name: str
    summary: str
    labels: LabelKind
    metric: Metric | None  # None: judged only on fidelity to the baseline (SQNR, agreement)
    score: Scorer | None
    pair: Pairer | None
    drop_limit: DropLimit | None
    loss: LossKind
    stratified: bool  # splits and subsamples keep the shares of the label values
    per_class: bool  # per-class recall, impacted classes and disagreement sections apply
    rule_defaults: dict[str, float] = field(default_factory=dict)  # fidelity rules this task always checks
    test_name: str = ""
    test_words: str = "their paired test"  # the test that can or cannot tell two candidates apart, in a sentence
    points: Points | None = None
    floor: Floor | None = None
    floor_fix: str = ""
    columns: tuple[
        Column, ...
    ] = ()  # the task's figure and its change in the headline table (the rest: its own section)
    extra_figures: tuple[str, ...] = ()  # summary figures copied into each comparison row besides `metric`

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "labels": self.labels,
            "metric": self.metric.to_dict() if self.metric else None,
            "paired_test": self.test_name or None,
            "loss": self.loss,
        }


def _classification(outputs: np.ndarray, truth: Truth, facts: ModelFacts) -> metrics.Scored:
    if truth.targets is None:
        raise ValueError("classification needs labels")
    return metrics.classification(outputs, truth.targets, facts, truth.class_names)


def _regression(outputs: np.ndarray, truth: Truth, facts: ModelFacts) -> metrics.Scored:
    if truth.targets is None:
        raise ValueError("regression needs targets")
    return metrics.regression(outputs, truth.targets, facts)


def _anomaly(outputs: np.ndarray, truth: Truth, facts: ModelFacts) -> metrics.Scored:
    return metrics.anomaly(outputs, truth.targets, truth.inputs if truth.inputs is not None else outputs, facts)


def _pair_correct(a: metrics.Scored, b: metrics.Scored, truth: Truth, alpha: float) -> paired.PairedTest | None:
    return None if a.per_sample is None or b.per_sample is None else paired.mcnemar(a.per_sample, b.per_sample, alpha)


def _pair_errors(a: metrics.Scored, b: metrics.Scored, truth: Truth, alpha: float) -> paired.PairedTest | None:
    if a.per_sample is None or b.per_sample is None:
        return None
    return paired.wilcoxon_mae(a.per_sample, b.per_sample, alpha)


def _pair_auc(a: metrics.Scored, b: metrics.Scored, truth: Truth, alpha: float) -> paired.PairedTest | None:
    if a.per_sample is None or b.per_sample is None or truth.targets is None or a.value is None:
        return None
    return paired.bootstrap_auc(a.per_sample, b.per_sample, truth.targets, alpha)


ACCURACY = Metric("accuracy", "accuracy", True, "percent", 100.0, "pt", "drop")
MAE = Metric("mae", "MAE", False, "number", 1.0, "", "rise")
AUC = Metric("auc", "ROC AUC", True, "percent", 100.0, "pt", "drop")

TASKS: dict[str, Task] = {
    "classification": Task(
        "classification",
        "class labels; top-1 accuracy, McNemar's test, per-class recall",
        "classes",
        ACCURACY,
        _classification,
        _pair_correct,
        DropLimit(acceptance_field="max_accuracy_drop_points"),
        "labels",
        stratified=True,
        per_class=True,
        test_name="McNemar exact (paired, same samples)",
        test_words="McNemar's test",
        points=sanity.accuracy_points,
        floor=sanity.chance_problem,
        floor_fix="Check that the data is what the model was trained on, that --classes lists the classes in the "
        "model's output order, and the input scaling (--scaling 0-1, 0-255 or -1-1).",
        columns=(
            Column("accuracy", "accuracy", "percent", "top-1 accuracy on the evaluation set, measured on the device"),
            Column(
                "accuracy_delta_points", "Δ accuracy", "points", "accuracy change against the baseline, in points", True
            ),
        ),
    ),
    "regression": Task(
        "regression",
        "float targets of any shape; MAE, RMSE and R² per output, Wilcoxon signed-rank on the absolute errors",
        "targets",
        MAE,
        _regression,
        _pair_errors,
        DropLimit(relative=0.05),
        "targets",
        stratified=False,
        per_class=False,
        test_name="Wilcoxon signed-rank on per-sample absolute errors, with a paired bootstrap interval of the MAE change",
        test_words="Wilcoxon's signed-rank test on their absolute errors",
        points=sanity.mae_points,
        floor=sanity.mean_problem,
        floor_fix="Check that the targets are the ones the model was trained on (same units and order) and the "
        "input scaling (--scaling).",
        columns=(
            Column("metric", "MAE", "figure", "mean absolute error over every output, from the device's outputs"),
            Column("metric_delta", "Δ MAE", "signed", "MAE change against the baseline, in the targets' units", False),
        ),
        extra_figures=("rmse", "r2"),
    ),
    "anomaly": Task(
        "anomaly",
        "reconstruction error (output shape = input shape) or the model's own score; ROC AUC and partial AUC "
        "(max FPR 0.1) when labels 0 normal / 1 anomalous are given, paired bootstrap of the AUC change",
        "binary",
        AUC,
        _anomaly,
        _pair_auc,
        DropLimit(points=1.0),
        "reconstruction",
        stratified=True,
        per_class=False,
        test_name="paired bootstrap of the ROC AUC change, stratified by label",
        test_words="the paired bootstrap of their ROC AUCs",
        points=sanity.anomaly_points,
        floor=sanity.auc_problem,
        floor_fix="Check the labels (0 normal, 1 anomalous), that the data is what the model was trained on, and "
        "the input scaling (--scaling).",
        columns=(
            Column("metric", "ROC AUC", "fraction", "ROC AUC of the anomaly scores from the device's outputs"),
            Column(
                "metric_delta", "Δ AUC", "points", "ROC AUC change against the baseline, in points (0.01 = 1 pt)", True
            ),
        ),
        extra_figures=("pauc",),
    ),
    "fidelity": Task(
        "fidelity",
        "no labels: each artifact is judged by how close its outputs stay to the fp32 model's "
        "(SQNR, cosine similarity, max abs error, top-1 agreement of score vectors)",
        "none",
        None,
        None,
        None,
        None,
        "distill",
        stratified=False,
        per_class=False,
        rule_defaults={"min_sqnr_db": 20.0, "min_agreement": 0.95},
        columns=(
            Column(
                "sqnr_db",
                "SQNR",
                "decibels",
                "signal-to-quantization-noise ratio of the outputs against the baseline's, worst output",
            ),
            Column(
                "agreement", "agreement", "percent", "top-1 agreement with the baseline on score vectors, worst output"
            ),
        ),
    ),
}
TASK_NAMES = tuple(TASKS)


def task_named(name: str) -> Task:
    if name not in TASKS:
        raise DataError(f"Unknown task {name!r}.", f"Use --task {' | '.join(TASKS)}.")
    return TASKS[name]
