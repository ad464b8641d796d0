"""Under which rules a report is judged: the last verdict's, the profile's, and overrides on top.

A deploy judges under the profile's `acceptance` block plus its command-line overrides; the
rules are then recorded in report.json's verdict. `edgecompress report RUN` re-renders under
those same rules, and `report RUN --max-accuracy-drop 0.5` re-judges under new ones without
measuring again (the source line says which). A report from before verdicts existed (schema
3 or older) is judged under its profile's rules, or the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgecompress.decision.rules import options_text, resolve, source_of
from edgecompress.profiles import Acceptance

REJUDGED = "; re-judged with "


@dataclass(frozen=True)
class Judging:
    """Overrides of single rules (Acceptance field -> value), where they come from, and other seeds' reports."""

    overrides: dict[str, Any] = field(default_factory=dict)
    where: str = "the command line"
    seed_reports: tuple[dict[str, Any], ...] = ()


def rules_for(report: dict[str, Any], judging: Judging | None) -> tuple[Acceptance, str, dict[str, Any]]:
    """The rules to judge `report` under, a line saying where they came from, and the run's own rules.

    The run's own rules are those its deploy was judged under (kept in the verdict as
    `run_rules`); every re-judge starts from them, so overrides never pile up.
    """
    earlier = report.get("verdict") if isinstance(report.get("verdict"), dict) else None
    profile = report.get("profile") or {}
    own = (earlier or {}).get("run_rules") or {}
    if isinstance(own.get("rules"), dict):
        base, source = own["rules"], own.get("source") or f"profile {profile.get('name')}"
    else:
        base = profile.get("acceptance") if isinstance(profile.get("acceptance"), dict) else None
        source = f"profile {profile.get('name')}" + ("" if base else " (default rules)")
    overrides = dict(judging.overrides) if judging else {}
    if overrides and not own:  # a deploy: the command line sets the run's own rules
        rules = resolve(base, overrides, where=judging.where if judging else "report.json")
        source = source_of(str(profile.get("name")), overrides)
        return rules, source, {"rules": rules.model_dump(mode="json"), "source": source}
    run_rules = resolve(base, {}, where="report.json")
    run_own = {"rules": run_rules.model_dump(mode="json"), "source": source}
    if not overrides:
        return run_rules, source, run_own
    rules = resolve(base, overrides, where=judging.where if judging else "report.json")
    return rules, f"{source}{REJUDGED}{options_text(overrides)}", run_own


def judge_report(report: dict[str, Any], files: Any, judging: Judging | None = None) -> dict[str, Any]:
    """The verdict section of a completed report."""
    from edgecompress.decision.verdict import decide

    rules, source, own = rules_for(report, judging)
    verdict = decide(report, files, rules, source=source, seed_reports=list(judging.seed_reports) if judging else None)
    return {**verdict, "run_rules": own}
