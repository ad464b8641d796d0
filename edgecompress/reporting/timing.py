"""report.json's `timing` section and the report's "How it was timed": rounds, noise floor, board state, energy.

`add_timing` reads each board's rounds (decision.timing.BoardTiming) and puts its figures where
every reader looks: `measurements[].latency_ms` (the median of round medians),
`latency_by_threads`, `energy` and `latency_marks`, and one `timing[]` block per board with
the noise floor, the order of every round, the board's state and the marked rounds. A run
from before interleaved rounds keeps its single-block figures and gets no `timing` section.
"""

from __future__ import annotations

from typing import Any

from edgecompress.run_layout import LAYOUT
from edgecompress.targets.energy import NOT_MEASURED


def add_timing(report: dict[str, Any], files: Any) -> None:
    """Latency, energy and marks of every measurement from its board's rounds, and the `timing` section (in place)."""
    blocks = []
    for target in dict.fromkeys(m["target"] for m in report["measurements"]):
        timing = files.board_timing(target)
        if timing is None:
            continue
        block = timing.section(f"{LAYOUT.rounds_stem(target)}.json")
        blocks.append(block)
        for m in report["measurements"]:
            if m["target"] != target or m["artifact"] not in timing.artifacts:
                continue
            m["latency_ms"] = timing.latency(m["artifact"]) or m.get("latency_ms")
            m["latency_by_threads"] = timing.latency_by_threads(m["artifact"])
            m["energy"] = block["artifacts"][m["artifact"]]["energy"]
            m["latency_marks"] = block["artifacts"][m["artifact"]]["marks"]
    if blocks:
        report["timing"] = blocks


def noise_lines(report: dict[str, Any]) -> list[str]:
    """'timing noise on local: ±3.1 % (baseline-fp32 timed twice in each of 5 rounds)' per board."""
    lines = []
    for block in report.get("timing") or []:
        noise = block.get("noise")
        if noise:
            lines.append(
                f"timing noise on {block['target']}: ±{noise['percent']:.1f} % "
                f"({noise['artifact']} timed twice in each of {block['rounds']} rounds)"
            )
        else:
            lines.append(f"timing noise on {block['target']}: not measured")
    return lines


def _state_line(block: dict[str, Any]) -> str:
    summary = block.get("board_summary") or {}

    def span(key: str, unit: str, digits: int = 2) -> str | None:
        value = summary.get(key)
        if not value:
            return None
        low, high = value
        return f"{low:.{digits}f}{unit}" if low == high else f"{low:.{digits}f}-{high:.{digits}f}{unit}"

    memory = summary.get("memory_available_bytes")
    parts = [
        f"clock {span('clock_ghz', ' GHz')}" if summary.get("clock_ghz") else "clock not exposed",
        f"governor {', '.join(summary['governors'])}" if summary.get("governors") else None,
        f"hottest sensor {span('temperature_c', ' °C', 1)}"
        if summary.get("temperature_c")
        else "no temperature sensor",
        "throttled" if summary.get("throttled") else None,
        f"load average (1 min) {span('load_average_1m', '')}" if summary.get("load_average_1m") else None,
        f"free memory {memory[0] / 2**20:,.0f}-{memory[1] / 2**20:,.0f} MiB" if memory else None,
    ]
    return f"{block['target']}: " + "; ".join(p for p in parts if p)


def timing_section(report: dict[str, Any]) -> Any:
    """'How it was timed': per board the rounds, the noise floor, the board's state, the marked rounds and energy."""
    from edgecompress.reporting import formatting as fmt
    from edgecompress.reporting.document import Bullets, Column, Paragraph, Section, Table, cell

    blocks_in = report.get("timing") or []
    if not blocks_in:
        return None
    first = blocks_in[0]
    blocks: list[Any] = [
        Paragraph(
            f"Each board timed all its artifacts against each other in {first['rounds']} interleaved rounds: every "
            f"artifact once per round ({first['warmup_per_round']} warm-up and {first['runs_per_round']} timed runs), "
            "the order rotated each round, the baseline twice, half a round apart. A latency is the median of the "
            "round medians; its interval a two-level bootstrap (rounds, then runs). No artifact is called faster or "
            "slower than another by less than the board's timing noise: the spread of the baseline against itself.",
            lead="Rounds.",
        ),
        Bullets(noise_lines(report) + [f"board state while timed: {_state_line(b)}" for b in blocks_in]),
    ]
    marked = [
        f"{b['target']}, round {m['round'] + 1}: {'; '.join(m['marks'])}" for b in blocks_in for m in b["marked_rounds"]
    ]
    if marked:
        blocks.append(Paragraph("Every latency figure of these rounds is marked in the tables:", lead="Marked rounds."))
        blocks.append(Bullets(marked))
    columns = [Column("artifact"), Column("target"), Column("median ms", True), Column("95% interval"),
               Column("round medians (ms)"), Column("energy per inference"), Column("marks")]  # fmt: skip
    rows = [
        [
            cell(name, fmt.text),
            cell(b["target"], fmt.text),
            cell(a.get("median_ms"), fmt.milliseconds),
            cell(
                a.get("interval_ms"),
                lambda v: fmt.DASH if not v else f"{fmt.milliseconds(v[0])}–{fmt.milliseconds(v[1])}",
            ),
            cell(a.get("round_medians"), lambda v: ", ".join(fmt.milliseconds(x) for x in v or []) or fmt.DASH),
            cell(a.get("energy"), _energy_text),
            cell(len(a.get("marks") or []), lambda n: f"{n} round{'s' if n != 1 else ''} marked" if n else fmt.DASH),
        ]
        for b in blocks_in
        for name, a in b["artifacts"].items()
    ]
    blocks.append(Table(columns, rows, id="timing-table"))
    return Section("How it was timed", blocks, id="timing-section")


def _energy_text(energy: Any) -> str:
    if not isinstance(energy, dict) or not energy.get("measured"):
        return (
            "not measured"
            if not isinstance(energy, dict)
            else ("not measured" if energy.get("reason") == NOT_MEASURED else str(energy.get("reason")))
        )
    low, high = energy["millijoules_range"]
    return f"{energy['millijoules_per_inference']:.4g} mJ ({low:.3g}-{high:.3g}; {energy['method'].split(':')[0]})"


__all__ = ["add_timing", "noise_lines", "timing_section"]
