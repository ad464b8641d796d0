"""The terminal view of a significance profile: one row per representation."""

from __future__ import annotations

from typing import Literal

from rich.table import Table
from rich.text import Text

from edgecompress.analysis.significance import LayerSignificance, SignificanceProfile


def render_table(profile: SignificanceProfile) -> Table:
    """Layer, output shape, ID +- spread, |delta ID|, verdict and precision, as a rich Table."""
    measure = "ID" if profile.method == "twonn" else f"PCA {profile.variance:.0%}"
    table = Table(
        title=f"Layer significance of {profile.model_name or 'the model'} "
        f"({profile.n_samples} samples, δ = {profile.delta:g})",
        caption=f"± is the std over {profile.n_subsamples} half-size subsamples; "
        "'?' marks a verdict within that spread of δ.",
    )
    columns: list[tuple[str, Literal["left", "center", "right"], bool]] = [
        ("layer", "left", True),
        ("type", "left", False),
        ("output", "left", False),
        (f"{measure} ± spread", "right", True),
        ("|ΔID|", "right", True),
        ("signif.", "center", True),
        ("precision", "left", False),
    ]
    for header, justify, no_wrap in columns:
        table.add_column(header, justify=justify, no_wrap=no_wrap)
    edges = {1: "first", len(profile.layers) - 1: "last"}
    for index, layer in enumerate(profile.layers):
        table.add_row(
            layer.name,
            layer.class_name,
            "x".join(str(dim) for dim in layer.output_shape),
            f"{layer.id:.1f} ± {layer.id_std:.1f}",
            "" if layer.delta_id is None else f"{layer.delta_id:.1f}",
            _verdict(layer),
            _precision(layer, edges.get(index, "")),
            style="bold" if layer.high_precision else None,
        )
    return table


def _verdict(layer: LayerSignificance) -> Text | str:
    if layer.is_input:
        return "-"
    verdict = Text("yes", style="red") if layer.significant else Text("no")
    return verdict if layer.robust else verdict + " ?"


def _precision(layer: LayerSignificance, edge: str) -> str:
    if layer.is_input:
        return "reference"
    if layer.kept_high_precision:
        return f"high: {edge}"
    return "high" if layer.significant else "compress"
