"""The verdict: which artifact to ship, and why, decided by measurement.

`decide(report, files, rules)` is a pure function of report.json and the run folder's
files (per-sample predictions, latency samples), so `edgecompress report RUN --gate` can
re-judge a run under other rules without measuring again. Per target, every candidate is
held to every rule; across a fleet an artifact must pass on every board. Among those that
pass, the preference picks one (decision.preference), and ties are honest: sizes within the
rules' size tolerance, latencies within the latency tolerance times the board's timing noise,
accuracies McNemar's test cannot tell apart; a tie goes to the next figure (rules.TIE_BREAK).
"""

from __future__ import annotations

import math
from typing import Any

from edgecompress.decision import statistics as stats
from edgecompress.decision.checks import RULES_BY_NAME, Check, accuracy_words, impacted_words, judge
from edgecompress.decision.evidence import Evidence, gather
from edgecompress.decision.preference import better, choose, comparison
from edgecompress.profiles import Acceptance

VERDICT_VERSION = 2


def decide(
    report: dict[str, Any],
    files: Any,
    rules: Acceptance,
    *,
    source: str = "",
    seed_reports: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The verdict document stored as report.json's `verdict` (docs/report-schema.md)."""
    head = _head(report, rules, source, seed_reports)
    if not report.get("measurements"):
        return {
            **head,
            "scope": None,
            "recommended": None,
            "passed": False,
            "targets": [],
            "fleet": None,
            "reason": "Nothing was measured in this run, so nothing can be judged.",
            "next_steps": [
                "Finish the run (`edgecompress deploy --resume RUN`) or deploy again to measure the artifacts."
            ],
            "closest": None,
            "notes": [],
        }
    evidence, notes = gather(report, files, rules, seed_reports)
    targets = list(dict.fromkeys(row["target"] for row in report["comparison"]))
    names = [a["name"] for a in report["artifacts"]]
    candidates = [n for n in names if n != report["baseline"] or rules.allow_baseline]
    per_target = [_target_verdict(target, names, candidates, evidence, rules) for target in targets]
    fleet = _fleet_verdict(targets, candidates, evidence, rules, per_target) if len(targets) > 1 else None
    _say_where_numbers_come_from(report, per_target, fleet)
    overall = fleet or per_target[0]
    return {
        **head,
        "scope": "fleet" if fleet else "target",
        "recommended": overall["recommended"],
        "passed": overall["recommended"] is not None,
        "reason": overall["reason"],
        "targets": per_target,
        "fleet": fleet,
        "closest": overall.get("closest"),
        "next_steps": overall.get("next_steps", []),
        "notes": notes,
    }


# ---------------------------------------------------------------------------- one target


def _head(
    report: dict[str, Any], rules: Acceptance, source: str, seed_reports: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """What every verdict states first: the rules, where they came from, and the statistics they were judged with."""
    return {
        "version": VERDICT_VERSION,
        "rules": rules.model_dump(mode="json"),
        "rules_text": rules.describe(),
        "rules_source": source or f"profile {report['profile'].get('name')}",
        "statistics": {
            "alpha": rules.alpha,
            "bootstrap": {
                "confidence": stats.CONFIDENCE,
                "resamples": stats.RESAMPLES,
                "seed": stats.SEED,
                "method": "percentile",
            },
            "latency": stats.ROUNDS_METHOD,
            "timing_noise": stats.NOISE_METHOD,
            "accuracy_test": "McNemar exact (paired, same images)",
            "impact_rule": "welch over seeds" if seed_reports else "sigma",
        },
    }


def _target_verdict(
    target: str, names: list[str], candidates: list[str], evidence: dict[tuple[str, str], Evidence], rules: Acceptance
) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    checks: dict[str, list[Check]] = {}
    for name in names:
        ev = evidence.get((name, target))
        if ev is None:
            continue
        checks[name] = judge(ev, rules)
        failed = [c for c in checks[name] if not c.passed]
        entries.append(
            {
                "artifact": name,
                "role": "candidate" if name in candidates else "baseline",
                "passed": not failed,
                "first_failure": failed[0].to_dict() if failed else None,
                "checks": [c.to_dict() for c in checks[name]],
                "evidence": ev.to_dict(),
            }
        )
    passing: list[str] = [e["artifact"] for e in entries if e["passed"] and e["role"] == "candidate"]
    noise = next((ev.timing.noise for n in names if (ev := evidence.get((n, target))) and ev.timing), None)
    verdict: dict[str, Any] = {
        "target": target,
        "artifacts": entries,
        "passing": passing,
        "timing_noise": noise.to_dict() if noise else None,
    }
    if passing:
        winner, phrases = choose(passing, rules, evidence, [target])
        verdict.update(
            recommended=winner, reason=_reason(winner, phrases, [evidence[(winner, target)]], target, len(passing))
        )
        for entry in entries:
            if entry["passed"] and entry["artifact"] != winner and entry["role"] == "candidate":
                entry["note"] = f"passes; not preferred ({comparison(entry['artifact'], winner, evidence, [target])})"
    else:
        failures = {n: [c for c in checks[n] if not c.passed] for n in checks if n in candidates}
        baseline_passes = any(e["passed"] for e in entries if e["role"] == "baseline")
        verdict.update(recommended=None, **_nothing_passes(failures, f"on {target}", baseline_passes))
    return verdict


def _say_where_numbers_come_from(
    report: dict[str, Any], per_target: list[dict[str, Any]], fleet: dict[str, Any] | None
) -> None:
    """A target that is not the profile's device (hardware.stand_in) is named as one in its reason,
    so nobody ships on latency taken on another CPU."""
    from edgecompress.hardware import stand_in

    found = {
        entry.get("name"): stand_in(report["profile"], entry)
        for entry in report.get("targets") or []
        if isinstance(entry, dict)
    }
    words = []
    for verdict in per_target:
        standing = found.get(verdict["target"])
        if standing is not None:
            verdict["reason"] = f"{verdict['reason']} Note: {standing.words}."
            words.append(standing.words)
    if fleet is not None and words:
        fleet["reason"] = f"{fleet['reason']} Note: {'; '.join(words)}."


def _reason(winner: str, phrases: list[str], evs: list[Evidence], where: str, n_passing: int) -> str:
    """One line: what the recommended artifact passed, why it beat the others, and its figures."""
    ev = evs[0]
    parts = [f"{winner} passes every rule on {where}"]
    parts.append("the only artifact that does" if n_passing == 1 else "; ".join(phrases))
    drop = ev.accuracy_drop_points
    if drop is not None:
        parts.append(f"accuracy {-drop:+.2f} pt against the baseline ({accuracy_words(ev)})")
    if ev.speed is not None:
        parts.append(ev.speed.words)
    elif ev.instructions:
        parts.append(f"{ev.instructions:,.0f} instructions per inference on {ev.target}")
    if ev.row.get("smaller_x_file") and ev.instructions is None:  # a firmware image is not a model file
        parts.append(f"{ev.row['smaller_x_file']:.2f}x smaller file")
    if ev.macs and ev.macs.get("theoretical_speedup_x"):
        parts.append(f"theoretical speed-up {ev.macs['theoretical_speedup_x']:.2f}x from MACs")
    return "; ".join(parts) + "."


# ---------------------------------------------------------------------------- the fleet


def _fleet_verdict(
    targets: list[str],
    candidates: list[str],
    evidence: dict[tuple[str, str], Evidence],
    rules: Acceptance,
    per_target: list[dict[str, Any]],
) -> dict[str, Any]:
    """An artifact passes the fleet only when it passes on every board."""
    by_target = {v["target"]: {e["artifact"]: e for e in v["artifacts"]} for v in per_target}
    entries: list[dict[str, Any]] = []
    failures: dict[str, list[Check]] = {}
    for name in candidates:
        failed: list[tuple[str, Check]] = []
        for target in targets:
            entry = by_target[target].get(name)
            if entry is None:
                failed.append((target, Check("measured", "measured", False, f"not measured on {target}")))
            elif not entry["passed"]:
                first = entry["first_failure"]
                failed.append(
                    (
                        target,
                        Check(
                            first["rule"],
                            first["title"],
                            False,
                            first["text"],
                            first["value"],
                            first["limit"],
                            first["option"],
                            first["looser"],
                        ),
                    )
                )
        failures[name] = [check for _, check in failed]
        entries.append(
            {"artifact": name, "passed": not failed, "failures": [{"target": t, **c.to_dict()} for t, c in failed]}
        )
    passing: list[str] = [e["artifact"] for e in entries if e["passed"]]
    where = f"all {len(targets)} boards"
    fleet: dict[str, Any] = {"targets": targets, "artifacts": entries, "passing": passing}
    if passing:
        winner, phrases = choose(passing, rules, evidence, targets)
        evs = [evidence[(winner, t)] for t in targets]
        fleet.update(recommended=winner, reason=_reason(winner, phrases, evs, where, len(passing)))
    else:
        baseline_passes = all(
            any(e["passed"] and e["role"] == "baseline" for e in by_target[t].values()) for t in targets
        )
        fleet.update(recommended=None, **_nothing_passes(failures, f"on every one of {where}", baseline_passes))
    return fleet


# ---------------------------------------------------------------------------- nothing passes


def _nothing_passes(failures: dict[str, list[Check]], where: str, baseline_passes: bool) -> dict[str, Any]:
    """Which rule came closest to being met, and what to try next."""
    if not failures:
        return {
            "reason": f"No compressed artifact was measured {where}.",
            "closest": None,
            "next_steps": ["Deploy again; with --allow-baseline the uncompressed baseline may be recommended."],
        }
    name, checks = min(failures.items(), key=lambda item: (len(item[1]), min((c.excess for c in item[1]), default=0.0)))
    nearest = min(checks, key=lambda c: c.excess)
    closest = {
        "artifact": name,
        "rule": nearest.rule,
        "title": nearest.title,
        "text": nearest.text,
        "failed_rules": [c.rule for c in checks],
        "excess": None if math.isinf(nearest.excess) else round(nearest.excess, 4),
    }
    steps = [
        f"{RULES_BY_NAME[nearest.rule].advice}."
        if nearest.rule in RULES_BY_NAME
        else "Measure the artifact on every board."
    ]
    loosen = [f"{c.option} {c.looser:g}" for c in checks if c.option and c.looser is not None]
    if loosen and len(loosen) == len(checks):
        steps.append(f"Loosen the rule{'s' if len(loosen) > 1 else ''}: {' '.join(loosen)} would let {name} pass.")
    others = "".join(f" {n} fails {c[0].title}: {c[0].text}." for n, c in failures.items() if c and n != name)
    how = (
        f"fails only {nearest.title}"
        if len(checks) == 1
        else f"fails {len(checks)} rules, nearest to passing {nearest.title}"
    )
    reason = f"No artifact passes every rule {where}. Closest: {name}, which {how}: {nearest.text}.{others}"
    if baseline_passes:
        steps.append(
            "The uncompressed baseline passes these rules: ship it with --allow-baseline if compression is optional."
        )
    return {"reason": reason, "closest": closest, "next_steps": steps}


def summary_lines(verdict: dict[str, Any]) -> list[str]:
    """The verdict in a few lines for a terminal: the decision, then one line per other artifact."""
    if verdict.get("recommended"):
        lines = [f"Recommended: {verdict['recommended']}. {verdict['reason']}"]
    else:
        lines = [f"No recommendation. {verdict['reason']}"]
        lines += [f"Next: {step}" for step in verdict.get("next_steps", [])]
    scope = verdict.get("fleet") or (verdict["targets"][0] if verdict.get("targets") else None)
    for entry in (scope or {}).get("artifacts", []):
        if entry["artifact"] == verdict.get("recommended") or entry.get("role") == "baseline":
            continue
        failure = entry.get("first_failure") or (entry.get("failures") or [None])[0]
        if failure:
            on = f" on {failure['target']}" if failure.get("target") else ""
            lines.append(f"  {entry['artifact']}: fails {failure['title']}{on}: {failure['text']}")
        elif entry.get("passed"):
            lines.append(f"  {entry['artifact']}: {entry.get('note') or 'passes, not preferred'}")
    for target in verdict.get("targets") or []:
        noise = target.get("timing_noise")
        if noise:
            lines.append(
                f"Timing noise on {target['target']}: ±{noise['percent']:.1f} % (the baseline against itself); "
                "no artifact is called faster or slower by less."
            )
    lines.append(f"Rules ({verdict.get('rules_source')}): {'; '.join(verdict.get('rules_text', []))}.")
    return lines


__all__ = ["VERDICT_VERSION", "better", "choose", "decide", "impacted_words", "summary_lines"]
