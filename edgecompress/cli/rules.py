"""The acceptance-rule options `deploy`, `report` and `tune` share, declared once (`with_rule_options`).

Every option left out keeps the profile's rule (profiles.Acceptance); the names map to
fields through decision.rules.OPTIONS, so the verdict can say which options set its rules.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional, TypeVar, get_args

import typer

from edgecompress.cli.options import RULES, choice, plain
from edgecompress.decision.rules import OPTIONS
from edgecompress.profiles import LatencyStatistic as _LatencyStatistic
from edgecompress.profiles import Preference as _Preference

_FIELD = {option: field for option, field in OPTIONS.items()}

if TYPE_CHECKING:  # what mypy sees; typer sees the choices
    LatencyStatistic = str
    Preference = str
else:
    LatencyStatistic = choice("LatencyStatistic", get_args(_LatencyStatistic))
    Preference = choice("Preference", get_args(_Preference))

MAX_ACCURACY_DROP: Optional[float] = typer.Option(
    None,
    "--max-accuracy-drop",
    help="Largest overall accuracy loss against the baseline, in points.",
    show_default="the profile's, 1.0",
    rich_help_panel=RULES,
)
MAX_CLASS_DROP: Optional[float] = typer.Option(
    None,
    "--max-class-drop",
    help="Largest recall loss of any single class, in points.",
    show_default="the profile's, 5.0",
    rich_help_panel=RULES,
)
MAX_IMPACTED: Optional[int] = typer.Option(
    None,
    "--max-impacted-classes",
    help="Most impacted classes (sigma rule; with several seeds Welch's t-test with false discovery rate control).",
    show_default="reported, not checked",
    rich_help_panel=RULES,
)
MAX_LATENCY: Optional[float] = typer.Option(
    None,
    "--max-latency-ms",
    help="Latency ceiling per inference in ms, on --latency-statistic.",
    show_default="none",
    rich_help_panel=RULES,
)
LATENCY_STATISTIC: Optional[Any] = typer.Option(
    None,
    "--latency-statistic",
    help="What --max-latency-ms applies to, of the timed runs.",
    show_default="median",
    rich_help_panel=RULES,
)
MAX_MEMORY: Optional[str] = typer.Option(
    None,
    "--max-peak-memory",
    help="Ceiling on peak resident memory while the model runs, e.g. 64MiB.",
    show_default="none",
    rich_help_panel=RULES,
)
PREFER: Optional[Any] = typer.Option(
    None,
    "--prefer",
    help="Among passing artifacts recommend the smallest (size), fastest (latency) or most accurate (accuracy).",
    show_default="the profile's, size",
    rich_help_panel=RULES,
)
SIZE_TOLERANCE: Optional[float] = typer.Option(
    None,
    "--size-tolerance",
    help="When choosing among passing artifacts, sizes within this percentage of each other count as equally small, "
    "so the next figure decides.",
    show_default="the profile's, 5",
    rich_help_panel=RULES,
)
LATENCY_TOLERANCE: Optional[float] = typer.Option(
    None,
    "--latency-tolerance",
    help="When choosing among passing artifacts, latencies within this many times the board's measured timing noise "
    "count as equally fast.",
    show_default="the profile's, 3",
    rich_help_panel=RULES,
)
ALLOW_BASELINE: bool = typer.Option(
    False,
    "--allow-baseline",
    help="The uncompressed baseline may be recommended when it passes.",
    rich_help_panel=RULES,
)
ALPHA: Optional[float] = typer.Option(
    None,
    "--alpha",
    help="Significance level of McNemar's and Welch's tests.",
    show_default="the profile's, 0.05",
    rich_help_panel=RULES,
)
GATE: bool = typer.Option(
    False,
    "--gate",
    help="Exit with code 10 (not the generic 2) when no artifact passes the acceptance rules; the message names the rule.",
    rich_help_panel=RULES,
)


#: (parameter, type, option) of every acceptance-rule option, in the order --help lists them
PARAMETERS: tuple[tuple[str, Any, Any], ...] = (
    ("max_accuracy_drop", Optional[float], MAX_ACCURACY_DROP),
    ("max_class_drop", Optional[float], MAX_CLASS_DROP),
    ("max_impacted_classes", Optional[int], MAX_IMPACTED),
    ("max_latency_ms", Optional[float], MAX_LATENCY),
    ("latency_statistic", Optional[LatencyStatistic], LATENCY_STATISTIC),
    ("max_peak_memory", Optional[str], MAX_MEMORY),
    ("prefer", Optional[Preference], PREFER),
    ("size_tolerance", Optional[float], SIZE_TOLERANCE),
    ("latency_tolerance", Optional[float], LATENCY_TOLERANCE),
    ("allow_baseline", bool, ALLOW_BASELINE),
    ("alpha", Optional[float], ALPHA),
    ("gate", bool, GATE),
)

Command = TypeVar("Command", bound=Callable[..., Any])


def with_rule_options(after: str) -> Callable[[Command], Command]:
    """A command that takes every acceptance-rule option, listed after its parameter `after`.

    The command declares `**rules` and receives them there; typer reads a command's options from
    its signature, so the rule options are put into it here rather than repeated in every command.
    """

    def add(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)  # typer reads a set __signature__ as it is
        own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        at = [p.name for p in own].index(after) + 1
        rules = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
                 for name, kind, option in PARAMETERS]  # fmt: skip
        keyword = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own[at:]]
        setattr(command, "__signature__", signature.replace(parameters=own[:at] + rules + keyword))  # noqa: B010
        return command

    return add


def overrides(options: dict[str, Any]) -> dict[str, Any]:
    """Acceptance field -> value for every rule option given on the command line."""
    options = plain(options)
    given = {
        "--max-accuracy-drop": options.get("max_accuracy_drop"),
        "--max-class-drop": options.get("max_class_drop"),
        "--max-impacted-classes": options.get("max_impacted_classes"),
        "--max-latency-ms": options.get("max_latency_ms"),
        "--latency-statistic": options.get("latency_statistic"),
        "--max-peak-memory": options.get("max_peak_memory"),
        "--prefer": options.get("prefer"),
        "--size-tolerance": options.get("size_tolerance"),
        "--latency-tolerance": options.get("latency_tolerance"),
        "--allow-baseline": options.get("allow_baseline") or None,
        "--alpha": options.get("alpha"),
    }
    return {_FIELD[option]: value for option, value in given.items() if value is not None}
