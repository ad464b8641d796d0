"""report.json: what a run measured, in a versioned schema, and the comparison people read.

Readers (people, CI dashboards, `edgecompress report`) rely on the field names; bump
SCHEMA_VERSION when one changes meaning.
"""

from __future__ import annotations

import platform
import statistics
import time
from typing import Any

SCHEMA = "edgecompress.report"
SCHEMA_VERSION = 1


def host_facts() -> dict[str, Any]:
    """Where the conversion ran (not where the model was measured: that is each target's)."""
    import importlib.metadata as md

    versions = {}
    for package in ("edgecompress", "tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert", "onnxruntime", "tf2onnx"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    return {"python": platform.python_version(), "machine": platform.machine(), "system": platform.system(), "packages": versions}


def measurement_entry(artifact: str, target: str, result: dict[str, Any], samples_file: str | None) -> dict[str, Any]:
    """One (artifact, target) measurement; raw latency samples stay in their own file."""
    latency = {k: v for k, v in result.get("latency_ms", {}).items() if k != "samples"}
    return {
        "artifact": artifact,
        "target": target,
        "runtime": result.get("runtime"),
        "threads": result.get("threads"),
        "load_ms": result.get("load_ms"),
        "first_inference_ms": result.get("first_inference_ms"),
        "latency_ms": latency,
        "latency_samples_file": samples_file,
        "memory": result.get("memory"),
        "accuracy": result.get("accuracy"),
        "platform": result.get("platform"),
    }


def compare(artifacts: list[dict[str, Any]], measurements: list[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """Every artifact against the baseline on the same target: the numbers the user came for."""
    sizes = {a["name"]: a for a in artifacts}
    base_size = sizes[baseline]
    by_key = {(m["artifact"], m["target"]): m for m in measurements}
    rows = []
    for m in measurements:
        base = by_key.get((baseline, m["target"]))
        art = sizes[m["artifact"]]
        row: dict[str, Any] = {
            "artifact": m["artifact"],
            "target": m["target"],
            "file_bytes": art["file_bytes"],
            "gzip_bytes": art["gzip_bytes"],
            "smaller_x_file": _ratio(base_size["file_bytes"], art["file_bytes"]),
            "smaller_x_gzip": _ratio(base_size["gzip_bytes"], art["gzip_bytes"]),
            "latency_median_ms": m["latency_ms"].get("median"),
            "peak_rss_bytes": (m.get("memory") or {}).get("peak_rss_bytes"),
            "accuracy": (m.get("accuracy") or {}).get("overall"),
            "fits_budget": art.get("fits_budget"),
        }
        if base is not None:
            row["speedup_x"] = _ratio(base["latency_ms"].get("median"), m["latency_ms"].get("median"))
            base_acc = (base.get("accuracy") or {}).get("overall")
            row["accuracy_delta_points"] = (
                None if base_acc is None or row["accuracy"] is None else round(100 * (row["accuracy"] - base_acc), 2)
            )
        rows.append(row)
    return rows


def _ratio(a: float | None, b: float | None) -> float | None:
    if not a or not b:
        return None
    return round(a / b, 3)


def fleet_spread(measurements: list[dict[str, Any]]) -> dict[str, Any]:
    """Per artifact, how much the boards disagree (only meaningful with several targets)."""
    spread: dict[str, Any] = {}
    for name in sorted({m["artifact"] for m in measurements}):
        rows = [m for m in measurements if m["artifact"] == name]
        if len(rows) < 2:
            continue
        medians = [m["latency_ms"]["median"] for m in rows if m["latency_ms"].get("median") is not None]
        spread[name] = {
            "targets": [m["target"] for m in rows],
            "latency_median_ms": _stats(medians),
            "peak_rss_bytes": _stats([(m.get("memory") or {}).get("peak_rss_bytes") for m in rows]),
            "accuracy": _stats([(m.get("accuracy") or {}).get("overall") for m in rows]),
        }
    return spread


def _stats(values: list[float | None]) -> dict[str, float] | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {
        "min": min(values),
        "max": max(values),
        "median": statistics.median(values),
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
    }


def build_report(**sections: Any) -> dict[str, Any]:
    """Assemble report.json; sections are passed by name so the schema reads top to bottom here."""
    report = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    report.update(sections)
    report["comparison"] = compare(sections["artifacts"], sections["measurements"], sections["baseline"])
    report["fleet_spread"] = fleet_spread(sections["measurements"])
    return report


def render_summary(report: dict[str, Any]):  # noqa: ANN201 - rich Table
    """The table printed at the end of deploy: one row per artifact and target."""
    from rich.table import Table

    table = Table(title=f"{report['model']['path']} on {report['profile']['name']}  (baseline: {report['baseline']})")
    for column in ("artifact", "target", "file", "gzip", "smaller", "median ms", "speedup", "peak RSS", "accuracy", "Δ acc"):
        table.add_column(column, justify="left" if column in ("artifact", "target") else "right")
    for row in report["comparison"]:
        table.add_row(
            row["artifact"],
            row["target"],
            _human_bytes(row["file_bytes"]),
            _human_bytes(row["gzip_bytes"]),
            _fmt(row.get("smaller_x_gzip"), "{:.2f}x"),
            _fmt(row.get("latency_median_ms"), "{:.3f}"),
            _fmt(row.get("speedup_x"), "{:.2f}x"),
            _human_bytes(row.get("peak_rss_bytes")),
            _fmt(row.get("accuracy"), "{:.2%}"),
            _fmt(row.get("accuracy_delta_points"), "{:+.2f} pt"),
        )
    return table


def _fmt(value: float | None, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


def _human_bytes(n: float | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
