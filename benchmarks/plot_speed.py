"""Draw the accuracy-vs-MACs and accuracy-vs-latency curves that bench_speed.py measured.

    python benchmarks/plot_speed.py                 # every benchmarks/results/speed*.json
    python benchmarks/plot_speed.py results.json    # one file

One PNG per results file, next to it (speed.json -> speed_curves.png): for each pair of
classes, accuracy against MACs and against 1-thread latency, one line per method (mean over
seeds, error bars one std), with the float32 and post-training int8 models as reference marks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
STYLE = {
    "twonn-prune": ("#0072b2", "o", "ID-guided widths (twonn-prune)"),
    "uniform-prune": ("#e69f00", "s", "uniform widths, equal MACs (uniform-prune)"),
    "lowrank": ("#009e73", "^", "low rank (energy 0.4-0.8)"),
}


def plot(results: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401 - used through matplotlib.ticker

    summary = json.loads(results.read_text())["summary"]
    figure, axes = plt.subplots(len(summary), 2, figsize=(11, 4.2 * len(summary)), squeeze=False)
    for row, (pair, part) in enumerate(summary.items()):
        table = part["table"]
        for column, (key, label, scale) in enumerate(
            (
                ("macs", "MACs per inference (millions)", 1e-6),
                ("latency_median_ms", "median latency, 1 thread (ms)", 1.0),
            )
        ):
            axis = axes[row][column]
            for method, (colour, marker, name) in STYLE.items():
                points = sorted(
                    (entry for entry in table.values() if entry["method"] == method), key=lambda e: e[key]["mean"]
                )
                if not points:
                    continue
                axis.errorbar(
                    [p[key]["mean"] * scale for p in points],
                    [p["accuracy_pct"]["mean"] for p in points],
                    yerr=[p["accuracy_pct"]["std"] for p in points],
                    color=colour,
                    marker=marker,
                    label=name,
                    capsize=3,
                    linewidth=1.5,
                )
            for reference, marker in (("fp32", "*"), ("ptq-int8", "D")):
                if reference in table:
                    entry = table[reference]
                    axis.scatter(
                        [entry[key]["mean"] * scale],
                        [entry["accuracy_pct"]["mean"]],
                        color="black",
                        marker=marker,
                        zorder=5,
                        label=f"{reference} (no fine-tuning)",
                    )
            axis.set_xscale("log")
            plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}")
            axis.xaxis.set_major_formatter(plain)
            axis.xaxis.set_minor_formatter(plain)
            axis.tick_params(axis="x", which="minor", labelsize=7)
            axis.set_xlabel(label)
            axis.set_ylabel("accuracy % (runner, LiteRT)")
            axis.set_title(f"{pair}: accuracy vs {'MACs' if column == 0 else 'latency'}")
            axis.grid(alpha=0.3)
        axes[row][0].legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    out = results.with_name(results.stem + "_curves.png")
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def main() -> None:
    files = [Path(arg) for arg in sys.argv[1:]] or sorted((ROOT / "results").glob("speed*.json"))
    for results in files:
        print(f"wrote {plot(results)}")


if __name__ == "__main__":
    main()
