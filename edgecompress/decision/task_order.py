"""How candidates compare on the task's own figure when the task is not classification.

A classifier's candidates are compared by McNemar's test on the same images (decision.preference);
every other task has its own paired test between two candidates on the same samples (tasks
registry: Task.pair -- Wilcoxon on the absolute errors, the label-stratified AUC bootstrap), and
without labels (fidelity mode) SQNRs within SQNR_TIE_DB of each other are not told apart.
"""

from __future__ import annotations

import math

from edgecompress.decision import statistics as stats
from edgecompress.decision.evidence import Evidence

#: SQNRs closer than this are not told apart (fidelity mode has no paired test)
SQNR_TIE_DB = 1.0


def goodness(ev: Evidence) -> float | None:
    """The task's figure with higher = better: accuracy, ROC AUC, minus the MAE, or the SQNR without labels."""
    from edgecompress.tasks import task_named

    if ev.task == "classification":
        return ev.accuracy
    metric = task_named(ev.task).metric
    if metric is None or ev.judged_on_outputs:
        if ev.fidelity.get("identical"):
            return math.inf
        return ev.fidelity.get("sqnr_db")
    if ev.metric is None:
        return None
    return ev.metric if metric.higher_is_better else -ev.metric


def metric_order(a: Evidence, b: Evidence) -> int:
    """+1 when a is better on the task's figure beyond its paired test's noise, -1 when worse, 0 otherwise."""
    from edgecompress.tasks import task_named

    task = task_named(a.task)
    if task.pair is not None and a.scored is not None and b.scored is not None and not a.judged_on_outputs:
        alpha = a.metric_test.alpha if a.metric_test is not None else stats.ALPHA
        test = task.pair(b.scored, a.scored, a.truth, alpha)
        if test is None or not test.significant:
            return 0
        better_is_up = task.metric is not None and task.metric.higher_is_better
        return 1 if (test.change > 0) == better_is_up else -1
    ga, gb = goodness(a), goodness(b)
    if ga is None or gb is None or (math.isfinite(ga) and math.isfinite(gb) and abs(ga - gb) < SQNR_TIE_DB):
        return 0
    return 1 if ga > gb else -1


def task_figure(evs: list[Evidence]) -> str:
    """'ROC AUC 0.9371' / 'MAE 41.03' / 'SQNR 40.2 dB': the figure a verdict quotes, one per board."""
    from edgecompress.tasks import task_named

    metric = task_named(evs[0].task).metric
    if metric is None or evs[0].judged_on_outputs:
        return "SQNR " + ", ".join(
            "identical" if e.fidelity.get("identical") else f"{e.fidelity.get('sqnr_db') or 0.0:.1f} dB" for e in evs
        )
    return f"{metric.title} " + ", ".join(metric.text(e.metric) for e in evs if e.metric is not None)


def tie_words(ev: Evidence) -> tuple[str, str]:
    """How a tie on the task's figure reads, in the words of the task and its test."""
    from edgecompress.tasks import task_named

    metric = task_named(ev.task).metric
    if metric is None or ev.judged_on_outputs:
        return "as faithful to the baseline as", f"their SQNRs are within {SQNR_TIE_DB:g} dB"
    return f"as good on {metric.title} as", f"{task_named(ev.task).test_words} cannot tell them apart"
