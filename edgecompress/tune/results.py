"""What a finished search found: the Pareto front, its figures over seeds, and the one trial to ship.

The shortlist -- the front of the trials that pass the rules, then the rest of the Pareto set
(non-dominated measured trials) -- is re-run with other seeds; each shortlisted trial's run is
then re-judged with its seeds' reports (the decision module's Welch test over seeds for
impacted classes), and its figures are shown as mean +- std. The recommendation is made by the
decision module too: among the shortlisted trials whose run recommends an artifact under the
user's rules, `decision.preference.choose` picks by the rules' preference with the same honest ties
(the rules' size and latency tolerances, McNemar on the same images) as a deploy does; latencies
of different trials are compared through each trial's own baseline, timed in the same rounds.
"""

from __future__ import annotations

import json
import math
import statistics
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecompress.run_layout import LAYOUT
from edgecompress.tune import objectives as objs
from edgecompress.tune.pareto import front_mask
from edgecompress.tune.records import COMPLETE, TrialRecord, TuneFolder

if TYPE_CHECKING:
    from edgecompress.decision.evidence import Evidence
    from edgecompress.profiles import Acceptance


def measured(folder: TuneFolder) -> list[TrialRecord]:
    """The search's trials that were built and measured (duplicates share their original's run)."""
    return [r for r in folder.searched() if r.state == COMPLETE]


def _front(trials: list[TrialRecord], objectives: list[objs.Objective]) -> list[TrialRecord]:
    points = [[r.value(o.name) for o in objectives] for r in trials]
    mask = front_mask(points, [o.direction for o in objectives])
    return [r for r, on in zip(trials, mask) if on]


def pareto(folder: TuneFolder, objectives: list[objs.Objective]) -> list[TrialRecord]:
    """The measured trials no other measured trial beats on every objective."""
    return _front(measured(folder), objectives)


def shortlist(folder: TuneFolder, objectives: list[objs.Objective]) -> list[TrialRecord]:
    """The trials the verdict chooses among: the front of the trials that pass the rules, then the rest of the
    Pareto front. A passing trial beaten only by trials that fail a rule is the best trade-off that can ship,
    so it must not be lost behind them (Optuna's constrained domination reads the rules the same way)."""
    feasible = _front([r for r in measured(folder) if r.passes], objectives)
    names = {r.name for r in feasible}
    return feasible + [r for r in pareto(folder, objectives) if r.name not in names]


def to_rerun(folder: TuneFolder, objectives: list[objs.Objective], limit: int) -> list[str]:
    """The shortlisted trials to re-run with other seeds: those that pass the rules first, at most `limit`."""
    return [r.name for r in shortlist(folder, objectives)[: max(0, limit)]]


def over_seeds(folder: TuneFolder, record: TrialRecord, objectives: list[objs.Objective]) -> dict[str, dict[str, Any]]:
    """Mean, std and n of every figure over the trial and its finished re-runs."""
    runs = [record] + [r for r in folder.reruns_of(record.name) if r.state == COMPLETE]
    found = {}
    for name in dict.fromkeys([o.name for o in objectives] + list(objs.OBJECTIVES)):
        values = [float(v) for r in runs if (v := r.figures.get(name)) is not None]
        if not values:
            continue
        found[name] = {
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values),
            "values": values,
        }
    found["passes"] = {"n": len(runs), "passing": sum(1 for r in runs if r.passes)}
    return found


def _report(run_dir: str | None) -> dict[str, Any] | None:
    if not run_dir:
        return None
    file = Path(run_dir) / LAYOUT.report
    return json.loads(file.read_text()) if file.is_file() else None


def rejudge_with_seeds(folder: TuneFolder, record: TrialRecord) -> dict[str, Any] | None:
    """Re-judge the trial's run with its seeds' reports (Welch over seeds) and rebuild its ship/; returns the report."""
    from edgecompress.decision.judging import Judging
    from edgecompress.reporting import write_all
    from edgecompress.ship import build_bundle

    if not record.run_dir:
        return None
    seed_reports = tuple(
        rep for r in folder.reruns_of(record.name) if r.state == COMPLETE and (rep := _report(r.run_dir))
    )
    if not seed_reports:
        return _report(record.run_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy on per-class recalls that are equal over seeds
        report = write_all(record.run_dir, judging=Judging(seed_reports=seed_reports)).report
    build_bundle(record.run_dir, report)
    return report


def decide(folder: TuneFolder, records: list[TrialRecord], acceptance: dict[str, Any]) -> dict[str, Any]:
    """The tune's verdict: the trial whose run recommends the artifact the rules prefer among `records` (the shortlist)."""
    from edgecompress.decision.judging import rules_for
    from edgecompress.decision.preference import choose

    reports = {r.name: rep for r in records if (rep := _report(r.run_dir))}
    recommending = _recommending(folder, reports)
    if not reports:
        return {
            "recommended_trial": None,
            "passed": False,
            "reason": "No trial was measured, so nothing can be recommended.",
            "next_steps": ["Look at the trials' reasons in the tune report and at their deploy.log files."],
        }
    first = next(iter(reports.values()))
    rules, source, _ = rules_for(first, None)
    head = {"rules_text": rules.describe(), "rules_source": source, "prefer": rules.prefer}
    if not recommending:
        return _none_passes(head, reports)
    evidence, keys, targets = _evidence(folder, recommending, rules)
    quote = _seeded(folder, keys, evidence, targets)
    winner, phrases = choose(list(keys), rules, evidence, targets, quote=quote)
    return _recommended(folder, head, keys[winner], keys, phrases, targets, recommending, quote)


#: criterion -> (objective figure, how it is worded): a trial is quoted by its mean +- std over seeds
SEEDED: dict[str, tuple[str, Callable[[float, float], str]]] = {
    "accuracy": ("accuracy", lambda m, s: f"accuracy {m:.2f} ± {s:.2f}%"),
    "latency": ("latency", lambda m, s: f"median {m:.3g} ± {s:.2g} ms"),
    "size": ("size", lambda m, s: f"{m:,.0f} bytes" if s == 0 else f"{m:,.0f} ± {s:,.0f} bytes"),
}


def _seeded(
    folder: TuneFolder, keys: dict[str, tuple[str, str]], evidence: dict[tuple[str, str], Evidence], targets: list[str]
) -> Callable[[str, str], str]:
    """How a trial's figure is quoted: its mean +- sample std over the seeds it ran with (the search's run and its
    re-runs), not the search seed's figure; an artifact that is not the trial's own candidate, by that run's."""
    from edgecompress.decision.preference import figure

    seeds = {
        key: over_seeds(folder, folder.records[name], [])
        for key, (name, artifact) in keys.items()
        if artifact == folder.records[name].artifact
    }

    def quote(criterion: str, key: str) -> str:
        figure_name, words = SEEDED[criterion]
        found = seeds.get(key, {}).get(figure_name)
        if not found or found["n"] < 2:
            return figure(criterion, key, evidence, targets)
        return f"{words(found['mean'], found['std'])} over {found['n']} seeds"

    return quote


def _recommending(folder: TuneFolder, reports: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The reports that recommend an artifact, a trial's own candidate first (so a shared file is credited to it)."""
    recommending = {name: rep for name, rep in reports.items() if (rep.get("verdict") or {}).get("recommended")}
    # a file several trials contain (the post-training quantized model) is credited to a trial whose candidate it is
    return dict(
        sorted(
            recommending.items(), key=lambda item: item[1]["verdict"]["recommended"] != folder.records[item[0]].artifact
        )
    )


def _none_passes(head: dict[str, Any], reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The verdict when no Pareto trial passes: name the closest one, so the reader knows what to change."""
    closest = min(reports.items(), key=lambda item: _closeness(item[1]))
    verdict = closest[1].get("verdict") or {}
    return {
        **head,
        "recommended_trial": None,
        "passed": False,
        "reason": "No trial of the Pareto front or of the front of passing trials has an artifact that passes "
        f"the rules (re-judged over seeds). Closest: {closest[0]}: {verdict.get('reason', '')}",
        "next_steps": list(verdict.get("next_steps") or []),
        "closest_trial": closest[0],
    }


def _evidence(
    folder: TuneFolder, recommending: dict[str, dict[str, Any]], rules: Acceptance
) -> tuple[dict[tuple[str, str], Evidence], dict[str, tuple[str, str]], list[str]]:
    """Evidence per recommended 'trial/artifact' and target for `choose`; a file several trials hold counts once."""
    from edgecompress.decision.evidence import gather
    from edgecompress.reporting.run_files import RunFiles

    evidence: dict[tuple[str, str], Evidence] = {}
    keys: dict[str, tuple[str, str]] = {}
    targets: list[str] = []
    seen: set[str] = set()
    for name, report in recommending.items():
        artifact = report["verdict"]["recommended"]
        digest = next((a.get("sha256") for a in report["artifacts"] if a["name"] == artifact), None)
        if digest is not None and digest in seen:
            continue  # the same file from an earlier trial (the post-training quantized model is in every trial)
        if digest is not None:
            seen.add(digest)
        found, _ = gather(report, RunFiles(Path(str(folder.records[name].run_dir))), rules)
        key = f"{name}/{artifact}"
        keys[key] = (name, artifact)
        for (art, target), ev in found.items():
            if art == artifact:
                evidence[(key, target)] = ev
                targets.append(target)
    return evidence, keys, list(dict.fromkeys(targets))


def _recommended(
    folder: TuneFolder,
    head: dict[str, Any],
    winner: tuple[str, str],
    keys: dict[str, tuple[str, str]],
    phrases: list[str],
    targets: list[str],
    recommending: dict[str, dict[str, Any]],
    quote: Callable[[str, str], str],
) -> dict[str, Any]:
    """The verdict naming the winning trial and artifact, with the reason it beat the other Pareto trials."""
    name, artifact = winner
    record = folder.records[name]
    own = "its candidate" if artifact == record.artifact else "not its candidate but a file every trial holds"
    passes = (over_seeds(folder, record, []).get("passes") or {}) if artifact == record.artifact else {}
    on_seeds = f" (on {passes['passing']} of {passes['n']} seeds)" if passes.get("n", 0) > 1 else ""
    figures = ", ".join(quote(criterion, f"{name}/{artifact}") for criterion in ("accuracy", "size", "latency"))
    reason = (
        f"{name} ({record.candidate.get('strategy')}; {_knobs(record)}) ships {artifact} ({own}): it passes every rule "
        f"on {', '.join(targets)}{on_seeds}; "
        + ("the only shortlisted trial that does" if len(keys) == 1 else "; ".join(phrases))
        + f"; {figures}."
    )
    return {
        **head,
        "recommended_trial": name,
        "artifact": artifact,
        "run_dir": record.run_dir,
        "passed": True,
        "reason": reason,
        "candidates": [f"{n}/{a}" for n, a in keys.values()],
        "run_reason": recommending[name]["verdict"].get("reason"),
        "next_steps": [],
    }


def _knobs(record: TrialRecord) -> str:
    return ", ".join(f"{k} {v}" for k, v in record.candidate.items() if k != "strategy") or "no knobs"


def _closeness(report: dict[str, Any]) -> float:
    closest = (report.get("verdict") or {}).get("closest") or {}
    excess = closest.get("excess")
    return float(excess) if isinstance(excess, (int, float)) else math.inf


__all__ = ["decide", "measured", "over_seeds", "pareto", "rejudge_with_seeds", "shortlist", "to_rerun"]
