"""The machine-readable summary printed by `--json`: the headline of a report, nothing more.

Scripts and CI want a few stable numbers per artifact (sizes, latency, accuracy and its
change, the class hurt most, how many examples flipped), not the whole report.json.
"""

from __future__ import annotations

from typing import Any

SUMMARY_SCHEMA = "edgecompress.report-summary"
SUMMARY_VERSION = 3  # 2: `verdict`; 3: `task`, each row's task figure (`metric`, `metric_delta`) and fidelity

#: Comparison-row fields copied into the summary, in this order.
ROW_FIELDS = (
    "artifact",
    "target",
    "kind",
    "file_bytes",
    "gzip_bytes",
    "bitpacked_bytes",
    "smaller_x_file",
    "smaller_x_gzip",
    "smaller_x_bitpacked",
    "latency_median_ms",
    "latency_p90_ms",
    "speedup_x",
    "peak_rss_bytes",
    "accuracy",
    "accuracy_delta_points",
    "metric",
    "metric_delta",
    "sqnr_db",
    "agreement",
    "eval_n",
    "fits_budget",
    "runtime",
    "threads",
    "warmup",
    "runs",
    "device",
)


def to_json_summary(report: dict[str, Any]) -> dict[str, Any]:
    """Headline figures per (artifact, target), plus per-class damage where it was measured."""
    impact = {
        (name, block["target"]): summary
        for block in report.get("per_class") or []
        for name, summary in block["compressed"].items()
    }
    rows = []
    for row in report["comparison"]:
        entry = {key: row.get(key) for key in ROW_FIELDS}
        summary = impact.get((row["artifact"], row["target"]))
        if summary is not None:
            found = summary.get("disagreements")
            entry["classes_worse"] = summary["classes_worse"]
            entry["hurt_most"] = [
                {"class": hurt["name"], "recall_change_points": hurt["recall_change_points"]}
                for hurt in summary["hurt_most"]
            ]
            entry["disagreements"] = (
                None
                if found is None
                else {
                    key: found[key]
                    for key in (
                        "count",
                        "rate",
                        "baseline_right_compressed_wrong",
                        "baseline_wrong_compressed_right",
                        "both_wrong",
                    )
                }
            )
        rows.append(entry)
    plan = report.get("plan") or {}
    significance = report.get("significance") or {}
    return {
        "schema": SUMMARY_SCHEMA,
        "schema_version": SUMMARY_VERSION,
        "report_schema_version": report.get("schema_version"),
        "created": report.get("created"),
        "model": report["model"]["path"],
        "profile": report["profile"]["name"],
        "baseline": report["baseline"],
        "task": (report.get("task") or {}).get("name") or "classification",
        "targets": list(dict.fromkeys(row["target"] for row in report["comparison"])),
        "rows": rows,
        "plan": {
            "strategy": plan.get("strategy"),
            "estimated_bytes": plan.get("estimated_bytes"),
            "fits": plan.get("fits"),
        }
        if plan
        else None,
        "significant_layers": [layer["name"] for layer in significance.get("layers", []) if layer.get("significant")]
        if significance
        else None,
        "verdict": verdict_summary(report.get("verdict")),
        "notes": report.get("report_notes") or [],
    }


def verdict_summary(verdict: dict[str, Any] | None) -> dict[str, Any] | None:
    """The decision and, per artifact, the first rule it failed: what a CI step branches on."""
    if not verdict:
        return None
    scope = verdict.get("fleet") or (verdict.get("targets") or [{}])[0]
    failures = {}
    for entry in scope.get("artifacts", []):
        first = entry.get("first_failure") or (entry.get("failures") or [None])[0]
        failures[entry["artifact"]] = (
            None
            if first is None
            else {key: first.get(key) for key in ("target", "rule", "text", "value", "limit") if key in first}
        )
    return {
        "recommended": verdict.get("recommended"),
        "passed": verdict.get("passed"),
        "reason": verdict.get("reason"),
        "scope": verdict.get("scope"),
        "rules": verdict.get("rules"),
        "rules_source": verdict.get("rules_source"),
        "first_failures": failures,
        "closest": verdict.get("closest"),
        "next_steps": verdict.get("next_steps") or [],
    }
