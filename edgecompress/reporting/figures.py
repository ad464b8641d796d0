"""Which figures a run's report gets, drawn from report.json and the files next to it.

Every figure is optional: no significance section, no ID profile; no per-sample
predictions, no disagreement grid. Keys name figures for `content.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from edgecompress.reporting import plots
from edgecompress.reporting.per_class import disagreement_grid
from edgecompress.reporting.run_files import RunFiles
from edgecompress.run_layout import LAYOUT

log = logging.getLogger("edgecompress.reporting")


def safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in text)


def _per_class_change(block: dict[str, Any], path: Path) -> Path | None:
    return plots.per_class_change(
        block["classes"],
        list(block["compressed"]),
        path,
        title=f"Recall change per class against {block['baseline']} on {block['target']}",
    )


def _disagreements(inputs: Any, found: dict[str, Any], block: dict[str, Any], name: str, path: Path) -> Path | None:
    return disagreement_grid(inputs, found["examples"], baseline=block["baseline"], artifact=name, path=path)


def pair_label(artifact: str, target: str, targets: list[str]) -> str:
    """'ptq-int8' on a single target, 'ptq-int8@rpi' when several targets share a plot."""
    return artifact if len(targets) < 2 else f"{artifact}@{target}"


def draw_run_figures(report: dict[str, Any], files: RunFiles, *, progress: Any = None) -> dict[str, Path]:
    """Draw every figure the report can have into RUN/figures/; returns {key: png path}."""
    out = files.path / LAYOUT.figures
    targets = list(dict.fromkeys(m["target"] for m in report["measurements"]))
    title = f"{Path(report['model']['path']).name} for {report['profile']['name']}"
    jobs: list[tuple[str, Callable[[Path], Path | None]]] = [
        (
            "size_accuracy",
            lambda path: plots.size_vs_accuracy(
                _size_points(report, targets), path, title=f"{title}: size vs accuracy"
            ),
        ),
        (
            "latency",
            lambda path: plots.latency_distribution(
                _latency_samples(report, files, targets), path, title=f"{title}: latency per inference"
            ),
        ),
        ("plan", lambda path: plots.plan_layers(report["plan"], path) if report.get("plan") else None),
    ]
    for block in report.get("per_class") or []:
        jobs.append((f"per_class:{block['target']}", partial(_per_class_change, block)))
    grids = [
        (block, name, summary["disagreements"])
        for block in report.get("per_class") or []
        for name, summary in block["compressed"].items()
        if (summary.get("disagreements") or {}).get("examples")
    ]
    inputs = files.eval_inputs() if grids else None
    for block, name, found in grids if inputs is not None else []:
        jobs.append((f"disagreements:{name}@{block['target']}", partial(_disagreements, inputs, found, block, name)))

    figures: dict[str, Path] = {}
    existing_profile = files.id_profile_png()
    if existing_profile is not None:
        figures["id_profile"] = existing_profile  # drawn by the significance analysis itself
    elif report.get("significance"):
        jobs.append(("id_profile", lambda path: plots.id_profile(report["significance"], path)))
    for key, draw in jobs:
        path = out / f"{safe_name(key.replace(':', '-'))}.png"
        if progress is not None:
            progress(key)
        try:
            drawn = draw(path)
        except Exception as error:  # noqa: BLE001 - one figure failing must not cost the whole report
            log.warning("figure %s could not be drawn: %s", key, error)
            files.note(f"figure {key} could not be drawn ({type(error).__name__}: {error})")
            continue
        if drawn is not None:
            figures[key] = drawn
    return figures


def _size_points(report: dict[str, Any], targets: list[str]) -> list[plots.SizePoint]:
    return [
        plots.SizePoint(
            label=pair_label(row["artifact"], row["target"], targets),
            file_bytes=row["file_bytes"],
            accuracy=row.get("accuracy"),
            bitpacked_bytes=row.get("bitpacked_bytes"),
            group=row["artifact"],
        )
        for row in report["comparison"]
    ]


def _latency_samples(report: dict[str, Any], files: RunFiles, targets: list[str]) -> dict[str, list[float]]:
    found = {}
    for m in report["measurements"]:
        samples = files.latency_samples(m)
        if samples:
            found[pair_label(m["artifact"], m["target"], targets)] = samples
    return found
