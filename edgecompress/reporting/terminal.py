"""The table printed at the end of `deploy` and by `edgecompress report`."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from edgecompress.reporting.headline import headline_columns


def render_summary(report: dict[str, Any]) -> Table:
    """One row per artifact and target. Every cell is plain text: a path or an artifact name
    that looks like console markup is shown as written."""
    from edgecompress.tasks.scoring import task_of

    columns = [c for c in headline_columns(task_of(report)) if c.terminal]
    title = Text(f"{report['model']['path']} on {report['profile']['name']}  (baseline: {report['baseline']})")
    table = Table(title=title)
    for column in columns:
        table.add_column(column.title, justify="right" if column.numeric else "left", no_wrap=not column.numeric)
    for row in report["comparison"]:
        table.add_row(*(Text(column.format(row.get(column.key))) for column in columns))
    return table


def render_verdict(report: dict[str, Any]) -> Text:
    """The verdict under the table: the recommendation (or why there is none), then the others' first failures."""
    from edgecompress.decision.verdict import summary_lines

    verdict = report.get("verdict")
    if not verdict:
        return Text("No verdict: this report predates acceptance rules; `edgecompress report RUN_DIR` judges it.")
    lines = summary_lines(verdict)
    text = Text()
    text.append("Verdict: ", style="bold green" if verdict.get("recommended") else "bold red")
    text.append("\n".join(lines))
    return text
