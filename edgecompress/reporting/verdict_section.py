"""The verdict as the first section of report.md / report.html: what to ship, and why.

One paragraph says the decision; one table per target holds every artifact against the
rules, with the statistics behind each figure (McNemar's p, the latency interval, the
impacted classes, MACs beside the measured speed-up); a fleet gets a table of which board
each artifact failed on. Everything shown comes from report.json's `verdict`.
"""

from __future__ import annotations

from typing import Any

from edgecompress.reporting import formatting as fmt
from edgecompress.reporting.document import Bullets, Cell, Column, Paragraph, Section, Table, cell

MACS_NOT_COUNTED = "MACs not counted"


def verdict_section(report: dict[str, Any]) -> Section | None:
    verdict = report.get("verdict")
    if not verdict:
        return None
    if verdict.get("recommended"):
        blocks: list[Any] = [Paragraph(verdict["reason"], lead=f"Ship {verdict['recommended']}:")]
    else:
        blocks = [
            Paragraph(verdict.get("reason", ""), lead="No artifact passes:"),
            Bullets([f"Try next: {step}" for step in verdict.get("next_steps") or []]),
        ]
    blocks.append(
        Bullets(
            [
                f"Rules ({verdict.get('rules_source')}): {'; '.join(verdict.get('rules_text') or [])}.",
                _statistics_line(verdict),
            ]
        )
    )
    marked = {(r["artifact"], r["target"]): r.get("latency_marked_rounds") for r in report.get("comparison") or []}
    for target in verdict.get("targets") or []:
        blocks.append(_target_table(target, len(verdict["targets"]) > 1, marked))
    if verdict.get("fleet"):
        blocks.append(_fleet_table(verdict["fleet"]))
    notes = list(verdict.get("notes") or [])
    if not any(
        (entry.get("evidence") or {}).get("macs") for t in verdict.get("targets") or [] for entry in t["artifacts"]
    ):
        notes.append(f"{MACS_NOT_COUNTED}: no theoretical speed-up to set beside the measured one")
    if notes:
        blocks.append(Bullets([f"Note: {note}" for note in notes]))
    return Section("Verdict", blocks, id="verdict")


def _statistics_line(verdict: dict[str, Any]) -> str:
    statistics = verdict.get("statistics") or {}
    boot = statistics.get("bootstrap") or {}
    impact = (
        "Welch's t-test over seeds, the classes' p-values adjusted for the false discovery rate (Benjamini-Hochberg)"
        if statistics.get("impact_rule", "").startswith("welch")
        else (
            "the sigma rule (a class whose recall moves by more than the standard deviation of the baseline's per-class recalls)"
        )
    )
    return (
        f"Statistics: accuracy changes by McNemar's exact test on the same images (alpha {statistics.get('alpha')}); "
        f"latency {_latency_words(statistics, boot)}; impacted classes by {impact}."
    )


def _latency_words(statistics: dict[str, Any], boot: dict[str, Any]) -> str:
    confidence = fmt.percent(boot.get("confidence")).replace(".00", "")
    how = f"{boot.get('resamples')} resamples, seed {boot.get('seed')}"
    if statistics.get("latency"):  # verdict v2: timed in interleaved rounds
        return (
            f"timed in interleaved rounds: the median of round medians with a {confidence} two-level bootstrap "
            f"interval ({how}); two artifacts are compared by their ratio paired round by round, and called faster or "
            "slower only when its interval excludes 1 and it lies beyond the board's timing noise (the baseline "
            "timed twice per round)"
        )
    return f"by a {confidence} percentile bootstrap interval of the median ({how}), overlapping intervals counting as equally fast"


COLUMNS = [
    Column("artifact"),
    Column("verdict"),
    Column("first failed rule, with its figure"),
    Column("Δ accuracy", numeric=True),
    Column("McNemar p", numeric=True, help="paired exact test against the baseline"),
    Column("worst class", numeric=True),
    Column("impacted classes", numeric=True),
    Column("median ms", numeric=True),
    Column("95% interval", numeric=True),
    Column("vs baseline"),
    Column("MACs", numeric=True),
    Column("MAC speed-up", numeric=True, help="baseline MACs / these MACs: the theoretical speed-up"),
    Column("measured speed-up", numeric=True),
]


def _median(value: float | None, marked: int | None) -> Cell:
    """The median, and how many of its timing rounds were marked (clock changed or throttled: 'How it was timed')."""
    shown = fmt.milliseconds(value)
    if marked:
        shown += f" ({marked} round{'s' if marked != 1 else ''} marked)"
    return Cell(shown, value=value)


def _target_table(target: dict[str, Any], several: bool, marked: dict[tuple[str, str], int | None]) -> Table:
    rows = []
    for entry in target["artifacts"]:
        ev = entry.get("evidence") or {}
        test, interval, macs = ev.get("accuracy_test") or {}, ev.get("latency_interval") or {}, ev.get("macs") or {}
        failure = entry.get("first_failure")
        status = (
            ("recommended" if entry["artifact"] == target.get("recommended") else "passes")
            if entry["passed"]
            else "fails"
        )
        if entry.get("role") == "baseline" and entry["artifact"] != target.get("recommended"):
            status = "baseline"
        delta = ev.get("accuracy_drop_points")
        rows.append(
            [
                Cell(entry["artifact"]),
                Cell(status, tone="good" if status == "recommended" else "bad" if status == "fails" else ""),
                Cell(failure["text"] if failure else entry.get("note") or fmt.DASH),
                cell(None if delta is None else -delta, fmt.points, tone=fmt.tone(None if delta is None else -delta)),
                cell(test.get("p_value"), _p_value),
                cell(
                    ev.get("largest_class_drop_points"),
                    lambda v: fmt.DASH if v is None else f"-{v:.2f} pt" if v > 0 else "none lost",
                ),
                cell((ev.get("impacted_classes") or {}).get("count"), fmt.integer),
                _median((ev.get("latency_ms") or {}).get("median"), marked.get((entry["artifact"], target["target"]))),
                Cell(
                    f"{fmt.milliseconds(interval['low'])}–{fmt.milliseconds(interval['high'])}"
                    if interval
                    else fmt.DASH
                ),
                Cell(_short_speed(ev.get("speed_vs_baseline"))),
                cell(macs.get("total"), fmt.integer) if macs else Cell(MACS_NOT_COUNTED),
                cell(macs.get("theoretical_speedup_x"), fmt.ratio),
                cell((ev.get("speed_vs_baseline") or {}).get("ratio"), fmt.ratio),
            ]
        )
    caption = (f"On {target['target']}: " if several else "") + (
        "every artifact against every rule; the first rule an artifact failed is shown with its figure."
    )
    return Table(COLUMNS, rows, caption=caption, id=f"verdict-{target['target']}")


def _fleet_table(fleet: dict[str, Any]) -> Table:
    columns = [Column("artifact"), Column("across the fleet"), Column("failed on")]
    rows = []
    for entry in fleet["artifacts"]:
        status = (
            "recommended"
            if entry["artifact"] == fleet.get("recommended")
            else ("passes everywhere" if entry["passed"] else "fails")
        )
        failed = "; ".join(f"{f['target']}: {f['title']} ({f['text']})" for f in entry["failures"]) or "—"
        rows.append([Cell(entry["artifact"]), Cell(status, tone="good" if entry["passed"] else "bad"), Cell(failed)])
    return Table(
        columns,
        rows,
        caption=f"An artifact passes the fleet only when it passes on every board ({', '.join(fleet['targets'])}).",
        id="verdict-fleet",
    )


def _short_speed(speed: dict[str, Any] | None) -> str:
    """'equally fast' / '1.33x faster': the table's column already says against what."""
    if not speed or speed.get("ratio") is None:
        return fmt.DASH
    return "equally fast" if speed.get("equal") else str(speed["words"]).split(" than ")[0]


def _p_value(value: float | None) -> str:
    return fmt.DASH if value is None else f"{value:.2g}"
