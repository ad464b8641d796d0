"""`edgecompress report RUN_DIR` and `edgecompress compare RUN_DIR...`.

Progress and messages go to stderr; stdout carries only the table, or with --json only the
JSON, so scripts and CI can pipe it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from edgecompress.cli import rules as rule_options
from edgecompress.cli.console import print_line, stdout_console, write_stdout
from edgecompress.cli.options import OUTPUT, RULES

JSON_HELP = "Print one machine-readable JSON document on stdout instead of the table (an error too)."
QUIET_HELP = "Print nothing but errors (and the JSON with --json)."
WIDE_HELP = "Show every column of the results table (report.md and report.html always have them all)."


@rule_options.with_rule_options(after="wide")
def report(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run folder written by `edgecompress deploy`."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP, rich_help_panel=OUTPUT),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP, rich_help_panel=OUTPUT),
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP, rich_help_panel=OUTPUT),
    seed_runs: list[Path] = typer.Option(
        [],
        "--seed-run",
        help="A run of the same model and profile with another --seed; repeat. Impacted classes then come from Welch's t-test over the seeds.",
        show_default="none",
        rich_help_panel=RULES,
    ),
    **rules: Any,
) -> None:
    """Re-render report.md, report.html and the figures of a run, judging it again (under other rules if given) without measuring."""
    from edgecompress.cli.progress import Progress
    from edgecompress.decision.gate import enforce
    from edgecompress.decision.judging import Judging, rules_for
    from edgecompress.reporting import to_json_summary, write_all
    from edgecompress.reporting.schema import load_report
    from edgecompress.reporting.terminal import render_summary, render_verdict

    judging = Judging(
        rule_options.overrides({**locals(), **rules}),
        where="`edgecompress report`",
        seed_reports=_seed_reports(run_dir, seed_runs),
    )
    rules_for(
        load_report(run_dir), judging
    )  # a wrong folder or impossible rules are refused before any progress bar starts
    progress = Progress(quiet=quiet or as_json)
    with progress.task(f"Rendering {run_dir.name}") as advance:
        rendered = write_all(run_dir, progress=lambda figure: advance(0, detail=figure), judging=judging)
        advance(0, detail=f"{len(rendered.figures)} figures")
    if as_json:
        _print_json(to_json_summary(rendered.report))
    elif not quiet:
        stdout_console().print(render_summary(rendered.report, wide=wide))
        stdout_console().print(render_verdict(rendered.report))
        print_line(f"Report: {rendered.html}  ({rendered.markdown.name}, {len(rendered.figures)} figures)")
    if rules["gate"]:
        enforce(rendered.report["verdict"], run_dir)


def _seed_reports(run_dir: Path, seed_runs: list[Path]) -> tuple[dict, ...]:
    """The other seeds' completed reports, checked to be runs of the same model for the same profile."""
    from edgecompress.errors import EdgeCompressError
    from edgecompress.reporting.schema import complete_report, load_report

    own = load_report(run_dir)
    found = []
    for other in seed_runs:
        document = complete_report(load_report(other), other)
        same = document["profile"].get("name") == own["profile"].get("name") and [
            a["name"] for a in document["artifacts"]
        ] == [a["name"] for a in own["artifacts"]]
        if not same:
            raise EdgeCompressError(
                f"--seed-run {other} is not a run of the same profile with the same artifacts as {run_dir}.",
                "Pass runs of one `edgecompress deploy` command that differ only in --seed.",
            )
        found.append(document)
    return tuple(found)


def compare(
    run_dirs: list[Path] = typer.Argument(
        ..., metavar="RUN_DIR...", help="Run folders written by `edgecompress deploy` (usually two or more)."
    ),
    output: Optional[Path] = typer.Option(
        None,
        "--output",
        "-o",
        help="Also write compare.md, compare.html and figures into this folder.",
        show_default="none",
        rich_help_panel=OUTPUT,
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP, rich_help_panel=OUTPUT),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP, rich_help_panel=OUTPUT),
) -> None:
    """Put several runs side by side: sizes, latency and accuracy of every artifact."""
    from edgecompress.cli.progress import Progress
    from edgecompress.reporting.compare import compare_runs, write_comparison
    from edgecompress.reporting.schema import load_report

    for run_dir in run_dirs:
        load_report(run_dir)  # a wrong folder is refused before any progress bar starts
    progress = Progress(quiet=quiet or as_json)
    with progress.task(f"Comparing {len(run_dirs)} runs"):
        if output is not None:
            comparison, written = write_comparison(run_dirs, output)
        else:
            comparison, written = compare_runs(run_dirs), []
    if as_json:
        _print_json(comparison.to_json())
        return
    if not quiet:
        table = comparison.table()
        legend, table.caption = str(table.caption or ""), None  # run paths: whole lines, not a narrow caption
        stdout_console().print(table)
        for line in legend.splitlines():
            print_line(line)
        stdout_console().print(comparison.verdict_table())
        if written:
            progress.say(f"Comparison: {written[1]}  ({written[0].name}, {len(written) - 2} figures)")


def _print_json(document: dict) -> None:
    write_stdout(json.dumps(document, indent=2) + "\n")
