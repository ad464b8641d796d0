"""The figures a verdict reads, per (artifact, target): from report.json and the run folder's files.

report.json holds the point figures (sizes, median latency, accuracy, per-class recall);
the files next to it hold what the statistics need: per-sample predictions (McNemar) and
raw latency samples (bootstrap). A folder that lost them still gets a verdict on the point
figures, and the verdict says which statistics it could not compute.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from edgecompress.budget import Budget, LimitCheck, Resources, artifact_resources
from edgecompress.decision import statistics as stats
from edgecompress.decision.timing import TimedInRounds
from edgecompress.profiles import Acceptance


@dataclass
class Evidence:
    """Everything measured about one artifact on one target, and its comparison with the baseline."""

    artifact: str
    target: str
    row: dict[str, Any]  # the comparison row of report.json
    resources: Resources
    budget: list[LimitCheck]
    size_bytes: int | None  # the figure the storage budget limits (file on Linux, flash on microcontrollers)
    accuracy: float | None
    accuracy_drop_points: float | None  # positive = a loss
    paired: stats.PairedAccuracy | None  # McNemar against the baseline on the same images
    correct: np.ndarray | None  # per-sample correctness (for tests between candidates)
    class_drop_points: float | None
    worst_class: str | None
    impacted: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, float | None] = field(default_factory=dict)
    interval: stats.Interval | None = None
    timing: TimedInRounds | None = None  # timed in interleaved rounds (None: a run from before them)
    speed: stats.SpeedComparison | None = None
    peak_memory_bytes: int | None = None
    macs: dict[str, Any] | None = None
    instructions: float | None = None  # per inference on an emulated board (firmware): a count, not a time
    task: str = "classification"
    judged_on_outputs: bool = False  # no labels to judge the task's figure: fidelity rules apply (tasks registry)
    metric: float | None = None  # the task's figure (accuracy share, MAE, ROC AUC)
    baseline_metric: float | None = None
    metric_drop: float | None = None  # in the figure's change units, positive = a loss
    metric_test: Any = None  # tasks.paired.PairedTest against the baseline on the same samples
    fidelity: dict[str, Any] = field(default_factory=dict)  # sqnr_db, agreement, cosine, max_abs_error, identical
    scored: Any = None  # tasks.metrics.Scored: per-sample figures for tests between candidates
    truth: Any = None  # tasks.Truth of the eval samples (an anomaly test resamples by their labels)

    @classmethod
    def placeholder(cls, task: str, judged_on_outputs: bool = False) -> Evidence:
        """Evidence with nothing measured: what a rule's limit for `task` is read from."""
        return cls("", "", {}, artifact_resources({}), [], None, None, None, None, None, None, None,
                   task=task, judged_on_outputs=judged_on_outputs)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The statistics shown beside the rules in report.json."""
        return {
            "task": self.task,
            "metric": self.metric,
            "baseline_metric": self.baseline_metric,
            "metric_drop": self.metric_drop,
            "metric_test": self.metric_test.to_dict() if self.metric_test is not None else None,
            "fidelity": self.fidelity or None,
            "size_bytes": self.size_bytes,
            "accuracy": self.accuracy,
            "accuracy_drop_points": self.accuracy_drop_points,
            "accuracy_test": self.paired.to_dict() if self.paired else None,
            "largest_class_drop_points": self.class_drop_points,
            "worst_class": self.worst_class,
            "impacted_classes": self.impacted,
            "latency_ms": self.latency,
            "latency_interval": self.interval.to_dict() if self.interval else None,
            "timing_noise": self.timing.noise.to_dict() if self.timing and self.timing.noise else None,
            "speed_vs_baseline": self.speed.to_dict() if self.speed else None,
            "peak_memory_bytes": self.peak_memory_bytes,
            "macs": self.macs,
            "instructions_median": self.instructions,
        }


def budget_of(profile: dict[str, Any]) -> Budget:
    """The profile's Budget from report.json's profile section (older reports need not validate as a Profile)."""
    return Budget.of(
        SimpleNamespace(
            device_class=profile.get("device_class"),
            flash_budget_bytes=profile.get("flash_budget_bytes") or 0,
            model_flash_budget_bytes=profile.get("model_flash_budget_bytes"),
            model_memory_budget_bytes=profile.get("model_memory_budget_bytes") or 0,
        )
    )


def gather(
    report: dict[str, Any], files: Any, rules: Acceptance, seed_reports: list[dict[str, Any]] | None = None
) -> tuple[dict[tuple[str, str], Evidence], list[str]]:
    """Evidence for every measured (artifact, target), and notes on statistics that could not be computed."""
    notes: list[str] = []
    budget = budget_of(report["profile"])
    artifacts = {a["name"]: a for a in report["artifacts"]}
    baseline = report["baseline"]
    labels = files.eval_labels() if files is not None else None
    measured = {(m["artifact"], m["target"]): m for m in report["measurements"]}
    timed = _timed(measured, files)
    intervals = {key: _interval(m, files, timed.get(key)) for key, m in measured.items()}
    _latency_notes(measured, intervals, timed, notes)
    correct = _correctness(artifacts, measured, files, labels)
    classifier = ((report.get("task") or {}).get("name") or "classification") == "classification"
    if classifier and (labels is None or any(value is None for value in correct.values())):
        notes.append(
            "per-sample predictions or eval.npz missing: accuracy changes are not tested for significance where they are absent"
        )
    impact = _impact(report, rules, seed_reports, notes)
    notes += [
        f"On {m['target']} the baseline's accuracy is {m['reference_for'].get('what')}."
        for m in report["measurements"]
        if m["artifact"] == baseline and isinstance(m.get("reference_for"), dict)
    ]
    task_figures = _TaskFigures.of(report, files, rules)
    found = {}
    for row in report["comparison"]:
        key = (row["artifact"], row["target"])
        found[key] = _evidence(row, artifacts[row["artifact"]], budget, report, correct, intervals, impact, rules)
        ev = found[key]
        ev.timing = timed.get(key)
        base_correct = correct.get((baseline, row["target"]))
        if ev.correct is not None and base_correct is not None and row["artifact"] != baseline:
            ev.paired = stats.mcnemar_exact(base_correct, ev.correct, alpha=rules.alpha)
        if row["artifact"] != baseline and ev.instructions is None:  # firmware counts instructions, not time
            ev.speed = _speed(ev, timed.get((baseline, row["target"])), intervals, baseline)
        task_figures.fill(ev, report)
    return found, notes


@dataclass
class _TaskFigures:
    """The task's figure of every artifact, its paired test against the baseline, and fidelity to it."""

    task: Any
    scores: dict[tuple[str, str], Any]
    truth: Any
    alpha: float
    labelled: bool

    @classmethod
    def of(cls, report: dict[str, Any], files: Any, rules: Acceptance) -> _TaskFigures:
        from edgecompress.tasks.scoring import score_all, task_of

        task = task_of(report)
        scores = score_all(report, files) if files is not None else {}
        truth = files.truth(task) if files is not None and scores else None
        labelled = bool((report.get("data") or {}).get("labelled", True)) and task.labels != "none"
        return cls(task, scores, truth, rules.alpha, labelled)

    def fill(self, ev: Evidence, report: dict[str, Any]) -> None:
        baseline = report["baseline"]
        base_row = next(
            (r for r in report["comparison"] if r["artifact"] == baseline and r["target"] == ev.target), None
        )
        ev.task, ev.judged_on_outputs = self.task.name, not self.labelled
        ev.fidelity = {k: ev.row.get(k) for k in ("sqnr_db", "agreement", "cosine", "max_abs_error", "identical")}
        if self.task.metric is None or not self.labelled:
            return
        ev.metric = ev.row.get("metric")
        ev.baseline_metric = base_row.get("metric") if base_row is not None else None
        ev.metric_drop = self.task.metric.drop(ev.baseline_metric, ev.metric)
        ev.scored, ev.truth = self.scores.get((ev.artifact, ev.target)), self.truth
        reference = self.scores.get((baseline, ev.target))
        if ev.artifact != baseline and ev.scored is not None and reference is not None and self.task.pair:
            ev.metric_test = self.task.pair(reference, ev.scored, self.truth, self.alpha)


def _timed(measured: dict[tuple[str, str], Any], files: Any) -> dict[tuple[str, str], TimedInRounds | None]:
    """Per (artifact, target): its rounds, its run's baseline rounds and the board's noise floor (computed once)."""
    found: dict[tuple[str, str], TimedInRounds | None] = {}
    for target in dict.fromkeys(target for _, target in measured):
        timing = files.board_timing(target) if files is not None else None
        noise = timing.noise() if timing is not None else None
        for name, board in measured:
            if board == target:
                found[(name, target)] = timing.timed(name, noise) if timing is not None else None
    return found


def _interval(measurement: dict[str, Any], files: Any, timed: TimedInRounds | None) -> stats.Interval | None:
    if timed is not None:
        return stats.rounds_interval(timed.rounds)
    return stats.median_interval(files.latency_samples(measurement) or []) if files is not None else None


def _latency_notes(
    measured: dict[tuple[str, str], Any],
    intervals: dict[tuple[str, str], stats.Interval | None],
    timed: dict[tuple[str, str], TimedInRounds | None],
    notes: list[str],
) -> None:
    if any(value is None for value in intervals.values()):
        notes.append(
            "latency samples missing for some measurements: their speed is compared on medians alone, without an interval"
        )
    single = [key for key, m in measured.items() if timed.get(key) is None and (m.get("latency_ms") or {}).get("runs")]
    if single:
        notes.append(
            "some latencies were timed in one block, not in interleaved rounds (a run from an older edgecompress): "
            "their intervals treat every run as an independent draw and miss drift, so they may be over-confident"
        )


def _speed(
    ev: Evidence,
    base: TimedInRounds | None,
    intervals: dict[tuple[str, str], stats.Interval | None],
    baseline: str,
) -> stats.SpeedComparison:
    """Against the baseline: paired round by round when both were timed in the same rounds, else by intervals."""
    if ev.timing is not None and base is not None and ev.timing.run == base.run:
        return stats.compare_in_rounds(
            stats.paired_ratio(ev.timing.rounds, base.rounds), ev.timing.noise, reference_name=baseline
        )
    return stats.compare_speed(ev.interval, intervals.get((baseline, ev.target)), reference_name=baseline)


def _evidence(
    row: dict[str, Any],
    artifact: dict[str, Any],
    budget: Budget,
    report: dict[str, Any],
    correct: dict[tuple[str, str], np.ndarray | None],
    intervals: dict[tuple[str, str], stats.Interval | None],
    impact: dict[tuple[str, str], dict[str, Any]],
    rules: Acceptance,
) -> Evidence:
    key = (row["artifact"], row["target"])
    resources = _resources(artifact, report.get("micro"))
    delta = row.get("accuracy_delta_points")
    summary = impact.get(key, {})
    return Evidence(
        artifact=row["artifact"],
        target=row["target"],
        row=row,
        resources=resources,
        budget=budget.checks(resources),
        size_bytes=resources.get(budget.storage.measure),
        accuracy=row.get("accuracy"),
        accuracy_drop_points=None if delta is None else round(-delta, 4),
        paired=None,
        correct=correct.get(key),
        class_drop_points=summary.get("largest_drop_points"),
        worst_class=summary.get("worst_class"),
        impacted=summary.get("impacted") or {},
        latency={"median": row.get("latency_median_ms"), "p90": row.get("latency_p90_ms")},
        interval=intervals.get(key),
        peak_memory_bytes=row.get("peak_rss_bytes"),
        macs=_macs(artifact, report),
        instructions=row.get("instructions_median"),
    )


def _resources(artifact: dict[str, Any], micro: dict[str, Any] | None) -> Resources:
    """Sizes of the file; on a microcontroller, flash and RAM of the linked firmware: the firmware
    artifact's own, or for a .tflite measured on a board, those of the firmware built from it."""
    flash = ram = None
    name = artifact["name"]
    build = next(
        (
            f
            for f in (micro or {}).get("firmwares", [])
            if name in (f.get("firmware_artifact"), f.get("source")) and f.get("fits")
        ),
        None,
    )
    model_flash = None
    if build is not None:
        flash, ram = build["fits"].get("flash_needed_bytes"), build["fits"].get("ram_needed_bytes")
        model_flash = (build.get("flash_bytes") or {}).get("model_in_elf")
    resources = artifact_resources(artifact, flash_bytes=flash, model_flash_bytes=model_flash)
    return dataclasses.replace(resources, ram_bytes=ram) if ram is not None else resources


def _correctness(
    artifacts: dict[str, Any],
    measured: dict[tuple[str, str], Any],
    files: Any,
    labels: tuple[np.ndarray, list[str]] | None,
) -> dict[tuple[str, str], np.ndarray | None]:
    found: dict[tuple[str, str], np.ndarray | None] = {}
    for name, target in measured:
        predictions = files.predictions(artifacts[name], target) if files is not None and labels is not None else None
        if predictions is not None and labels is not None and len(predictions) == len(labels[0]):
            found[(name, target)] = stats.correct_mask(predictions, labels[0])
        else:
            found[(name, target)] = None
    return found


def _macs(artifact: dict[str, Any], report: dict[str, Any]) -> dict[str, Any] | None:
    """Total multiply-accumulates and the theoretical speed-up over the baseline (baseline MACs / these)."""
    own = artifact.get("macs")
    total = own.get("total") if isinstance(own, dict) else own if isinstance(own, int) else None
    if total is None:
        return None
    base = next((a.get("macs") for a in report["artifacts"] if a["name"] == report["baseline"]), None)
    base_total = base.get("total") if isinstance(base, dict) else base if isinstance(base, int) else None
    return {
        "total": int(total),
        "theoretical_speedup_x": round(base_total / total, 3) if base_total and total else None,
    }


def _impact(
    report: dict[str, Any], rules: Acceptance, seed_reports: list[dict[str, Any]] | None, notes: list[str]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (artifact, target): the largest class drop and the impacted classes (sigma rule, or Welch over seeds)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for block in report.get("per_class") or []:
        found[(block["baseline"], block["target"])] = {  # the baseline against itself: nothing moved
            "largest_drop_points": 0.0,
            "worst_class": None,
            "impacted": {"rule": "sigma", "threshold_points": block.get("sigma_points"), "count": 0, "classes": []},
        }
        for name, summary in block["compressed"].items():
            hurt = summary.get("hurt_most") or []
            found[(name, block["target"])] = {
                "largest_drop_points": summary.get(
                    "largest_drop_points", -hurt[0]["recall_change_points"] if hurt else 0.0
                ),
                "worst_class": hurt[0]["name"] if hurt else None,
                "impacted": summary.get("impacted") or {"rule": "sigma", "count": None, "classes": []},
            }
    if seed_reports:
        for key, impacted in impacted_over_seeds([report, *seed_reports], rules.alpha).items():
            if key in found:
                found[key]["impacted"] = impacted
        notes.append(
            f"impacted classes from Welch's t-test over {len(seed_reports) + 1} seeds, the false discovery rate "
            f"controlled over the classes (Benjamini-Hochberg at {rules.alpha:g})"
        )
    return found


def impacted_over_seeds(reports: list[dict[str, Any]], alpha: float) -> dict[tuple[str, str], dict[str, Any]]:
    """Welch's t-test per class over the runs' (seeds') recalls, artifact against baseline, per target.

    One test per class is many tests: at alpha 0.05, one class in twenty would look impacted by
    chance alone. So the p-values of an artifact's classes are adjusted together to control the
    false discovery rate (Benjamini-Hochberg, scipy.stats.false_discovery_control) and a class
    counts when its adjusted p-value is below alpha.
    """
    recalls = _recalls_by_seed(reports)
    names = {
        row["index"]: row["name"] for report in reports for b in report.get("per_class") or [] for row in b["classes"]
    }
    baseline = reports[0]["baseline"]
    found = {}
    for (artifact, target), per_class in recalls.items():
        base = recalls.get((baseline, target))
        if artifact == baseline or base is None:
            continue
        tests = {index: stats.welch(base.get(index, []), values, alpha=alpha) for index, values in per_class.items()}
        adjusted = stats.false_discovery({index: t.p_value for index, t in tests.items() if t.p_value is not None})
        classes = [
            {
                "index": index,
                "name": names[index],
                "recall_change_points": round(float(np.mean(per_class[index]) - np.mean(base[index])), 4),
                "p_value": tests[index].p_value,
                "q_value": q,
            }
            for index, q in sorted(adjusted.items())
            if q < alpha
        ]
        found[(artifact, target)] = {
            "rule": "welch",
            "seeds": len(reports),
            "alpha": alpha,
            "fdr": "benjamini-hochberg",
            "classes_tested": len(adjusted),
            "count": len(classes),
            "classes": classes,
        }
    return found


def _recalls_by_seed(reports: list[dict[str, Any]]) -> dict[tuple[str, str], dict[int, list[float]]]:
    """(artifact, target) -> class index -> recall in points, one per run (seed)."""
    recalls: dict[tuple[str, str], dict[int, list[float]]] = {}
    for report in reports:
        for block in report.get("per_class") or []:
            for row in block["classes"]:
                for artifact, value in row["recall"].items():
                    if value is not None:
                        recalls.setdefault((artifact, block["target"]), {}).setdefault(row["index"], []).append(
                            100 * value
                        )
    return recalls
