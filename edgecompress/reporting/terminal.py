"""The table printed at the end of `deploy` and `quickstart`, and by `edgecompress report`.

By default it holds the figures a person decides by (`DECIDING`), leaves out columns no row
has a figure for, and names a single target in the title instead of a column, so it reads in
an 80-column terminal; `--wide` shows every headline column (report.md and report.html always do).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from edgecompress.reporting.headline import HeadlineColumn, headline_columns, report_title, stand_ins

#: the default table's columns: size, speed and accuracy against the baseline, and the verdict's mark; the
#: accuracy pair stands for the task's own figures (tasks/registry.py: the columns shown in a terminal)
DECIDING = (
    "artifact",
    "target",
    "file_bytes",
    "smaller_x_file",
    "latency_median_ms",
    "instructions_median",
    "speedup_x",
    "accuracy",
    "accuracy_delta_points",
)
#: shorter headers for the default table, on two lines where that keeps it in 80 columns; --wide keeps the report's own
SHORT_TITLES = {
    "file_bytes": "size",
    "smaller_x_file": "smaller",
    "latency_median_ms": "median\nms",
    "instructions_median": "instruc-\ntions",
    "speedup_x": "speed-\nup",
    "accuracy_delta_points": "Δ\naccuracy",
    "metric_delta": "Δ",
    "sqnr_db": "SQNR",
    "agreement": "agree-\nment",
}
MARKS = {"recommended": "★", "passes": "✓", "fails": "✗", "baseline": "·"}
LEGEND = "★ recommended  ✓ passes every rule  ✗ fails a rule  · the baseline ({baseline})"


class FittedTable(Table):
    """A table that, when it must be narrower than its cells, narrows columns no further than their
    longest word (a no_wrap column not at all): words wrap whole instead of being cut with '…',
    which Rich's own shrinking does. Columns named in `optional` are left out, in that order, when
    the words would not fit otherwise; only when even that cannot fit does Rich decide."""

    def __init__(self, *args: Any, optional: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.optional = optional
        self.settings = (args, kwargs)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table: Table = self
        dropped = list(self.optional)
        widths = _fitted_widths(table, console, options)
        while widths == [] and dropped:
            table = self._without(dropped.pop(0), table)
            widths = _fitted_widths(table, console, options)
        for column, width in zip(table.columns, widths or []):
            column.width = width
        yield from Table.__rich_console__(table, console, options)

    def _without(self, header: str, table: Table) -> Table:
        """The same table, one column less (built anew: a column's place is part of Rich's layout)."""
        args, kwargs = self.settings
        narrower = Table(*args, **kwargs)
        kept = [column for column in table.columns if column.header != header]
        for column in kept:
            narrower.add_column(
                column.header, justify=column.justify, no_wrap=column.no_wrap, min_width=column.min_width
            )
        for cells in zip(*(list(column.cells) for column in kept)):
            narrower.add_row(*cells)
        narrower.caption, narrower.caption_justify = table.caption, table.caption_justify
        return narrower


def _fitted_widths(table: Table, console: Console, options: ConsoleOptions) -> list[int] | None:
    """Content widths that fit options.max_width without breaking a word; None when the natural widths
    fit already, [] when not even the longest words fit."""
    lows, highs = [], []
    for column in table.columns:
        sizes = [Measurement.get(console, options, cell) for cell in [column.header, *column.cells]]
        high = max(size.maximum for size in sizes)
        low = high if column.no_wrap else max([size.minimum for size in sizes] + [column.min_width or 0])
        lows.append(low)
        highs.append(high)
    room = options.max_width - (len(table.columns) - 1) * sum(table.padding[1::2])
    if sum(highs) <= room:
        return None
    if sum(lows) > room:
        return []
    spare, slack = room - sum(lows), [high - low for low, high in zip(lows, highs)]
    shares = [spare * part // max(sum(slack), 1) for part in slack]
    return [low + share for low, share in zip(lows, shares)]


def compact_table(title: str | Text | None = None, **options: Any) -> Table:
    """The house style of a terminal table: a bold header, no borders, one space between columns, so
    the width goes to the cells (an 80-column terminal keeps whole words and whole names)."""
    return FittedTable(
        title=Text(title) if isinstance(title, str) else title,
        box=None,
        pad_edge=False,
        padding=(0, 1, 0, 0),
        title_justify="left",
        header_style="bold underline",
        **options,
    )


def render_summary(report: dict[str, Any], *, wide: bool = False) -> Group:
    """One row per artifact and target, and the legend of the verdict marks. Every cell is plain text:
    a path or an artifact name that looks like console markup is shown as written."""
    rows = report["comparison"]
    targets = list(dict.fromkeys(row["target"] for row in rows))
    columns = [
        column
        for column in _columns(wide, report)
        if any(row.get(column.key) is not None for row in rows) and not (column.key == "target" and len(targets) == 1)
    ]
    title = report_title(report)
    if len(targets) == 1 and not stand_ins(report):
        title += f", measured on {targets[0]}"
    table = compact_table(title)
    marks = verdict_marks(report)
    for column in columns:
        short = SHORT_TITLES.get(column.key, column.title)
        header = column.title if wide else (f"Δ\n{column.title[2:]}" if short == "Δ" else short)
        longest = max((len(column.format(row.get(column.key))) for row in rows), default=0)
        # names are typed (ship, report --seed-run): never cut; figures never wrap
        table.add_column(
            header, justify="right" if column.numeric else "left", no_wrap=True, min_width=min(longest, 40)
        )
    if marks:
        table.add_column("", no_wrap=True)
    for row in rows:
        cells = [Text(column.format(row.get(column.key))) for column in columns]
        if marks:
            cells.append(Text(marks.get((row["artifact"], row["target"]), "")))
        table.add_row(*cells)
    if not marks:
        return Group(table, Text(f"Baseline: {report['baseline']}", style="dim"))
    return Group(table, Text(LEGEND.format(baseline=report["baseline"]), style="dim"))


def _columns(wide: bool, report: dict[str, Any]) -> list[HeadlineColumn]:
    """Every headline column (--wide) or the deciding ones, the task's figures in the accuracy pair's place."""
    from edgecompress.tasks.scoring import task_of

    task = task_of(report)
    columns = headline_columns(task)
    if wide:
        return list(columns)
    by_key = {column.key: column for column in columns}
    own = [column.key for column in columns if column.key in {c.key for c in task.columns} and column.terminal]
    keys = [key for key in DECIDING if key not in ("accuracy", "accuracy_delta_points")]
    position = keys.index("speedup_x") + 1
    return [by_key[key] for key in [*keys[:position], *own, *keys[position:]] if key in by_key]


def verdict_marks(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(artifact, target) -> ★ / ✓ / ✗ / · from the verdict; empty when the report has none."""
    verdict = report.get("verdict") or {}
    recommended = verdict.get("recommended")
    marks: dict[tuple[str, str], str] = {}
    for per_target in verdict.get("targets") or []:
        for entry in per_target.get("artifacts") or []:
            key = (entry["artifact"], per_target["target"])
            if entry["artifact"] == recommended:
                marks[key] = MARKS["recommended"]
            elif entry.get("role") == "baseline":
                marks[key] = MARKS["baseline"]
            else:
                marks[key] = MARKS["passes"] if entry.get("passed") else MARKS["fails"]
    return marks


def render_verdict(report: dict[str, Any]) -> RenderableType:
    """The verdict under the table: the recommendation (or why there is none), then the others' first failures."""
    from edgecompress.decision.verdict import summary_lines

    verdict = report.get("verdict")
    if not verdict:
        return Text("No verdict: this report predates acceptance rules; `edgecompress report RUN_DIR` judges it.")
    lines = summary_lines(verdict)
    head = Text.assemble(("Verdict: ", "bold green" if verdict.get("recommended") else "bold red"), lines[0])
    # the lines about the other artifacts are indented as a whole, so a wrapped one stays under its name
    rest = [Padding(Text(line.strip()), (0, 0, 0, 2)) if line.startswith("  ") else Text(line) for line in lines[1:]]
    return Group(head, *rest)
