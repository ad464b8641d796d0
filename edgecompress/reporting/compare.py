"""Several runs side by side: the same model on different boards, or different recipes for one.

Each run keeps its own baseline (ratios and accuracy changes are against the baseline of
the run they belong to), so runs with different models can still share one table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecompress.errors import EdgeCompressError
from edgecompress.reporting import formatting as fmt
from edgecompress.reporting import plots
from edgecompress.reporting.document import Bullets, Cell, Column, Document, Figure, Section, Table, cell
from edgecompress.reporting.headline import HeadlineColumn, headline_columns, tone_of
from edgecompress.reporting.run_files import RunFiles
from edgecompress.reporting.summary import to_json_summary

COMPARISON_SCHEMA = "edgecompress.comparison"
MARKDOWN_FILE, HTML_FILE, FIGURES_DIR = "compare.md", "compare.html", "compare-figures"

#: Headline columns shown per row of the side-by-side table (the run and artifact come first); the
#: accuracy pair stands for the task's own figures when every run has one task (tasks/registry.py).
COLUMNS = (
    "file_bytes",
    "bitpacked_bytes",
    "smaller_x_file",
    "latency_median_ms",
    "latency_p90_ms",
    "speedup_x",
    "peak_rss_bytes",
    "accuracy",
    "accuracy_delta_points",
    "runtime",
)

#: The figures compare.md and compare.html show below the side-by-side table, and their captions.
FIGURE_CAPTIONS = {
    "size_accuracy": "Accuracy against size for every artifact of every run (hollow: bit-packed).",
    "latency": "Every timed inference of every artifact.",
}


@dataclass
class Run:
    label: str  # the folder name, unique among the runs compared
    short: str  # 'R1', 'R2', ...: keeps tables and figures readable; the Runs section maps it back
    path: Path
    report: dict[str, Any]
    files: RunFiles


@dataclass
class Comparison:
    runs: list[Run]
    document: Document | None = None
    figures: dict[str, Path] = field(default_factory=dict)

    def rows(self) -> list[tuple[Run, dict[str, Any]]]:
        return [(run, row) for run in self.runs for row in run.report["comparison"]]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": COMPARISON_SCHEMA,
            "schema_version": 1,
            "runs": [{"run": run.label, "run_dir": str(run.path), **to_json_summary(run.report)} for run in self.runs],
        }

    def table(self):  # noqa: ANN201 - rich Table
        """The side-by-side table for the terminal."""
        from rich.table import Table as RichTable

        columns = [c for c in _columns(self.runs) if c.terminal]
        table = RichTable(title=f"{len(self.runs)} runs side by side")
        for title in ("run", "artifact", "target"):
            table.add_column(title, no_wrap=True)
        for column in columns:
            table.add_column(column.title, justify="right" if column.numeric else "left")
        for run, row in self.rows():
            table.add_row(run.short, row["artifact"], row["target"], *(c.format(row.get(c.key)) for c in columns))
        table.caption = "\n".join(f"{run.short} = {run.path}" for run in self.runs)
        table.caption_justify = "left"
        return table

    def verdict_table(self):  # noqa: ANN201 - rich Table
        """The runs' verdicts side by side: what each would ship, under which rules."""
        from rich.table import Table as RichTable
        from rich.text import Text

        table = RichTable(title="Verdicts")
        for title in ("run", "recommended", "why / what stood in the way", "rules"):
            table.add_column(title)
        for run, recommended, reason, rules in verdict_rows(self.runs):
            table.add_row(Text(run), Text(recommended), Text(reason), Text(rules))
        return table


def load_runs(run_dirs: Sequence[str | Path]) -> list[Run]:
    """Every run folder's report, completed from its files; the same folder twice is refused."""
    from edgecompress.reporting.schema import complete_report, load_report

    if not run_dirs:
        raise EdgeCompressError("compare needs at least one run folder.", "Example: edgecompress compare runs/A runs/B")
    paths = [Path(p) for p in run_dirs]
    resolved = [p.resolve() for p in paths]
    duplicates = sorted({str(p) for p in paths if resolved.count(p.resolve()) > 1})
    if duplicates:
        raise EdgeCompressError(
            f"The same run folder is given more than once: {', '.join(duplicates)}.", "Name each run folder once."
        )
    labels = _labels(paths)
    runs = []
    for number, (label, path) in enumerate(zip(labels, paths), start=1):
        files = RunFiles(path)
        runs.append(Run(label, f"R{number}", path, complete_report(load_report(path), path), files))
    return runs


def _labels(paths: list[Path]) -> list[str]:
    """Folder names, or parent/name where two runs share a folder name."""
    names = [p.name for p in paths]
    return [p.name if names.count(p.name) == 1 else f"{p.parent.name}/{p.name}" for p in paths]


def _columns(runs: list[Run]) -> list[Any]:
    """COLUMNS, with the runs' task figures in the accuracy slot (a generic figure when the tasks differ)."""
    from edgecompress.tasks.scoring import task_of

    tasks = {task_of(run.report).name: task_of(run.report) for run in runs}
    if len(tasks) == 1:
        (task,) = tasks.values()
        own = [c for c in headline_columns(task) if c.key not in _BASE_KEYS and c.terminal]
    else:
        own = [
            HeadlineColumn("metric", "task figure", fmt.figure, "each run's task figure (accuracy, MAE or ROC AUC)"),
            HeadlineColumn("metric_delta", "Δ task figure", fmt.signed_figure, "its change against the run's baseline"),
            HeadlineColumn("sqnr_db", "SQNR", fmt.decibels, "outputs against the baseline's"),
        ]
    by_key = {c.key: c for c in headline_columns()}
    columns: list[Any] = []
    for key in COLUMNS:
        if key == "accuracy":
            columns += own
        elif key != "accuracy_delta_points":
            columns.append(by_key[key])
    return columns


_BASE_KEYS = frozenset(c.key for c in headline_columns() if c.key not in ("accuracy", "accuracy_delta_points"))


def compare_runs(run_dirs: Sequence[str | Path], *, output: Path | None = None) -> Comparison:
    """Load the runs; with `output`, also draw the figures and build the document to write there."""
    comparison = Comparison(load_runs(run_dirs))
    if output is not None:
        comparison.figures = _figures(comparison, Path(output) / FIGURES_DIR)
        comparison.document = _document(comparison)
    return comparison


def write_comparison(run_dirs: Sequence[str | Path], output: str | Path) -> tuple[Comparison, list[Path]]:
    """compare.md and a self-contained compare.html (plus figures) in `output`."""
    from edgecompress.reporting import html, markdown
    from edgecompress.run_folder import write_atomically

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    comparison = compare_runs(run_dirs, output=output)
    assert comparison.document is not None
    md_path, html_path = output / MARKDOWN_FILE, output / HTML_FILE
    write_atomically(md_path, markdown.render(comparison.document, base=output).encode("utf-8"))
    write_atomically(html_path, html.render(comparison.document).encode("utf-8"))
    return comparison, [md_path, html_path, *comparison.figures.values()]


def _figures(comparison: Comparison, out: Path) -> dict[str, Path]:
    points = [
        plots.SizePoint(
            label=f"{run.short} {row['artifact']}@{row['target']}",
            file_bytes=row["file_bytes"],
            accuracy=row.get("accuracy"),
            bitpacked_bytes=row.get("bitpacked_bytes"),
            group=run.short,
        )
        for run, row in comparison.rows()
    ]
    samples = {}
    for run in comparison.runs:
        for m in run.report["measurements"]:
            values = run.files.latency_samples(m)
            if values:
                samples[f"{run.short} {m['artifact']}@{m['target']}"] = values
    drawn = {
        "size_accuracy": plots.size_vs_accuracy(points, out / "size_accuracy.png", title="Size vs accuracy, every run"),
        "latency": plots.latency_distribution(samples, out / "latency.png", title="Latency per inference, every run"),
    }
    return {key: path for key, path in drawn.items() if path is not None}


def verdict_rows(runs: list[Run]) -> list[tuple[str, str, str, str]]:
    """(run, recommended, reason, rules) per run; a run without a verdict says so."""
    rows = []
    for run in runs:
        verdict = run.report.get("verdict")
        if not verdict:
            rows.append((run.short, fmt.DASH, "no verdict in this report", fmt.DASH))
            continue
        rules = f"{verdict.get('rules_source')}: {'; '.join(verdict.get('rules_text') or [])}"
        rows.append((run.short, verdict.get("recommended") or "none passes", verdict.get("reason") or "", rules))
    return rows


def _document(comparison: Comparison) -> Document:
    """compare.md and compare.html's content: verdicts first, then what the runs are, the table, the classes hurt."""
    blocks: list[Any] = [Bullets(_best(comparison)), _side_by_side(comparison)]
    blocks += [
        Figure(comparison.figures[key], caption, alt=caption)
        for key, caption in FIGURE_CAPTIONS.items()
        if key in comparison.figures
    ]
    hurt = _hurt(comparison)
    sections = [
        Section("Verdicts", [_verdicts(comparison)], id="verdicts-section"),
        Section("Runs", [_runs(comparison)], id="runs"),
        Section("Side by side", blocks, id="side-by-side-section"),
    ]
    if hurt.items:
        sections.append(Section("Classes hurt most", [hurt], id="hurt"))
    return Document(
        title=f"{len(comparison.runs)} runs side by side",
        subtitle=", ".join(run.label for run in comparison.runs),
        sections=sections,
    )


def _side_by_side(comparison: Comparison) -> Table:
    """Every artifact of every run in one table, each figure against its own run's baseline."""
    columns = _columns(comparison.runs)
    return Table(
        columns=[Column("run"), Column("artifact"), Column("target")]
        + [Column(c.title, numeric=c.numeric, help=c.help) for c in columns],
        rows=[
            [Cell(run.short), Cell(row["artifact"]), Cell(row["target"])]
            + [
                cell(
                    row.get(c.key),
                    c.format,
                    key=f"{run.label}/{row['artifact']}@{row['target']}:{c.key}",
                    tone=tone_of(c, row.get(c.key)),
                )
                for c in columns
            ]
            for run, row in comparison.rows()
        ],
        caption="Ratios and changes are against each run's own baseline on the same target.",
        id="side-by-side",
    )


def _runs(comparison: Comparison) -> Bullets:
    """What each short name (R1, R2, ...) stands for: model, profile, baseline, targets, date."""
    return Bullets(
        [
            f"{run.short} = {run.label}: {Path(run.report['model']['path']).name} for {run.report['profile']['name']}, baseline {run.report['baseline']}, "
            f"targets {', '.join(dict.fromkeys(r['target'] for r in run.report['comparison']))}, created {run.report.get('created', '?')}"
            for run in comparison.runs
        ]
    )


def _hurt(comparison: Comparison) -> Bullets:
    """Per compressed artifact, the classes that lost most recall, so a loss hidden by the mean shows."""
    return Bullets(
        [
            f"{run.short} {name} on {block['target']}: "
            + (
                ", ".join(f"{h['name']} {fmt.points(h['recall_change_points'])}" for h in summary["hurt_most"])
                or "no class lost recall"
            )
            + (
                f"; disagrees with its baseline on {summary['disagreements']['count']} of {summary['disagreements']['n']} examples"
                if summary.get("disagreements")
                else ""
            )
            for run in comparison.runs
            for block in run.report.get("per_class") or []
            for name, summary in block["compressed"].items()
        ]
    )


def _verdicts(comparison: Comparison) -> Table:
    """Each run's verdict under its own rules, a run where nothing passes marked bad."""
    return Table(
        [Column("run"), Column("recommended"), Column("why / what stood in the way"), Column("rules")],
        [
            [
                Cell(run),
                Cell(recommended, tone="" if recommended != "none passes" else "bad"),
                Cell(reason),
                Cell(rules),
            ]
            for run, recommended, reason, rules in verdict_rows(comparison.runs)
        ],
        caption="Each run judged under its own rules (see each run's report for the figures).",
        id="verdicts",
    )


def _best(comparison: Comparison) -> list[str]:
    """The winners per figure, so the table need not be read to find them."""
    rows = comparison.rows()
    picks = (
        ("Smallest file", "file_bytes", min, fmt.human_bytes),
        ("Smallest bit-packed", "bitpacked_bytes", min, fmt.human_bytes),
        ("Fastest median", "latency_median_ms", min, lambda v: f"{fmt.milliseconds(v)} ms"),
        ("Most accurate", "accuracy", max, fmt.percent),
    )
    lines = []
    for title, key, choose, show in picks:
        candidates = [(row[key], run, row) for run, row in rows if row.get(key) is not None]
        if candidates:
            value, run, row = choose(candidates, key=lambda item: item[0])
            lines.append(f"{title}: {run.short} {row['artifact']}@{row['target']} ({show(value)})")
    return lines
