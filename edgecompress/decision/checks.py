"""The acceptance rules as data: each one reads a figure of the evidence and says pass or fail, with it.

The order of `RULES` is the order a verdict reports failures in ("the first rule it
failed"): size budget, accuracy, the worst class, impacted classes, latency, memory.
A rule whose limit is not set is skipped; a rule whose figure was not measured fails,
because an unmeasured figure cannot honestly pass.
"""

from __future__ import annotations

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

    @property
    def excess(self) -> float:
        """How far over its limit the figure is, relative to the limit (inf when not measured)."""
        if self.passed:
            return 0.0
        if self.value is None or self.limit is None:
            return math.inf
        return (self.value - self.limit) / self.limit if self.limit else self.value

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
    test = ev.paired
    if test is None:
        return "not tested: no per-sample predictions"
    if test.significant:
        return f"significant, McNemar p = {test.p_value:.2g}"
    return f"within noise, McNemar p = {test.p_value:.2g} on {test.n:,} images"


def _accuracy(ev: Evidence, rules: Acceptance) -> Check:
    limit, drop = rules.max_accuracy_drop_points, ev.accuracy_drop_points
    if drop is None:
        return Check(
            "accuracy_drop", "accuracy drop", False, "accuracy not measured", None, limit, "--max-accuracy-drop"
        )
    shown = f"accuracy {'drop' if drop >= 0 else 'gain'} {abs(drop):.2f} pt"
    passed = drop <= limit
    text = f"{shown} {'<=' if passed else '>'} {limit:g} pt allowed ({accuracy_words(ev)})"
    return Check(
        "accuracy_drop",
        "accuracy drop",
        passed,
        text,
        drop,
        limit,
        "--max-accuracy-drop",
        None if passed else _ceil(drop),
    )


def _class_drop(ev: Evidence, rules: Acceptance) -> Check | None:
    limit, drop = rules.max_class_drop_points, ev.class_drop_points
    if limit is None:
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
    if limit is None:
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
        _accuracy,
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


def judge(ev: Evidence, rules: Acceptance) -> list[Check]:
    """Every active rule against one artifact on one target, in `RULES` order."""
    return [check for rule in RULES if (check := rule.judge(ev, rules)) is not None]
