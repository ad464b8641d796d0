"""`edgecompress report RUN_DIR` and `edgecompress compare RUN_DIR...`.

Progress and messages go to stderr; stdout carries only the table, or with --json only the
JSON, so scripts and CI can pipe it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from edgecompress.cli.console import stdout_console

JSON_HELP = "Print a machine-readable JSON summary on stdout instead of the table."
QUIET_HELP = "Print nothing but errors (and the JSON with --json)."


def report(
    run_dir: Path = typer.Argument(..., help="A run folder written by `edgecompress deploy`."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Re-render report.md, report.html and the figures of a run from its report.json."""
    from edgecompress.reporting.schema import load_report
    from edgecompress.reporting.terminal import render_summary
    from edgecompress.reporting import to_json_summary, write_all
    from edgecompress.cli.progress import Progress

    load_report(run_dir)  # a wrong folder is refused before any progress bar starts
    progress = Progress(quiet=quiet or as_json)
    with progress.task(f"Rendering {run_dir.name}") as advance:
        rendered = write_all(run_dir, progress=lambda figure: advance(0, detail=figure))
        advance(0, detail=f"{len(rendered.figures)} figures")
    if as_json:
        _print_json(to_json_summary(rendered.report))
        return
    if not quiet:
        stdout_console().print(render_summary(rendered.report))
        progress.say(f"Report: {rendered.html}  ({rendered.markdown.name}, {len(rendered.figures)} figures)")


def compare(
    run_dirs: list[Path] = typer.Argument(..., help="Run folders written by `edgecompress deploy` (usually two or more)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write compare.md, compare.html and figures into this folder."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Put several runs side by side: sizes, latency and accuracy of every artifact."""
    from edgecompress.reporting.schema import load_report
    from edgecompress.reporting.compare import compare_runs, write_comparison
    from edgecompress.cli.progress import Progress

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
        stdout_console().print(comparison.table())
        if written:
            progress.say(f"Comparison: {written[1]}  ({written[0].name}, {len(written) - 2} figures)")


def _print_json(document: dict) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    sys.stdout.flush()
