"""The acceptance rules as data: each one reads a figure of the evidence and says pass or fail, with it.

The order of `RULES` is the order a verdict reports failures in ("the first rule it
failed"): size budget, the task's figure (accuracy, MAE, ROC AUC), the worst class,
impacted classes, SQNR, agreement, latency, memory. A rule whose limit is not set, or that
the task does not have (per-class rules outside classification), is skipped; a rule whose
figure was not measured fails, because an unmeasured figure cannot honestly pass. The
task's own limits (its default drop, fidelity mode's SQNR and agreement) come from the task
(tasks/registry.py).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from edgecompress.decision.evidence import Evidence
from edgecompress.profiles import Acceptance


@dataclass(frozen=True)
class Check:
    """One rule against one artifact on one target."""

    rule: str
    title: str
    passed: bool
    text: str  # the figure and the limit, e.g. "accuracy drop 1.40 pt > 1 pt allowed (significant, McNemar p = 0.003)"
    value: float | None = None
    limit: float | None = None
    option: str | None = None  # the command-line option that sets the limit
    looser: float | None = None  # the limit that would have let this figure pass
    at_least: bool = False  # the limit is a floor (SQNR, agreement), not a ceiling

    @property
    def excess(self) -> float:
        """How far past its limit the figure is, relative to the limit (inf when not measured)."""
        if self.passed:
            return 0.0
        if self.value is None or self.limit is None:
            return math.inf
        over = self.limit - self.value if self.at_least else self.value - self.limit
        return over / abs(self.limit) if self.limit else abs(over)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "excess": None if math.isinf(self.excess) else round(self.excess, 4)}


@dataclass(frozen=True)
class Rule:
    name: str
    title: str
    judge: Callable[[Evidence, Acceptance], Check | None]
    advice: str  # what to try next when the rule is what stands in the way


def _ceil(value: float, digits: int = 2) -> float:
    scale = 10**digits
    return math.ceil(value * scale - 1e-9) / scale


def _ceil_significant(value: float, digits: int = 3) -> float:
    """The smallest number with `digits` significant figures that is >= value: a ceiling that passes it."""
    if value <= 0:
        return value
    step = 10 ** (math.floor(math.log10(value)) - digits + 1)
    return round(math.ceil(value / step - 1e-9) * step, 12)


def _budget(ev: Evidence, rules: Acceptance) -> Check:
    failed = [check for check in ev.budget if check.fits is not True]
    if not failed:
        return Check("budget", "size budget", True, "; ".join(check.sentence() for check in ev.budget))
    first = failed[0]
    text = (
        first.sentence() if first.value is not None else f"{first.sentence()} (no TFLite Micro build of {ev.artifact})"
    )
    return Check("budget", "size budget", False, text, first.value, first.limit.bytes)


def accuracy_words(ev: Evidence) -> str:
    """'significant, McNemar p = 0.003' / 'within noise, McNemar p = 0.42 on 2000 images' / 'not tested'."""
    if ev.task != "classification":
        return metric_words(ev)
    test = ev.paired
    if test is None:
        return "not tested: no per-sample predictions"
    if test.significant:
        return f"significant, McNemar p = {test.p_value:.2g}"
    return f"within noise, McNemar p = {test.p_value:.2g} on {test.n:,} images"


def metric_words(ev: Evidence) -> str:
    """The paired test of the task's figure in words, its interval in the figure's change units."""
    from edgecompress.tasks import task_named

    metric = task_named(ev.task).metric
    if ev.metric_test is None:
        return "not tested: no per-sample outputs"
    scale, unit = (metric.change_scale, f" {metric.change_unit}" if metric.change_unit else "") if metric else (1, "")
    return ev.metric_test.words(scale, unit)


def _metric(ev: Evidence, rules: Acceptance) -> Check | None:
    """The task's figure against the baseline's: accuracy (classification), MAE (regression), ROC AUC (anomaly)."""
    from edgecompress.tasks import task_named

    task = task_named(ev.task)
    if task.metric is None or ev.judged_on_outputs:
        return None  # judged on fidelity alone: no labels to compute the figure with
    if task.labels == "classes":
        return _accuracy(ev, rules)
    metric = task.metric
    title = f"{metric.title} {metric.worse_word}"
    limit: float | None = rules.max_metric_drop
    source = "--max-metric-drop"
    if limit is None:
        assert task.drop_limit is not None
        limit, source = task.drop_limit.limit(rules, ev.baseline_metric)
    drop = ev.metric_drop
    if drop is None or limit is None:
        return Check("metric_drop", title, False, f"{metric.title} not measured", None, limit, "--max-metric-drop")
    unit = f" {metric.change_unit}" if metric.change_unit else ""
    worse = metric.worse_word if drop >= 0 else ("gain" if metric.higher_is_better else "fall")
    passed = drop <= limit
    origin = "" if source == "--max-metric-drop" else f", {source}"
    text = (
        f"{metric.title} {worse} {abs(drop):.4g}{unit} {'<=' if passed else '>'} {limit:.4g}{unit} allowed{origin} "
        f"({metric_words(ev)})"
    )
    return Check(
        "metric_drop",
        title,
        passed,
        text,
        drop,
        limit,
        "--max-metric-drop",
        None if passed else _ceil_significant(drop),
    )


def _accuracy(ev: Evidence, rules: Acceptance) -> Check:
    limit = rules.max_metric_drop if rules.max_metric_drop is not None else rules.max_accuracy_drop_points
    option = "--max-metric-drop" if rules.max_metric_drop is not None else "--max-accuracy-drop"
    drop = ev.accuracy_drop_points
    if drop is None:
        return Check("accuracy_drop", "accuracy drop", False, "accuracy not measured", None, limit, option)
    shown = f"accuracy {'drop' if drop >= 0 else 'gain'} {abs(drop):.2f} pt"
    passed = drop <= limit
    text = f"{shown} {'<=' if passed else '>'} {limit:g} pt allowed ({accuracy_words(ev)})"
    return Check("accuracy_drop", "accuracy drop", passed, text, drop, limit, option, None if passed else _ceil(drop))


def _fidelity_limit(ev: Evidence, rules: Acceptance, field: str) -> tuple[float | None, str]:
    """The rule's limit: set on the command line or in the profile, else fidelity mode's default."""
    from edgecompress.tasks import task_named

    value = getattr(rules, field)
    if value is not None:
        return value, ""
    task = task_named(ev.task)
    defaults = task.rule_defaults or (task_named("fidelity").rule_defaults if ev.judged_on_outputs else {})
    return defaults.get(field), " (fidelity mode's default)"


def _sqnr(ev: Evidence, rules: Acceptance) -> Check | None:
    limit, origin = _fidelity_limit(ev, rules, "min_sqnr_db")
    if limit is None:
        return None
    if ev.fidelity.get("identical"):
        return Check(
            "min_sqnr", "SQNR", True, "outputs identical to the baseline's", None, limit, "--min-sqnr-db", at_least=True
        )
    value = ev.fidelity.get("sqnr_db")
    if value is None:
        return Check(
            "min_sqnr", "SQNR", False, "SQNR not measured (no raw outputs)", None, limit, "--min-sqnr-db", at_least=True
        )
    passed = value >= limit
    text = f"SQNR {value:.1f} dB {'>=' if passed else '<'} {limit:g} dB required{origin}"
    looser = None if passed else math.floor(value * 10) / 10
    return Check("min_sqnr", "SQNR", passed, text, value, limit, "--min-sqnr-db", looser, at_least=True)


def _agreement(ev: Evidence, rules: Acceptance) -> Check | None:
    limit, origin = _fidelity_limit(ev, rules, "min_agreement")
    value = ev.fidelity.get("agreement")
    if limit is None or (value is None and origin and not ev.fidelity.get("identical")):
        return None  # a default rule for score vectors the model does not have
    if ev.fidelity.get("identical"):
        return Check(
            "min_agreement",
            "top-1 agreement",
            True,
            "outputs identical to the baseline's",
            1.0,
            limit,
            "--min-agreement",
            at_least=True,
        )
    if value is None:
        return Check(
            "min_agreement", "top-1 agreement", False, "agreement not measured (no score-vector outputs)", None, limit,
            "--min-agreement", at_least=True,
        )  # fmt: skip
    passed = value >= limit
    text = f"top-1 agreement {value:.2%} {'>=' if passed else '<'} {limit:.2%} required{origin}"
    looser = None if passed else math.floor(value * 1000) / 1000
    return Check(
        "min_agreement", "top-1 agreement", passed, text, value, limit, "--min-agreement", looser, at_least=True
    )


def _class_drop(ev: Evidence, rules: Acceptance) -> Check | None:
    limit, drop = rules.max_class_drop_points, ev.class_drop_points
    if limit is None or ev.task != "classification":
        return None
    if drop is None:
        return Check(
            "class_drop", "class recall drop", False, "per-class recall not measured", None, limit, "--max-class-drop"
        )
    passed = drop <= limit
    worst = f"class {ev.worst_class} lost {drop:.2f} pt" if ev.worst_class and drop > 0 else "no class lost recall"
    text = f"{worst} ({'<=' if passed else '>'} {limit:g} pt allowed)"
    return Check(
        "class_drop",
        "class recall drop",
        passed,
        text,
        drop,
        limit,
        "--max-class-drop",
        None if passed else _ceil(drop),
    )


def impacted_words(impacted: dict[str, Any]) -> str:
    """'2 impacted classes (cat -7.5 pt, dog +6.0 pt; sigma rule, threshold 3.1 pt)'; over seeds, a test decides:
    '1 significantly impacted class (dog -5.2 pt; Welch's t-test over 3 seeds, false discovery rate 0.05)'."""
    count = impacted.get("count")
    if count is None:
        return "impacted classes not computed"
    names = ", ".join(f"{c['name']} {c['recall_change_points']:+.1f} pt" for c in impacted.get("classes", [])[:4])
    welch = impacted.get("rule") == "welch"
    how = (
        f"Welch's t-test over {impacted.get('seeds')} seeds, false discovery rate {impacted.get('alpha', 0.05):g}"
        if welch
        else f"sigma rule, threshold {impacted.get('threshold_points') or 0:.2f} pt"
    )
    kind = "significantly impacted" if welch else "impacted"  # the sigma rule is a threshold, not a test
    return f"{count} {kind} {'class' if count == 1 else 'classes'}" + (f" ({names}; {how})" if names else f" ({how})")


def _impacted(ev: Evidence, rules: Acceptance) -> Check | None:
    limit = rules.max_impacted_classes
    if limit is None or ev.task != "classification":
        return None
    count = ev.impacted.get("count")
    if count is None:
        return Check(
            "impacted_classes",
            "impacted classes",
            False,
            "impacted classes not computed",
            None,
            limit,
            "--max-impacted-classes",
        )
    passed = count <= limit
    text = f"{impacted_words(ev.impacted)} {'<=' if passed else '>'} {limit} allowed"
    return Check(
        "impacted_classes",
        "impacted classes",
        passed,
        text,
        count,
        limit,
        "--max-impacted-classes",
        None if passed else count,
    )


def _latency(ev: Evidence, rules: Acceptance) -> Check | None:
    limit = rules.max_latency_ms
    if limit is None:
        return None
    statistic = rules.latency_statistic
    value = ev.latency.get(statistic)
    if value is None:
        return Check(
            "latency", "latency ceiling", False, f"{statistic} latency not measured", None, limit, "--max-latency-ms"
        )
    passed = value <= limit
    interval = ev.interval
    shown = (
        f" (median 95% interval {interval.low:.3g}-{interval.high:.3g} ms)"
        if interval and statistic == "median"
        else ""
    )
    text = f"{statistic} latency {value:.3g} ms {'<=' if passed else '>'} {limit:g} ms allowed{shown}"
    return Check(
        "latency",
        "latency ceiling",
        passed,
        text,
        value,
        limit,
        "--max-latency-ms",
        None if passed else _ceil_significant(value),
    )


def _memory(ev: Evidence, rules: Acceptance) -> Check | None:
    limit = rules.max_peak_memory_bytes
    if limit is None:
        return None
    value = ev.peak_memory_bytes
    if value is None:
        return Check("peak_memory", "peak memory", False, "peak memory not measured", None, limit, "--max-peak-memory")
    passed = value <= limit
    text = f"peak memory {value:,} bytes {'<=' if passed else '>'} {limit:,} allowed"
    return Check(
        "peak_memory", "peak memory", passed, text, value, limit, "--max-peak-memory", None if passed else value
    )


RULES: tuple[Rule, ...] = (
    Rule(
        "budget",
        "size budget",
        _budget,
        "compress harder: a more aggressive recipe (--recipe cqat-binary or mixed-precision) or fewer clusters "
        "(compression.clusters in the profile); or a profile with a larger budget",
    ),
    Rule(
        "accuracy_drop",
        "accuracy drop",
        _metric,
        "keep more accuracy: more clusters (compression.clusters), more fine-tuning (--epochs), a milder recipe "
        "(--recipe ptq-int8 or cqat), or a looser rule",
    ),
    Rule(
        "class_drop",
        "class recall drop",
        _class_drop,
        "protect the hurt class: more clusters, more fine-tuning (--epochs) with enough images of that class, a milder "
        "recipe, or a looser rule",
    ),
    Rule(
        "impacted_classes",
        "impacted classes",
        _impacted,
        "a milder recipe or more clusters; with one seed the sigma rule is strict on small evaluation sets, so measure "
        "more images (--max-eval) or several seeds, or loosen the rule",
    ),
    Rule(
        "min_sqnr",
        "SQNR",
        _sqnr,
        "keep the outputs closer to the fp32 model's: a milder recipe (--recipe ptq-int8, or int16x8 activations), "
        "more clusters, more fine-tuning (--epochs), or a lower --min-sqnr-db",
    ),
    Rule(
        "min_agreement",
        "top-1 agreement",
        _agreement,
        "keep the decisions of the fp32 model: a milder recipe, more clusters, more fine-tuning, or a lower --min-agreement",
    ),
    Rule(
        "latency",
        "latency ceiling",
        _latency,
        "a faster artifact (an int8 recipe such as --recipe ptq-int8, or fewer MACs), more threads (--threads), a faster "
        "board, or a looser ceiling",
    ),
    Rule(
        "peak_memory",
        "peak memory",
        _memory,
        "a smaller artifact (int8 or a more aggressive recipe), or a looser ceiling",
    ),
)
RULES_BY_NAME = {rule.name: rule for rule in RULES}
#: the task's figure is judged by the accuracy rule's slot: a regression's or anomaly detector's check names itself so
RULES_BY_NAME["metric_drop"] = dataclasses.replace(
    RULES_BY_NAME["accuracy_drop"],
    name="metric_drop",
    title="task figure",
    advice="keep the task's figure: more clusters (compression.clusters), more fine-tuning (--epochs), a milder "
    "recipe (--recipe ptq-int8 or cqat), or a looser --max-metric-drop",
)


def rules_text(rules: Acceptance, task_name: str = "classification", judged_on_outputs: bool = False) -> list[str]:
    """One phrase per rule active for the task, as the verdict prints them (the profile's wording for a classifier)."""
    from edgecompress.tasks import task_named

    task = task_named(task_name)
    if task.name == "classification" and not judged_on_outputs:
        return rules.describe()
    lines = []
    metric = task.metric
    if metric is not None and not judged_on_outputs:
        unit = f" {metric.change_unit}" if metric.change_unit else ""
        if rules.max_metric_drop is not None:
            allowed = f"{rules.max_metric_drop:g}{unit}"
        elif task.drop_limit is not None and task.drop_limit.relative is not None:
            allowed = f"{task.drop_limit.relative:.0%} of the baseline's {metric.title}"
        else:
            allowed = f"{task.drop_limit.points if task.drop_limit else 0:g}{unit}"
        lines.append(f"{metric.title} {metric.worse_word} <= {allowed}")
    for field, shown in (("min_sqnr_db", "SQNR >= {:g} dB"), ("min_agreement", "top-1 agreement >= {:.0%}")):
        limit, _ = _fidelity_limit(Evidence.placeholder(task.name, judged_on_outputs), rules, field)
        if limit is not None:
            lines.append(shown.format(limit) + (" (score vectors)" if field == "min_agreement" else ""))
    lines += [
        line for line in rules.describe()[1:] if "class" not in line and "SQNR" not in line and "agreement" not in line
    ]
    return lines


def judge(ev: Evidence, rules: Acceptance) -> list[Check]:
    """Every active rule against one artifact on one target, in `RULES` order."""
    return [check for rule in RULES if (check := rule.judge(ev, rules)) is not None]
