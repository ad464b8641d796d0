"""Reports people read: report.md and a self-contained report.html, with figures, per run.

    from edgecompress.reporting import write_all, to_json_summary
    rendered = write_all(run_dir)            # completes report.json, draws figures, writes .md/.html
    print(json.dumps(to_json_summary(rendered.report)))

Modules: schema (report.json: build, complete, migrate), document (the report as data),
content (what a run's report says), headline (the table's columns), formatting (how numbers
look), per_class (per-class impact and disagreements), plots and figures (PNGs), markdown /
html / terminal (writers), compare (several runs side by side), summary (--json), run_files
(the files next to report.json). matplotlib loads only when a figure is drawn.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecompress.reporting.summary import to_json_summary
from edgecompress.run_folder import json_default, write_atomically
from edgecompress.run_layout import LAYOUT, final_name


@dataclass
class Rendered:
    """What `write_all` produced."""

    run_dir: Path
    report: dict[str, Any]  # the completed report.json
    markdown: Path
    html: Path
    figures: dict[str, Path] = field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
        return [self.markdown, self.html, *self.figures.values()]


def write_all(
    run_dir: str | Path,
    *,
    progress: Callable[[str], None] | None = None,
    run_name: str | None = None,
    judging: Any = None,
) -> Rendered:
    """Complete report.json from the files beside it, then write figures, report.md and report.html.

    Optional sections (significance, plan, per-sample predictions, latency samples, eval
    images) are shown when their files exist and silently left out when they do not; a
    file that exists but cannot be used is named under "Left out" in the report. The heading
    names the run `run_name` (default: the folder's name without .partial / .failed).
    `judging` (decision.judging.Judging) re-judges the verdict under overridden rules.
    """
    from edgecompress.reporting import html, markdown
    from edgecompress.reporting.content import build_document
    from edgecompress.reporting.figures import draw_run_figures
    from edgecompress.reporting.run_files import RunFiles
    from edgecompress.reporting.schema import complete_report, load_report

    run_dir = Path(run_dir)
    files = RunFiles(run_dir)
    report = complete_report(load_report(run_dir), run_dir, judging=judging)
    figures = draw_run_figures(report, files, progress=progress)
    report["report_notes"] = list(dict.fromkeys([*report["report_notes"], *files.problems]))
    write_atomically(run_dir / LAYOUT.report, (json.dumps(report, indent=2, default=json_default) + "\n").encode())
    document = build_document(report, figures, run_name=run_name or final_name(run_dir.name))
    md_path, html_path = run_dir / LAYOUT.markdown, run_dir / LAYOUT.html
    write_atomically(md_path, markdown.render(document, base=run_dir).encode("utf-8"))
    write_atomically(html_path, html.render(document).encode("utf-8"))
    return Rendered(run_dir=run_dir, report=report, markdown=md_path, html=html_path, figures=figures)


__all__ = ["Rendered", "to_json_summary", "write_all"]
