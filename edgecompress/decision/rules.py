"""Acceptance rules: what an artifact must show, measured, before edgecompress recommends it.

The rules are data. Every profile carries an `acceptance:` block (`profiles.Acceptance`, its
defaults documented in profiles/README.md); `deploy` and `report` override single fields from the command line
(`--max-accuracy-drop 1.0`); the rules a verdict used are written into report.json with it.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from edgecompress.errors import EdgeCompressError
from edgecompress.profiles import Acceptance

__all__ = ["OPTIONS", "TIE_BREAK", "Acceptance", "RulesError", "options_text", "resolve", "source_of"]

#: the order preferences break ties in: the preferred figure first, then the others
TIE_BREAK: dict[str, tuple[str, ...]] = {
    "size": ("size", "latency", "accuracy"),
    "latency": ("latency", "size", "accuracy"),
    "accuracy": ("accuracy", "size", "latency"),
}

#: command-line option -> Acceptance field; `deploy` and `report` share these names
OPTIONS: dict[str, str] = {
    "--max-accuracy-drop": "max_accuracy_drop_points",
    "--max-class-drop": "max_class_drop_points",
    "--max-impacted-classes": "max_impacted_classes",
    "--max-latency-ms": "max_latency_ms",
    "--latency-statistic": "latency_statistic",
    "--max-peak-memory": "max_peak_memory_bytes",
    "--prefer": "prefer",
    "--size-tolerance": "size_tolerance_percent",
    "--latency-tolerance": "latency_tolerance",
    "--allow-baseline": "allow_baseline",
    "--alpha": "alpha",
}
_OPTION_OF = {field: option for option, field in OPTIONS.items()}


class RulesError(EdgeCompressError):
    """Acceptance rules that contradict themselves or cannot be met by any figure."""


def resolve(
    base: Acceptance | dict[str, Any] | None, overrides: dict[str, Any] | None, *, where: str = "the command line"
) -> Acceptance:
    """`base` (a profile's block, or defaults) with `overrides` applied; impossible rules are refused
    with the option that set them."""
    start = base.model_dump() if isinstance(base, Acceptance) else dict(base or {})
    changes = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(changes) - set(Acceptance.model_fields))
    if unknown:
        raise RulesError(
            f"Unknown acceptance rule(s) {', '.join(unknown)}.", f"Known rules: {', '.join(Acceptance.model_fields)}."
        )
    try:
        return Acceptance.model_validate({**start, **changes})
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = str(item["loc"][0]) if item["loc"] else "?"
            shown = _OPTION_OF.get(field, field) if field in changes else f"acceptance.{field}"
            problems.append(f"{shown} {item.get('input')!r}: {item['msg']}")
        raise RulesError(
            f"Impossible acceptance rules from {where}: " + "; ".join(problems) + ".",
            "Drops are points between 0 and 100, ceilings are positive, --prefer is size, latency or accuracy, "
            "--latency-statistic is median or p90, --alpha lies between 0 and 0.5, --size-tolerance is a percentage "
            "below 100 and --latency-tolerance a multiple of the timing noise (0 or more).",
        ) from None


def options_text(overrides: dict[str, Any] | None) -> str:
    """'--max-accuracy-drop 0.5 --prefer latency': overrides as the options that set them."""
    shown = []
    for key, value in (overrides or {}).items():
        if value is None or value is False:
            continue
        option = _OPTION_OF.get(key, key)
        shown.append(option if value is True else f"{option} {value}")
    return " ".join(shown)


def source_of(profile_name: str, overrides: dict[str, Any] | None) -> str:
    """'profile rpi4, with --max-accuracy-drop 0.5': where the rules of a verdict came from."""
    given = options_text(overrides)
    return f"profile {profile_name}" + (f", with {given}" if given else "")
