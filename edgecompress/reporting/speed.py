"""The speed side of report.json: MACs (theoretical speed-up) beside measured speed-up, threads,
the accelerator that really ran, and where the time goes.

Each artifact's MACs are counted from its own exported graph (`export.macs.artifact_macs`)
and live in `artifacts[].macs`; `comparison[]` rows carry the total and the MAC ratio next to
the measured speed-ups. Two thread counts are measured: `latency_median_ms` / `speedup_x`
at the row's `threads` (the profile's core count, capped at the CPUs the board allows, or
what `--threads` fixed: `threads_basis` says which), and `latency_1t_median_ms` /
`speedup_1t_x` at one thread. docs/report-schema.md documents every field.
"""

from __future__ import annotations

from typing import Any

#: The runner's speed facts kept in `measurements[]` (its per-op profile is trimmed to its table).
MEASUREMENT_FIELDS = ("threads_basis", "execution", "latency_by_threads", "op_profile")


def measurement_fields(result: dict[str, Any]) -> dict[str, Any]:
    """The speed facts of one runner result, as `measurements[]` keeps them."""
    return {key: result.get(key) for key in MEASUREMENT_FIELDS}


def latency_at(measurement: dict[str, Any] | None, threads: int) -> float | None:
    """Median batch-1 latency at `threads` threads: the main figure when it was timed at that count, else the
    runner's per-thread timings."""
    if (measurement or {}).get("threads") == threads:
        return ((measurement or {}).get("latency_ms") or {}).get("median")
    for row in (measurement or {}).get("latency_by_threads") or []:
        if row.get("threads") == threads:
            return (row.get("latency_ms") or {}).get("median")
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    if not a or not b:
        return None
    return round(a / b, 3)


def comparison_fields(
    artifact: dict[str, Any],
    measurement: dict[str, Any],
    base_artifact: dict[str, Any],
    base_measurement: dict[str, Any] | None,
) -> dict[str, Any]:
    """MACs and MAC ratio beside the 1-thread latency and speed-up, for one `comparison[]` row."""
    macs = (artifact.get("macs") or {}).get("total")
    base_macs = (base_artifact.get("macs") or {}).get("total")
    one_thread = latency_at(measurement, 1)
    return {
        "macs": macs,
        "mac_ratio_x": _ratio(base_macs, macs),
        "latency_1t_median_ms": one_thread,
        "speedup_1t_x": _ratio(latency_at(base_measurement, 1), one_thread) if base_measurement is not None else None,
        "threads_basis": measurement.get("threads_basis"),
        "accelerator": (measurement.get("execution") or {}).get("note"),
    }


def add_macs(artifact: dict[str, Any], path: Any) -> None:
    """`artifacts[].macs` counted from the file, for reports written before MACs were recorded."""
    if artifact.get("macs") is not None or path is None:
        return
    from edgecompress.export.macs import artifact_macs

    try:
        artifact["macs"] = artifact_macs(path)
    except Exception:  # noqa: BLE001 - an unreadable graph leaves the figure out, as other optional facts
        artifact["macs"] = None


def where_time_goes(report: dict[str, Any], *, limit: int = 8) -> list[dict[str, Any]]:
    """Per measured artifact: the ops that take the most time (measured) or, without a profiler, the most MACs."""
    artifacts = {a["name"]: a for a in report.get("artifacts", [])}
    blocks = []
    for m in report.get("measurements", []):
        profile = m.get("op_profile") or {}
        if profile.get("available"):
            rows = [
                {"op": op["node"], "type": op["op_type"], "share": op["share"], "median_ms": op.get("median_ms")}
                for op in profile.get("ops", [])[:limit]
            ]
            basis = (
                f"measured: {profile.get('source')}, {profile.get('runs')} runs at {profile.get('threads')} thread(s)"
            )
        else:
            macs = (artifacts.get(m["artifact"]) or {}).get("macs") or {}
            total = macs.get("total") or 0
            rows = [
                {
                    "op": row["layer"],
                    "type": None,
                    "share": round(row["macs"] / total, 4) if total else None,
                    "median_ms": None,
                }
                for row in sorted(macs.get("by_layer", []), key=lambda row: -row["macs"])[:limit]
            ]
            basis = "share of MACs (no per-op profiler: " + (profile.get("reason") or "not profiled") + ")"
        blocks.append({"artifact": m["artifact"], "target": m["target"], "basis": basis, "rows": rows})
    return blocks


__all__ = ["MEASUREMENT_FIELDS", "add_macs", "comparison_fields", "latency_at", "measurement_fields", "where_time_goes"]


def speed_section(report: dict[str, Any]) -> Any:
    """'Compute and where the time goes': MACs beside measured speed-ups, threads, accelerator, hot ops."""
    from edgecompress.reporting import formatting as fmt
    from edgecompress.reporting.document import Bullets, Column, Paragraph, Section, Table, cell

    rows = report.get("comparison") or []
    if not any(row.get("macs") for row in rows):
        return None
    blocks: list[Any] = [
        Paragraph(
            "MACs are counted from each exported graph (convolutions and matrix products; element-wise ops left out). "
            "The MAC ratio is the theoretical speed-up; the measured ones are baseline / artifact median latency, "
            "at the row's thread count and at one thread. Fewer MACs need not mean less time: per-call overhead, "
            "memory traffic and kernel quality decide the rest.",
            lead="Compute.",
        )
    ]
    columns = [
        Column("artifact"),
        Column("target"),
        Column("MACs", True),
        Column("MAC ratio", True),
        Column("speed-up", True),
        Column("threads", True),
        Column("speed-up (1 thread)", True),
        Column("median ms (1 thread)", True),
        Column("ran on"),
    ]
    table_rows = [
        [
            cell(row["artifact"], fmt.text),
            cell(row["target"], fmt.text),
            cell(row.get("macs"), fmt.integer),
            cell(row.get("mac_ratio_x"), fmt.ratio),
            cell(row.get("speedup_x"), fmt.ratio),
            cell(row.get("threads"), fmt.integer),
            cell(row.get("speedup_1t_x"), fmt.ratio),
            cell(row.get("latency_1t_median_ms"), fmt.milliseconds),
            cell(row.get("accelerator"), fmt.text),
        ]
        for row in rows
    ]
    blocks.append(Table(columns, table_rows, id="speed-table"))
    bases = sorted({row.get("threads_basis") for row in rows if row.get("threads_basis")})
    if bases:
        blocks.append(Bullets([f"threads: {basis}" for basis in bases]))
    hot = []
    for block in where_time_goes(report):
        shares = ", ".join(f"{r['op']} {r['share']:.0%}" for r in block["rows"][:5] if r.get("share") is not None)
        if shares:
            hot.append(f"{block['artifact']} on {block['target']}: {shares} ({block['basis'].split(' (')[0]})")
    if hot:
        blocks.append(Paragraph("where the time goes, largest first:", lead="Operators."))
        blocks.append(Bullets(hot))
    return Section("Compute, threads and where the time goes", blocks, id="speed-section")


def plan_speed_bullets(plan: dict[str, Any]) -> list[str]:
    """The plan's compute line: MACs before and after its speed recipe (Keras-side estimate)."""
    if not plan.get("macs"):
        return []
    line = f"Compute: {plan['macs']:,} MACs per sample"
    if plan.get("structure", "none") != "none" and plan.get("macs_before") and plan["macs"] != plan["macs_before"]:
        line += (
            f" after {plan['structure']} (from {plan['macs_before']:,}: {plan.get('mac_ratio') or 0:.2f}x fewer, "
            "the theoretical speed-up)"
        )
    return [line]


def plan_speed_columns(plan: dict[str, Any]) -> tuple[list[Any], Any]:
    """(columns, layer -> cells) for the speed recipe of each layer, or nothing for a size-only plan."""
    from edgecompress.reporting import formatting as fmt
    from edgecompress.reporting.document import Cell, Column, cell

    if plan.get("structure", "none") == "none":
        return [], lambda layer: []
    columns = [Column("speed recipe"), Column("shape"), Column("MACs", numeric=True)]

    def cells(layer: dict[str, Any]) -> list[Any]:
        changed = layer.get("structure", "none") != "none" and layer.get("structure_params")
        return [
            Cell(layer["structure"] if changed else "—"),
            Cell(fmt.text(layer.get("speed_setting"))),
            cell(layer.get("macs") or None, fmt.integer),
        ]

    return columns, cells
