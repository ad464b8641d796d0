"""The report's figures, as PNG files drawn with matplotlib's Agg backend (no display needed).

Each function takes plain data (what report.json holds), writes one PNG and returns its
path, so the same figure serves a run's report and the comparison of several runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: One colour per artifact / recipe, assigned in order of appearance (colour-blind safe: Okabe-Ito, without its yellow, which vanishes on white).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#999999")
DPI = 110


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend: reports are drawn on servers and in CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    pyplot().close(figure)
    return path


def _colours(names: list[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(dict.fromkeys(names))}


@dataclass(frozen=True)
class SizePoint:
    """One artifact on the size / accuracy plane."""

    label: str
    file_bytes: float
    accuracy: float | None
    bitpacked_bytes: float | None = None
    group: str = ""  # points of one group share a colour (a run, or an artifact)


def size_vs_accuracy(points: list[SizePoint], path: Path, *, title: str) -> Path | None:
    """Accuracy against file size (filled) and bit-packed size (hollow) for every artifact."""
    points = [p for p in points if p.accuracy is not None and p.file_bytes]
    if not points:
        return None
    plt = pyplot()
    colours = _colours([p.group or p.label for p in points])
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for p in points:
        colour = colours[p.group or p.label]
        y = 100 * (p.accuracy or 0.0)  # points without accuracy were left out above
        axis.scatter(p.file_bytes / 1024, y, s=60, color=colour, zorder=3)
        axis.annotate(p.label, (p.file_bytes / 1024, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
        if p.bitpacked_bytes:
            axis.scatter(p.bitpacked_bytes / 1024, y, s=60, facecolors="none", edgecolors=colour, zorder=3)
            axis.plot([p.bitpacked_bytes / 1024, p.file_bytes / 1024], [y, y], color=colour, linewidth=0.8, alpha=0.6)
    sizes = [p.file_bytes for p in points] + [p.bitpacked_bytes for p in points if p.bitpacked_bytes]
    if max(sizes) / min(sizes) > 20:
        axis.set_xscale("log")
    axis.set_xlabel("size (KiB): ● file on disk   ○ bit-packed weights")
    axis.set_ylabel("accuracy on the device (%)")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.margins(x=0.15, y=0.2)
    return _save(figure, path)


def latency_distribution(samples: dict[str, list[float]], path: Path, *, title: str) -> Path | None:
    """Box plot plus every timed sample, one row per artifact: spread matters as much as the median."""
    samples = {label: values for label, values in samples.items() if values}
    if not samples:
        return None
    plt = pyplot()
    labels = list(samples)
    figure, axis = plt.subplots(figsize=(7, 0.7 * len(labels) + 1.6))
    axis.boxplot(
        [samples[label] for label in labels], orientation="horizontal", tick_labels=labels, showfliers=False, widths=0.5
    )
    rng = np.random.default_rng(0)
    colours = _colours(labels)
    for row, label in enumerate(labels, start=1):
        values = np.asarray(samples[label])
        axis.scatter(
            values, row + rng.uniform(-0.15, 0.15, len(values)), s=8, alpha=0.5, color=colours[label], zorder=3
        )
    everything = np.concatenate([np.asarray(v) for v in samples.values()])
    if everything.min() > 0 and everything.max() / everything.min() > 50:
        axis.set_xscale("log")
    axis.set_xlabel("latency per inference, batch 1 (ms)")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3, axis="x")
    return _save(figure, path)


def per_class_change(classes: list[dict[str, Any]], artifacts: list[str], path: Path, *, title: str) -> Path | None:
    """Recall change per class (points) for each compressed artifact, against the baseline."""
    if not any(row["recall_change_points"].get(artifact) for row in classes for artifact in artifacts):
        return None  # nothing moved: an empty chart would only take space
    plt = pyplot()
    names = [row["name"] for row in classes]
    width = 0.8 / len(artifacts)
    figure, axis = plt.subplots(figsize=(min(16, max(6, 0.45 * len(names) * len(artifacts) + 2)), 3.6))
    colours = _colours(artifacts)
    positions = np.arange(len(names))
    for offset, artifact in enumerate(artifacts):
        changes = [row["recall_change_points"].get(artifact) or 0.0 for row in classes]
        axis.bar(
            positions + (offset - (len(artifacts) - 1) / 2) * width,
            changes,
            width,
            label=artifact,
            color=colours[artifact],
        )
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set_xticks(
        positions, names, rotation=45 if len(names) > 12 else 0, ha="right" if len(names) > 12 else "center", fontsize=8
    )
    axis.set_ylabel("recall change (points)")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3, axis="y")
    axis.legend(fontsize=8)
    return _save(figure, path)


def plan_layers(plan: dict[str, Any], path: Path) -> Path | None:
    """Per layer: float32 size (grey) and the plan's bit-packed estimate, coloured by recipe."""
    layers = plan.get("layers") or []
    if not layers:
        return None
    plt = pyplot()
    names = [layer["name"] for layer in layers]
    recipes = [layer.get("recipe", "?") for layer in layers]
    colours = _colours(recipes)
    float_bytes = [4 * (layer.get("parameters") or 0) / 1024 for layer in layers]
    planned = [(layer.get("estimated_bytes") or 0) / 1024 for layer in layers]
    figure, axis = plt.subplots(figsize=(7.5, 0.5 * len(layers) + 1.6))
    rows = np.arange(len(layers))[::-1]
    axis.barh(rows, float_bytes, color="#d5d8dc", label="float32 weights", height=0.7)
    for recipe in dict.fromkeys(recipes):
        chosen = [i for i, r in enumerate(recipes) if r == recipe]
        axis.barh(rows[chosen], [planned[i] for i in chosen], color=colours[recipe], height=0.45, label=recipe)
    for row, layer, size in zip(rows, layers, float_bytes):
        setting = layer.get("setting") or ""
        axis.annotate(f" {layer.get('recipe', '?')} {setting}".rstrip(), (size, row), va="center", fontsize=7)
    axis.set_yticks(rows, names, fontsize=8)
    axis.set_xlabel("KiB (bit-packed estimate vs float32)")
    axis.set_title(f"Plan: {plan.get('strategy', '')} - one recipe per layer", fontsize=10)
    axis.legend(fontsize=7, loc="lower right")
    axis.margins(x=0.25)
    axis.grid(alpha=0.3, axis="x")
    return _save(figure, path)


def id_profile(significance: dict[str, Any], path: Path) -> Path:
    """The TwoNN / PCA ID profile with its threshold, drawn by the analysis package itself."""
    from edgecompress.analysis.plot import plot_id_profile
    from edgecompress.analysis.significance import SignificanceProfile

    pyplot()
    return plot_id_profile(SignificanceProfile.from_dict(significance), Path(path))
