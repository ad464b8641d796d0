"""A PNG of the ID profile: the shape of the curve and where it crosses the threshold.

Top: ID per representation with its subsample spread. Bottom: |delta ID| per layer against
the threshold delta, with the layers kept at higher precision marked, so the figure shows
at a glance both the rise-then-fall of the profile and which verdicts are borderline.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgecompress.analysis.significance import LayerSignificance, SignificanceProfile

COLOURS = {"significant": "#c0392b", "kept": "#2471a3", "other": "#7f8c8d"}
LEGEND = {"significant": "significant (|dID| > delta)", "kept": "first / last layer (kept)", "other": "compressible"}


def plot_id_profile(profile: SignificanceProfile, path: Path) -> Path:
    """Draw `profile` to `path` (PNG) without a display; return the path."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and boards; must precede pyplot
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    names = [layer.name for layer in profile.layers]
    positions = list(range(len(names)))
    ids = [layer.id for layer in profile.layers]
    spreads = [layer.id_std for layer in profile.layers]
    label = (
        "TwoNN intrinsic dimension"
        if profile.method == "twonn"
        else f"PCA components ({profile.variance:.0%} variance)"
    )

    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(max(6.0, 0.9 * len(names) + 2), 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    top.errorbar(positions, ids, yerr=spreads, fmt="-o", color="black", ecolor="grey", capsize=4)
    top.fill_between(
        positions,
        [i - s for i, s in zip(ids, spreads)],
        [i + s for i, s in zip(ids, spreads)],
        color="grey",
        alpha=0.2,
        linewidth=0,
    )
    top.set_ylabel(label)
    top.set_title(
        f"{profile.model_name or 'model'}: ID profile on {profile.n_samples} samples\n"
        f"error bars: std over {profile.n_subsamples} half-size subsamples",
        fontsize=10,
    )
    top.grid(alpha=0.3)

    layers = profile.layers[1:]
    bottom.bar(positions[1:], [layer.delta_id for layer in layers], color=[_colour(layer) for layer in layers])
    threshold = bottom.axhline(profile.delta, color=COLOURS["significant"], linestyle="--")
    legend = {f"threshold delta = {profile.delta:g}": threshold}
    legend.update({text: Patch(color=COLOURS[key]) for key, text in LEGEND.items()})
    bottom.set_ylabel("|delta ID|")
    bottom.legend(legend.values(), legend.keys(), loc="upper left", fontsize=8)
    bottom.grid(alpha=0.3, axis="y")
    bottom.set_xticks(positions, names, rotation=30, ha="right")

    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _colour(layer: LayerSignificance) -> str:
    if layer.significant:
        return COLOURS["significant"]
    return COLOURS["kept"] if layer.kept_high_precision else COLOURS["other"]
