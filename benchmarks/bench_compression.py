"""Reproduce the reference compression table on CIFAR-10 binary tasks, and check our goals.

    python benchmarks/bench_compression.py                       # cat/dog + horse/frog, seeds 0 1 2
    python benchmarks/bench_compression.py --pairs cat,dog --seeds 0 --quick

Trains the reference CNN (Conv32-3x3 + pool, Conv64-3x3 + pool, Dense128, Dense16, one
sigmoid output: 545,889 parameters; Adam 1e-3, batch 64, dropout 0.1, early stopping),
then builds every setup of the reference table with edgecompress' own recipes and export,
measures each .tflite's accuracy in the real board-side runner (LiteRT, local target) on
the whole test split, and reports file, gzip and bit-packed sizes. Writes
benchmarks/results/compression.json (every run, mean +- std per setup, goals met or missed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from summaries import STD_DEFINITION, resummarise  # noqa: E402

#: setup -> (reference accuracy %, reference MB), from the study this project builds on
REFERENCE = {
    "base": (66.00, 2.0852),
    "ptq-int8": (63.70, 0.5271),
    "ptq-fp16": (64.65, 1.0453),
    "qat": (65.80, 0.5278),
    "clustering-ptq": (65.60, 0.1922),
    "cqat": (65.85, 0.2394),
    "twonn-mixed": (65.80, 0.1321),
    "twonn-cqat": (65.95, 0.1625),
}
#: setups built with a compression recipe (fine-tuned); the rest are conversions of the base model
TRAINED = ("qat", "clustering-ptq", "cqat", "twonn-mixed", "twonn-cqat")
#: our goals: (setup, minimum gzip compression vs our fp32 model, maximum accuracy loss in points)
GOALS = (("twonn-cqat", 12.8, 0.3), ("twonn-mixed", 16.0, 0.5))
MIB = 1024 * 1024


def reference_cnn(seed: int):  # noqa: ANN201
    from edgecompress._tf import keras

    k = keras()
    k.utils.set_random_seed(seed)
    layers = k.layers
    return k.Sequential(
        [
            layers.Input((32, 32, 3)),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.1),
            layers.Dense(16, activation="relu"),
            layers.Dropout(0.1),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="reference_cnn",
    )


def train_base(data, seed: int, max_epochs: int):  # noqa: ANN001, ANN201
    from edgecompress._tf import keras

    k = keras()
    model = reference_cnn(seed)
    assert model.count_params() == 545_889, model.count_params()
    model.compile(optimizer=k.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(
        data.x_train,
        data.y_train,
        batch_size=64,
        epochs=max_epochs,
        validation_split=0.1,
        verbose=0,
        callbacks=[k.callbacks.EarlyStopping(patience=3, restore_best_weights=True)],
    )
    return model


def measure(blob: bytes, eval_npz: Path, workdir: Path, name: str) -> dict:
    """Accuracy and latency of one .tflite in the real runner, plus its three sizes."""
    from edgecompress.export import bitpacked_size, gzip_bytes, tflite_weight_stats
    from edgecompress.targets import MeasureJob
    from edgecompress.targets.local import LocalTarget
    from edgecompress.targets.measurement_check import measure_checked

    path = workdir / f"{name}.tflite"
    path.write_bytes(blob)
    result = measure_checked(LocalTarget(), MeasureJob(model=path, eval_data=eval_npz, warmup=5, runs=30)).result
    packed = bitpacked_size(tflite_weight_stats(blob), tflite_bytes=blob)
    return {
        "accuracy_pct": 100 * result["accuracy"]["overall"],
        "file_bytes": len(blob),
        "gzip_bytes": gzip_bytes(blob),
        "bitpacked_bytes": packed["total_bytes"],
        "latency_median_ms": result["latency_ms"]["median"],
    }


def one_run(pair: list[str], seed: int, args: argparse.Namespace, cifar: Path) -> dict:
    from edgecompress._tf import quiet_native_output
    from edgecompress.analysis import analyze_model
    from edgecompress.compression import Knobs, run_baseline
    from edgecompress.data import load_dataset, write_eval_npz
    from edgecompress.export import to_tflite

    started = time.perf_counter()
    data = load_dataset(str(cifar), input_shape=(32, 32, 3), classes=pair, seed=seed)
    rng = np.random.default_rng(seed)
    calibration = data.x_train[rng.permutation(len(data.x_train))[:200]]
    rows, timings = {}, {}
    with tempfile.TemporaryDirectory() as tmp, quiet_native_output():
        work = Path(tmp)
        eval_npz = write_eval_npz(data, work / "eval.npz", output_kind="sigmoid")
        t = time.perf_counter()
        base = train_base(data, seed, args.max_epochs)
        timings["train_base_s"] = time.perf_counter() - t
        t = time.perf_counter()
        significance = analyze_model(base, data.x_train, delta=args.delta, n_samples=2000, seed=seed)
        timings["twonn_s"] = time.perf_counter() - t
        with quiet_native_output((1, 2)):
            blobs = {
                "base": to_tflite(base, mode="float32"),
                "ptq-int8": to_tflite(base, mode="int8", representative=calibration),
                "ptq-fp16": to_tflite(base, mode="fp16"),
            }
        for name in TRAINED:
            if args.setups and name not in args.setups:
                continue
            t = time.perf_counter()
            compressed = run_baseline(
                name,
                base,
                data,
                epochs=args.finetune_epochs,
                seed=seed,
                significance=significance,
                knobs=Knobs(clusters=args.clusters, bits=args.bits),
            )
            with quiet_native_output((1, 2)):
                blobs[name] = to_tflite(compressed.model, mode=compressed.export_mode, representative=calibration)
            timings[f"{name}_s"] = time.perf_counter() - t
        for name, blob in blobs.items():
            rows[name] = measure(blob, eval_npz, work, name)
    return {
        "pair": pair,
        "seed": seed,
        "rows": rows,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "significant_layers": [layer.name for layer in significance.layers if layer.significant],
        "id_profile": [{"layer": layer.name, "id": layer.id} for layer in significance.layers],
        "seconds": round(time.perf_counter() - started, 1),
    }


def summarise(runs: list[dict], clusters: int = 16) -> dict:
    summary = {}
    for pair in sorted({",".join(r["pair"]) for r in runs}):
        of_pair = [r for r in runs if ",".join(r["pair"]) == pair]
        table = {}
        for setup in REFERENCE:
            values = [r["rows"][setup] for r in of_pair if setup in r["rows"]]
            if not values:
                continue
            entry = {}
            for key in ("accuracy_pct", "file_bytes", "gzip_bytes", "bitpacked_bytes", "latency_median_ms"):
                series = [v[key] for v in values]
                entry[key] = {
                    "mean": statistics.fmean(series),
                    "std": statistics.stdev(series) if len(series) > 1 else 0.0,  # the sample std, as every benchmark
                }
            base = [r["rows"]["base"] for r in of_pair if setup in r["rows"]]
            entry["smaller_x_gzip"] = statistics.fmean(b["gzip_bytes"] / v["gzip_bytes"] for b, v in zip(base, values))
            entry["smaller_x_file"] = statistics.fmean(b["file_bytes"] / v["file_bytes"] for b, v in zip(base, values))
            entry["smaller_x_bitpacked"] = statistics.fmean(
                b["file_bytes"] / v["bitpacked_bytes"] for b, v in zip(base, values)
            )
            entry["accuracy_change_pts"] = statistics.fmean(
                v["accuracy_pct"] - b["accuracy_pct"] for b, v in zip(base, values)
            )
            entry["reference"] = {"accuracy_pct": REFERENCE[setup][0], "MB": REFERENCE[setup][1]}
            entry["n_seeds"] = len(values)
            table[setup] = entry
        goals = []
        for setup, min_ratio, max_loss in GOALS:
            if setup not in table:
                continue
            row = table[setup]
            ratio, change = row["smaller_x_gzip"], row["accuracy_change_pts"]
            goals.append(
                {
                    "setup": setup,
                    "size_measure": "gzip bytes vs our fp32 .tflite gzip bytes",
                    "goal_smaller_x": min_ratio,
                    "measured_smaller_x": round(ratio, 2),
                    "size_met": ratio >= min_ratio,
                    "size_missed_by_x": None if ratio >= min_ratio else round(min_ratio - ratio, 2),
                    "goal_max_accuracy_loss_pts": max_loss,
                    "measured_accuracy_change_pts": round(change, 2),
                    "accuracy_met": change >= -max_loss,
                    "accuracy_missed_by_pts": None if change >= -max_loss else round(-max_loss - change, 2),
                    "limit": _limit(setup, clusters, min_ratio) if ratio < min_ratio else None,
                }
            )
        summary[pair] = {"table": table, "goals": goals}
    return summary


def _limit(setup: str, clusters: int, goal: float) -> str:
    """Why a size goal can be out of reach: information per weight bounds any entropy coder."""
    import math

    bits = math.log2(clusters)
    return (
        f"{setup} keeps {clusters} unique values per clustered layer, i.e. log2({clusters}) = {bits:.1f} bits of "
        f"information per weight, so gzip (or any lossless coder) cannot shrink those weights below about "
        f"{bits:.1f}/32 of fp32 ({32 / bits:.1f}x) before headers, biases and codebooks; {goal}x needs <= "
        f"{32 / goal:.2f} bits per weight, i.e. about {2 ** (32 / goal):.0f} clusters in the dominant Dense layer "
        f"(try --clusters 4), or binarising it."
    )


def print_tables(summary: dict) -> None:
    for pair, part in summary.items():
        print(f"\n## {pair}  (mean ± std over seeds; MB = MiB; accuracy measured in LiteRT by the board-side runner)")
        print("| setup | acc % | ref acc | file MB | gzip MB | bit-packed MB | ref MB | smaller (gzip) | Δ acc pts |")
        print("|---|---|---|---|---|---|---|---|---|")
        for setup, row in part["table"].items():
            acc = row["accuracy_pct"]
            print(
                f"| {setup} | {acc['mean']:.2f} ± {acc['std']:.2f} | {row['reference']['accuracy_pct']:.2f} | "
                f"{row['file_bytes']['mean'] / MIB:.4f} | {row['gzip_bytes']['mean'] / MIB:.4f} | "
                f"{row['bitpacked_bytes']['mean'] / MIB:.4f} | {row['reference']['MB']:.4f} | "
                f"{row['smaller_x_gzip']:.1f}x | {row['accuracy_change_pts']:+.2f} |"
            )
        for goal in part["goals"]:
            verdict = "met" if goal["size_met"] and goal["accuracy_met"] else "MISSED"
            print(
                f"goal {goal['setup']}: >= {goal['goal_smaller_x']}x gzip within {goal['goal_max_accuracy_loss_pts']} pts -> "
                f"{goal['measured_smaller_x']}x, {goal['measured_accuracy_change_pts']:+.2f} pts: {verdict}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", default=["cat,dog", "horse,frog"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--finetune-epochs", type=int, default=5)
    parser.add_argument("--delta", type=float, default=20.0)
    parser.add_argument("--clusters", type=int, default=16, help="clusters per layer for clustering / CQAT")
    parser.add_argument("--bits", type=int, default=2, help="bits of significant layers in twonn-mixed")
    parser.add_argument("--setups", nargs="*", default=None, help="limit the trained setups (default: all)")
    parser.add_argument("--quick", action="store_true", help="one seed, short training: a smoke run, not the result")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "compression.json")
    parser.add_argument(
        "--summarise-only",
        action="store_true",
        help="recompute the summary of the runs already in --out (no training, no measuring) and print the tables",
    )
    args = parser.parse_args()
    if args.summarise_only:
        resummarise(args.out, lambda runs: summarise(runs, args.clusters), print_tables)
        return
    if args.quick:
        args.seeds, args.max_epochs, args.finetune_epochs = args.seeds[:1], 3, 1
    from benchmarks.datasets_cache import ensure_cifar10_jpeg

    cifar = ensure_cifar10_jpeg()
    runs = []
    for pair in args.pairs:
        for seed in args.seeds:
            run = one_run(pair.split(","), seed, args, cifar)
            runs.append(run)
            print(
                f"{pair} seed {seed}: "
                + ", ".join(f"{k} {v['accuracy_pct']:.2f}%" for k, v in run["rows"].items())
                + f" ({run['seconds']:.0f} s)",
                flush=True,
            )
            summary = summarise(runs, args.clusters)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(
                json.dumps(
                    {
                        "benchmark": "compression",
                        "command": " ".join(sys.argv),
                        "quick": args.quick,
                        "settings": {
                            "max_epochs": args.max_epochs,
                            "finetune_epochs": args.finetune_epochs,
                            "delta": args.delta,
                            "clusters": args.clusters,
                            "bits": args.bits,
                        },
                        "std": STD_DEFINITION,
                        "size_definitions": {
                            "file_bytes": ".tflite file size",
                            "gzip_bytes": "gzip -9 of the .tflite",
                            "bitpacked_bytes": "weights at ceil(log2(unique values)) bits + codebooks + biases + other constants",
                            "MB": "MiB (2**20 bytes), which is what the reference figures match",
                        },
                        "summary": summary,
                        "runs": runs,
                    },
                    indent=2,
                )
                + "\n"
            )
    print_tables(summarise(runs, args.clusters))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
