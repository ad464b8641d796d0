"""What a tune optimises, read off a trial's finished report: measured figures only.

Each trial is a normal run folder whose report.json holds the verdict with, per artifact
and target, the evidence the acceptance rules read (decision/evidence.py). A trial's figures
are those of its *candidate* (the artifact its plan made), over every board it was measured
on: the worst board counts (lowest accuracy, slowest median), as in the fleet verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgecompress.decision.checks import RULES
from edgecompress.errors import EdgeCompressError
from edgecompress.pipeline.artifacts import BASELINE


@dataclass(frozen=True)
class Objective:
    name: str
    direction: str  # 'maximize' | 'minimize' (Optuna's words)
    unit: str
    label: str  # axis label
    read: Callable[
        [list[dict[str, Any]], dict[str, Any]], float | None
    ]  # (evidence per target, artifact entry) -> value
    help: str


def _worst(values: list[Any], pick: Callable[[list[float]], float]) -> float | None:
    return None if not values or any(v is None for v in values) else float(pick(values))


OBJECTIVES: dict[str, Objective] = {
    "accuracy": Objective(
        "accuracy",
        "maximize",
        "%",
        "accuracy on the board (%; other tasks: their figure)",
        lambda evs, a: _task_figure(evs),
        "the task's figure on the evaluation set, worst board, higher is better: accuracy % (classification), "
        "ROC AUC % (anomaly), minus the MAE (regression), SQNR dB against the baseline (fidelity)",
    ),
    "size": Objective(
        "size",
        "minimize",
        "bytes",
        "size (bytes)",
        lambda evs, a: _worst([e.get("size_bytes") for e in evs], max),
        "the figure the profile's storage budget limits: the model file on Linux boards and phones, its flash on microcontrollers",
    ),
    "latency": Objective(
        "latency",
        "minimize",
        "ms",
        "median latency (ms)",
        lambda evs, a: _worst([(e.get("latency_ms") or {}).get("median") for e in evs], max),
        "median batch-1 latency, slowest board",
    ),
    "memory": Objective(
        "memory",
        "minimize",
        "bytes",
        "peak memory (bytes)",
        lambda evs, a: _worst([e.get("peak_memory_bytes") for e in evs], max),
        "peak resident memory of the runner, worst board",
    ),
    "gzip": Objective(
        "gzip",
        "minimize",
        "bytes",
        "gzip size (bytes)",
        lambda evs, a: float(a["gzip_bytes"]) if a.get("gzip_bytes") else None,
        "the model file gzipped (level 9): what a download costs; rewards clustered weights",
    ),
}


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 4)


def _task_figure(evs: list[dict[str, Any]]) -> float | None:
    """The task's figure, oriented so that higher is better, on the worst board (see the objective's help)."""
    from edgecompress.tasks import TASKS

    task = TASKS.get(str((evs[0] if evs else {}).get("task") or "classification"), TASKS["classification"])
    if task.metric is None or any(e.get("metric") is None and e.get("accuracy") is None for e in evs):
        sqnr = [((e.get("fidelity") or {}).get("sqnr_db")) for e in evs]
        return _worst(sqnr, min)
    values = [e.get("metric") if e.get("metric") is not None else e.get("accuracy") for e in evs]
    if task.metric.higher_is_better:
        return _percent(_worst(values, min)) if task.metric.shown == "percent" else _worst(values, min)
    worst = _worst(values, max)
    return None if worst is None else -worst


def parse(names: str | list[str]) -> list[Objective]:
    """'accuracy,size,latency' -> the objectives; unknown or repeated names are refused."""
    listed = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    unknown = [n for n in listed if n not in OBJECTIVES]
    if unknown or not listed or len(set(listed)) != len(listed):
        raise EdgeCompressError(
            f"--objectives {','.join(listed) or '(empty)'}: "
            + (f"unknown {', '.join(unknown)}" if unknown else "each objective once, at least one"),
            f"Choose from {', '.join(OBJECTIVES)}, comma-separated, e.g. --objectives accuracy,size,latency.",
        )
    return [OBJECTIVES[n] for n in listed]


def candidate_name(report: dict[str, Any]) -> str:
    """The artifact a trial's plan made: its strategy's file, or the post-training quantized one when the plan trains nothing."""
    names = [a["name"] for a in report.get("artifacts", [])]
    strategy = (report.get("plan") or {}).get("strategy")
    if strategy in names:
        return str(strategy)
    others = [n for n in names if n != BASELINE and not n.endswith("-onnx")]
    if not others:
        raise EdgeCompressError("The trial's report has no compressed artifact.", "Look at the trial's deploy.log.")
    return others[0]


def verdict_entries(report: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The verdict's entry for artifact `name` on every target."""
    verdict = report.get("verdict") or {}
    return [
        entry
        for target in verdict.get("targets", [])
        for entry in target.get("artifacts", [])
        if entry["artifact"] == name
    ]


def passes(report: dict[str, Any], name: str) -> bool:
    """True when artifact `name` passes every acceptance rule (on every board of a fleet)."""
    verdict = report.get("verdict") or {}
    if verdict.get("fleet"):
        return any(e["artifact"] == name and e["passed"] for e in verdict["fleet"]["artifacts"])
    entries = verdict_entries(report, name)
    return bool(entries) and all(e["passed"] for e in entries)


def figures(report: dict[str, Any], objectives: list[Objective]) -> dict[str, float | None]:
    """Every objective (and every other known figure) of the trial's candidate, from its report."""
    name = candidate_name(report)
    evidence = [entry["evidence"] for entry in verdict_entries(report, name)]
    artifact = next(a for a in report["artifacts"] if a["name"] == name)
    wanted = {o.name: o for o in objectives} | OBJECTIVES
    return {key: objective.read(evidence, artifact) for key, objective in wanted.items()}


def constraints(report: dict[str, Any], name: str) -> list[float]:
    """One number per acceptance rule (decision/checks.py RULES order), <= 0 when the rule passes.

    Optuna's samplers read these to prefer feasible candidates: a failed rule gives how far over
    its limit the figure is (relative), an unmeasured figure 1, an inactive rule 0.
    """
    worst = {rule.name: 0.0 for rule in RULES}
    for entry in verdict_entries(report, name):
        for check in entry.get("checks", []):
            if check["passed"]:
                value = 0.0
            elif check.get("excess") is None or not math.isfinite(float(check["excess"])):
                value = 1.0  # unmeasured, or a figure that is not a number: failed, by an unknown amount
            else:
                value = max(float(check["excess"]), 1e-6)
            slot = "accuracy_drop" if check["rule"] == "metric_drop" else check["rule"]  # the task's figure
            worst[slot] = max(worst.get(slot, 0.0), value)
    return [worst[rule.name] for rule in RULES]


__all__ = ["OBJECTIVES", "Objective", "candidate_name", "constraints", "figures", "parse", "passes", "verdict_entries"]
