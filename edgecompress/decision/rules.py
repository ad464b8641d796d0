"""Acceptance rules: what an artifact must show, measured, before edgecompress recommends it.

The rules are data. Every profile carries an `acceptance:` block (defaults below, documented
in profiles/README.md); `deploy` and `report` override single fields from the command line
(`--max-accuracy-drop 1.0`); the rules a verdict used are written into report.json with it.

Importing this module must stay cheap (profiles.py imports it): pydantic only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from edgecompress.errors import EdgeCompressError

Preference = Literal["size", "latency", "accuracy"]
LatencyStatistic = Literal["median", "p90"]

#: the order preferences break ties in: the preferred figure first, then the others
TIE_BREAK: dict[str, tuple[str, ...]] = {
    "size": ("size", "latency", "accuracy"),
    "latency": ("latency", "size", "accuracy"),
    "accuracy": ("accuracy", "size", "latency"),
}


def _size_or_none(value: Any) -> Any:
    from edgecompress.profiles import parse_size  # profiles imports this module; parse_size is only needed here

    return None if value is None else parse_size(value)


OptionalSize = Annotated[Union[Annotated[int, Field(ge=1)], None], BeforeValidator(_size_or_none)]


class Acceptance(BaseModel):
    """The rules an artifact must pass to be recommended, and the preference among those that do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_accuracy_drop_points: float = Field(default=1.0, ge=0, le=100, description="largest overall accuracy loss against the baseline, in percentage points")
    max_class_drop_points: Optional[float] = Field(default=5.0, ge=0, le=100, description="largest recall loss of any single class, in points (null: not checked)")
    max_impacted_classes: Optional[int] = Field(default=None, ge=0, description="most classes allowed to be significantly impacted (sigma rule, or Welch over seeds; null: reported, not checked)")
    max_latency_ms: Optional[float] = Field(default=None, gt=0, description="latency ceiling per inference in ms, on `latency_statistic` (null: not checked)")
    latency_statistic: LatencyStatistic = Field(default="median", description="which latency figure the ceiling applies to: median or p90 of the timed batch-1 runs")
    max_peak_memory_bytes: OptionalSize = Field(default=None, description="ceiling on the runner's peak resident memory while the model runs (null: not checked)")
    prefer: Preference = Field(default="size", description="which passing artifact to recommend: the smallest, the fastest or the most accurate")
    allow_baseline: bool = Field(default=False, description="the uncompressed baseline may be recommended when it passes")
    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="significance level of McNemar's and Welch's tests")

    def describe(self) -> list[str]:
        """One phrase per active rule, as the verdict prints them."""
        lines = [f"accuracy drop <= {self.max_accuracy_drop_points:g} pt"]
        if self.max_class_drop_points is not None:
            lines.append(f"any class's recall drop <= {self.max_class_drop_points:g} pt")
        if self.max_impacted_classes is not None:
            lines.append(f"significantly impacted classes <= {self.max_impacted_classes}")
        if self.max_latency_ms is not None:
            lines.append(f"{self.latency_statistic} latency <= {self.max_latency_ms:g} ms")
        if self.max_peak_memory_bytes is not None:
            lines.append(f"peak memory <= {self.max_peak_memory_bytes:,} bytes")
        lines.append("fits the profile's size budget")
        return lines


#: command-line option -> Acceptance field; `deploy` and `report` share these names
OPTIONS: dict[str, str] = {
    "--max-accuracy-drop": "max_accuracy_drop_points",
    "--max-class-drop": "max_class_drop_points",
    "--max-impacted-classes": "max_impacted_classes",
    "--max-latency-ms": "max_latency_ms",
    "--latency-statistic": "latency_statistic",
    "--max-peak-memory": "max_peak_memory_bytes",
    "--prefer": "prefer",
    "--allow-baseline": "allow_baseline",
    "--alpha": "alpha",
}
_OPTION_OF = {field: option for option, field in OPTIONS.items()}


class RulesError(EdgeCompressError):
    """Acceptance rules that contradict themselves or cannot be met by any figure."""


def resolve(base: Acceptance | dict[str, Any] | None, overrides: dict[str, Any] | None, *, where: str = "the command line") -> Acceptance:
    """`base` (a profile's block, or defaults) with `overrides` applied; impossible rules are refused
    with the option that set them."""
    start = base.model_dump() if isinstance(base, Acceptance) else dict(base or {})
    changes = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(changes) - set(Acceptance.model_fields))
    if unknown:
        raise RulesError(f"Unknown acceptance rule(s) {', '.join(unknown)}.", f"Known rules: {', '.join(Acceptance.model_fields)}.")
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
            "--latency-statistic is median or p90, and --alpha lies between 0 and 0.5.",
        ) from None


def source_of(profile_name: str, overrides: dict[str, Any] | None) -> str:
    """'profile rpi4, with --max-accuracy-drop 0.5': where the rules of a verdict came from."""
    given = [f"{_OPTION_OF.get(k, k)} {v}" for k, v in (overrides or {}).items() if v is not None]
    return f"profile {profile_name}" + (f", with {', '.join(given)}" if given else "")
