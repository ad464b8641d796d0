"""Faster, not only smaller: speed recipes on the reference CIFAR CNN, measured at one thread.

    python benchmarks/bench_speed.py                          # cat/dog + horse/frog, seeds 0 1 2
    python benchmarks/bench_speed.py --pairs cat,dog --seeds 0 --quick

For each pair of CIFAR-10 classes and each seed: trains the reference CNN (the one
bench_compression.py uses), measures layer IDs with TwoNN, and builds
- the float32 baseline and post-training int8 (no fine-tuning),
- ID-guided structured pruning (twonn-prune) at 5 width factors (kept channels =
  ceil(factor x layer ID), x1.5 for significant layers, at least 8),
- the dense control: uniform L1 filter pruning (uniform-prune) at the MACs of each of those
  5 points, so ID-guided widths are compared with uniform ones at equal compute,
- low rank (SVD Dense, rank-K separable Conv) at 5 singular-value energy thresholds,
every compressed model fine-tuned the same way and exported full-integer int8. Then every
artifact of that (pair, seed) is measured by the board-side runner on this machine at
1 thread, in `--rounds` interleaved rounds (a shuffled order each round); an artifact's
latency is the median of its round medians. MACs are counted from each .tflite graph.

The machine is shared, so latency is noisy: each artifact's spread over rounds
(max/min of its round medians) and the load average are written with the figures, and
every ratio compares artifacts measured in the same rounds.

Writes benchmarks/results/speed.json (every run, mean +- std per artifact, the curves and the
goal check) and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from bench_compression import train_base  # noqa: E402  - the reference CNN and its training, shared
from summaries import STD_DEFINITION, resummarise  # noqa: E402

WIDTH_FACTORS = (0.2, 0.3, 0.45, 0.65, 1.0)
ENERGIES = (0.4, 0.5, 0.6, 0.7, 0.8)
#: the issue's goal for one artifact, against the float32 baseline and post-training int8 of the same run
GOAL = {"faster_than_fp32_x": 3.0, "faster_than_int8_x": 1.5, "max_accuracy_loss_pts": 1.0, "smaller_gzip_x": 10.0}
METHODS = ("twonn-prune", "uniform-prune", "lowrank")


def build(pair: list[str], seed: int, args: argparse.Namespace, cifar: Path, work: Path) -> tuple[dict, dict]:
    """Every artifact of one (pair, seed): {name: {method, setting, blob, ...}}, plus run facts."""
    from edgecompress._tf import quiet_native_output
    from edgecompress.analysis import analyze_model
    from edgecompress.compression import FineTuning, Knobs, apply_plan, baseline_plan
    from edgecompress.compression.speed import StructureKnobs
    from edgecompress.data import load_dataset, write_eval_npz
    from edgecompress.export import to_tflite

    data = load_dataset(str(cifar), input_shape=(32, 32, 3), classes=pair, seed=seed)
    calibration = data.x_train[np.random.default_rng(seed).permutation(len(data.x_train))[:200]]
    facts: dict = {"timings_s": {}}
    eval_npz = write_eval_npz(data, work / "eval.npz", output_kind="sigmoid")
    t = time.perf_counter()
    with quiet_native_output():
        base = train_base(data, seed, args.max_epochs)
        facts["timings_s"]["train_base"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        significance = analyze_model(base, data.x_train, n_samples=2000, seed=seed)
    facts["timings_s"]["twonn"] = round(time.perf_counter() - t, 1)
    facts["id_profile"] = [
        {"layer": layer.name, "id": round(layer.id, 2), "significant": layer.significant}
        for layer in significance.layers
    ]
    with quiet_native_output((1, 2)):
        artifacts = {
            "fp32": {"method": "baseline", "setting": "float32", "blob": to_tflite(base, mode="float32")},
            "ptq-int8": {
                "method": "ptq",
                "setting": "int8",
                "blob": to_tflite(base, mode="int8", representative=calibration),
            },
        }
    settings = FineTuning(epochs=args.finetune_epochs, seed=seed, progress=False)

    def compress(name: str, recipe: str, method: str, setting: str, speed: StructureKnobs) -> int:
        started = time.perf_counter()
        plan = baseline_plan(recipe, base, significance=significance, knobs=Knobs(speed=speed))
        with quiet_native_output():
            compressed = apply_plan(plan, base, data, settings=settings)
        with quiet_native_output((1, 2)):
            blob = to_tflite(compressed.model, mode="int8", representative=calibration)
        artifacts[name] = {
            "method": method,
            "setting": setting,
            "blob": blob,
            "plan_macs": plan.macs,
            "shapes": {layer.name: layer.speed_setting for layer in plan.layers if layer.speed_setting},
            "stages": compressed.stages,
        }
        facts["timings_s"][name] = round(time.perf_counter() - started, 1)
        print(f"  built {name}: {plan.macs:,} MACs planned ({facts['timings_s'][name]:.0f} s)", flush=True)
        return plan.macs

    for factor in args.width_factors:
        macs = compress(
            f"twonn-prune@{factor:g}",
            "twonn-prune",
            "twonn-prune",
            f"width factor {factor:g}",
            StructureKnobs(width_factor=factor),
        )
        compress(
            f"uniform-prune@{factor:g}",
            "uniform-prune",
            "uniform-prune",
            f"MACs of twonn-prune@{factor:g}",
            StructureKnobs(target_macs=macs),
        )
    for energy in args.energies:
        compress(f"lowrank@{energy:g}", "lowrank", "lowrank", f"energy {energy:g}", StructureKnobs(rank_energy=energy))
    facts["eval_npz"] = eval_npz
    return artifacts, facts


def measure_all(artifacts: dict, eval_npz: Path, work: Path, args: argparse.Namespace, seed: int) -> dict:
    """Accuracy, sizes, MACs, and 1-thread latency over interleaved rounds for every artifact."""
    from edgecompress.export import bitpacked_size, gzip_bytes, tflite_weight_stats
    from edgecompress.export.macs import summary, tflite_macs
    from edgecompress.targets import MeasureJob
    from edgecompress.targets.local import LocalTarget

    target = LocalTarget()
    rows: dict = {}
    for name, artifact in artifacts.items():
        path = work / f"{name}.tflite"
        path.write_bytes(artifact["blob"])
        blob = artifact["blob"]
        rows[name] = {
            "method": artifact["method"],
            "setting": artifact["setting"],
            "file_bytes": len(blob),
            "gzip_bytes": gzip_bytes(blob),
            "bitpacked_bytes": bitpacked_size(tflite_weight_stats(blob), tflite_bytes=blob)["total_bytes"],
            "macs": summary(tflite_macs(blob), "tflite")["total"],
            "plan_macs": artifact.get("plan_macs"),
            "shapes": artifact.get("shapes"),
            "stages": artifact.get("stages"),
            "round_medians_ms": [],
            "path": path,
        }
    order = list(rows)
    loads = []
    for round_index in range(args.rounds):
        random.Random(seed * 100 + round_index).shuffle(order)
        loads.append(os.getloadavg()[0])
        for name in order:
            job = MeasureJob(
                model=rows[name]["path"], eval_data=eval_npz, warmup=args.warmup, runs=args.runs, threads=1
            )
            result = target.measure(job).result
            rows[name]["round_medians_ms"].append(result["latency_ms"]["median"])
            rows[name]["accuracy_pct"] = 100 * result["accuracy"]["overall"]
    for row in rows.values():
        medians = row["round_medians_ms"]
        row["latency_median_ms"] = statistics.median(medians)
        row["latency_spread_x"] = round(max(medians) / min(medians), 3)
        row.pop("path")
    base, ptq = rows["fp32"], rows["ptq-int8"]
    for row in rows.values():
        row["speedup_vs_fp32_x"] = base["latency_median_ms"] / row["latency_median_ms"]
        row["speedup_vs_int8_x"] = ptq["latency_median_ms"] / row["latency_median_ms"]
        row["mac_ratio_x"] = base["macs"] / row["macs"]
        row["smaller_gzip_x"] = base["gzip_bytes"] / row["gzip_bytes"]
        row["accuracy_change_pts"] = row["accuracy_pct"] - base["accuracy_pct"]
    return {"rows": rows, "load_average_1min": [round(load, 2) for load in loads]}


def meets_goal(row: dict) -> bool:
    return (
        row["speedup_vs_fp32_x"] >= GOAL["faster_than_fp32_x"]
        and row["speedup_vs_int8_x"] >= GOAL["faster_than_int8_x"]
        and row["accuracy_change_pts"] >= -GOAL["max_accuracy_loss_pts"]
        and row["smaller_gzip_x"] >= GOAL["smaller_gzip_x"]
    )


KEYS = (
    "accuracy_pct",
    "accuracy_change_pts",
    "latency_median_ms",
    "speedup_vs_fp32_x",
    "speedup_vs_int8_x",
    "macs",
    "mac_ratio_x",
    "gzip_bytes",
    "smaller_gzip_x",
    "file_bytes",
    "bitpacked_bytes",
    "latency_spread_x",
)


def _stats(values: list[float]) -> dict:
    """Mean and sample standard deviation (n - 1), the one std every benchmark reports."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def summarise(runs: list[dict]) -> dict:
    summary = {}
    for pair in sorted({",".join(r["pair"]) for r in runs}):
        of_pair = [r for r in runs if ",".join(r["pair"]) == pair]
        names = [name for name in of_pair[0]["rows"] if all(name in r["rows"] for r in of_pair)]
        table = {}
        for name in names:
            rows = [r["rows"][name] for r in of_pair]
            entry = {key: _stats([row[key] for row in rows]) for key in KEYS}
            entry.update(
                method=rows[0]["method"],
                setting=rows[0]["setting"],
                n_seeds=len(rows),
                meets_goal_per_seed=[meets_goal(row) for row in rows],
            )
            entry["meets_goal_on_mean"] = meets_goal({key: entry[key]["mean"] for key in KEYS})
            table[name] = entry
        curves = {
            method: sorted(
                (
                    {
                        "artifact": name,
                        "macs": table[name]["macs"]["mean"],
                        "latency_median_ms": table[name]["latency_median_ms"]["mean"],
                        "accuracy_pct": table[name]["accuracy_pct"]["mean"],
                        "accuracy_pct_std": table[name]["accuracy_pct"]["std"],
                    }
                    for name in names
                    if table[name]["method"] == method
                ),
                key=lambda point: point["macs"],
            )
            for method in METHODS
        }
        head_to_head = []
        for name in names:
            if table[name]["method"] != "twonn-prune":
                continue
            twin = name.replace("twonn-prune", "uniform-prune")
            if twin not in table:
                continue
            pairs = [(r["rows"][name], r["rows"][twin]) for r in of_pair]
            head_to_head.append(
                {
                    "twonn": name,
                    "uniform": twin,
                    "macs_twonn_over_uniform": _stats([a["macs"] / b["macs"] for a, b in pairs]),
                    "accuracy_twonn_minus_uniform_pts": _stats(
                        [a["accuracy_pct"] - b["accuracy_pct"] for a, b in pairs]
                    ),
                    "latency_twonn_over_uniform": _stats(
                        [a["latency_median_ms"] / b["latency_median_ms"] for a, b in pairs]
                    ),
                    "gzip_twonn_over_uniform": _stats([a["gzip_bytes"] / b["gzip_bytes"] for a, b in pairs]),
                }
            )
        passing = [name for name in names if table[name]["meets_goal_on_mean"]]
        best = max(passing, key=lambda name: table[name]["speedup_vs_int8_x"]["mean"], default=None)
        summary[pair] = {
            "table": table,
            "curves": curves,
            "twonn_vs_uniform_at_equal_macs": head_to_head,
            "goal": GOAL,
            "artifacts_meeting_goal_on_mean": passing,
            "best_meeting_goal": best,
        }
    return summary


def print_tables(summary: dict) -> None:
    for pair, part in summary.items():
        print(f"\n## {pair}: mean ± std over seeds, latency at 1 thread (runner, LiteRT, median of interleaved rounds)")
        print(
            "| artifact | acc % | Δ pts | median ms | vs fp32 | vs int8 | MACs | MAC ratio | gzip KiB | smaller (gzip) | goal |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for name, row in part["table"].items():

            def ms(key: str, digits: int = 2, row: dict = row) -> str:
                return f"{row[key]['mean']:.{digits}f} ± {row[key]['std']:.{digits}f}"

            print(
                f"| {name} | {ms('accuracy_pct')} | {row['accuracy_change_pts']['mean']:+.2f} | {ms('latency_median_ms', 4)} | "
                f"{row['speedup_vs_fp32_x']['mean']:.2f}x | {row['speedup_vs_int8_x']['mean']:.2f}x | "
                f"{row['macs']['mean'] / 1e6:.2f} M | {row['mac_ratio_x']['mean']:.2f}x | {row['gzip_bytes']['mean'] / 1024:.1f} | "
                f"{row['smaller_gzip_x']['mean']:.1f}x | {'yes' if row['meets_goal_on_mean'] else 'no'} |"
            )
        print("\nID-guided vs uniform widths at equal MACs (ratios twonn / uniform, mean ± std):")
        for h in part["twonn_vs_uniform_at_equal_macs"]:
            print(
                f"  {h['twonn']}: MACs {h['macs_twonn_over_uniform']['mean']:.2f}, accuracy "
                f"{h['accuracy_twonn_minus_uniform_pts']['mean']:+.2f} ± {h['accuracy_twonn_minus_uniform_pts']['std']:.2f} pts, "
                f"latency {h['latency_twonn_over_uniform']['mean']:.2f}x, gzip {h['gzip_twonn_over_uniform']['mean']:.2f}x"
            )
        print(
            f"goal {part['goal']}: met on the mean by {', '.join(part['artifacts_meeting_goal_on_mean']) or 'nothing'}; "
            f"best: {part['best_meeting_goal']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", default=["cat,dog", "horse,frog"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--finetune-epochs", type=int, default=6)
    parser.add_argument("--width-factors", nargs="+", type=float, default=list(WIDTH_FACTORS))
    parser.add_argument("--energies", nargs="+", type=float, default=list(ENERGIES))
    parser.add_argument("--rounds", type=int, default=3, help="interleaved latency rounds per artifact")
    parser.add_argument("--runs", type=int, default=300, help="timed batch-1 runs per round")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument(
        "--quick", action="store_true", help="one seed, short training, 2 points per method: a smoke run"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "speed.json")
    parser.add_argument(
        "--summarise-only",
        action="store_true",
        help="recompute the summary of the runs already in --out (no training, no measuring) and print the tables",
    )
    parser.add_argument(
        "--tile-widths",
        nargs="+",
        type=int,
        help="only time the reference CNN's two convolutions at these widths (int8, 1 thread): the channel tile; "
        "writes benchmarks/results/channel_tile.json",
    )
    args = parser.parse_args()
    if args.summarise_only:
        resummarise(args.out, summarise, print_tables)
        return
    if args.quick:
        args.seeds, args.max_epochs, args.finetune_epochs = args.seeds[:1], 3, 1
        args.width_factors, args.energies, args.rounds, args.runs = args.width_factors[1:3], args.energies[2:4], 2, 50
    if args.tile_widths:
        channel_tile_benchmark(args)
        return
    from benchmarks.datasets_cache import ensure_cifar10_jpeg

    cifar = ensure_cifar10_jpeg()
    runs = []
    for pair in args.pairs:
        for seed in args.seeds:
            started = time.perf_counter()
            print(f"{pair} seed {seed}: building", flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                artifacts, facts = build(pair.split(","), seed, args, cifar, work)
                print(f"{pair} seed {seed}: measuring {len(artifacts)} artifacts, {args.rounds} rounds", flush=True)
                measured = measure_all(artifacts, facts.pop("eval_npz"), work, args, seed)
            runs.append(
                {
                    "pair": pair.split(","),
                    "seed": seed,
                    **facts,
                    **measured,
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            summary = summarise(runs)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(
                json.dumps(
                    {
                        "benchmark": "speed",
                        "command": " ".join(sys.argv),
                        "quick": args.quick,
                        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "pairs", "seeds")},
                        "definitions": {
                            "latency_median_ms": "median over rounds of the runner's median batch-1 latency, 1 thread, LiteRT on this machine",
                            "latency_spread_x": "max / min of an artifact's round medians: the noise of this shared machine",
                            "macs": "multiply-accumulates counted from the .tflite graph (edgecompress.export.macs)",
                            "smaller_gzip_x": "fp32 .tflite gzip bytes / this artifact's gzip bytes",
                            "speedup_vs_fp32_x": "fp32 median latency / this median latency, same run",
                            "goal": GOAL,
                        },
                        "std": STD_DEFINITION,
                        "summary": summary,
                        "runs": runs,
                    },
                    indent=2,
                    default=str,
                )
                + "\n"
            )
            print(f"{pair} seed {seed} done in {runs[-1]['seconds']:.0f} s", flush=True)
    print_tables(summarise(runs))
    print(f"\nwrote {args.out}")


def two_conv_net(width: int):  # noqa: ANN201
    """The reference CNN with both convolutions at `width` channels and a 16-unit Dense (a pruned model's shape)."""
    from edgecompress._tf import keras

    k = keras()
    k.utils.set_random_seed(0)
    return k.Sequential(
        [
            k.layers.Input((32, 32, 3)),
            k.layers.Conv2D(width, 3, padding="same", activation="relu"),
            k.layers.MaxPooling2D(),
            k.layers.Conv2D(width, 3, padding="same", activation="relu"),
            k.layers.MaxPooling2D(),
            k.layers.Flatten(),
            k.layers.Dense(16, activation="relu"),
            k.layers.Dense(1, activation="sigmoid"),
        ]
    )


def channel_tile_benchmark(args: argparse.Namespace) -> None:
    """Cost of int8 convolutions by width in LiteRT (XNNPACK, 1 thread), in interleaved rounds: the channel
    multiple its kernels like (edgecompress.compression.widths.CHANNEL_TILES).

    Each round times `--runs` invocations per width by the calling thread's CPU time (XNNPACK runs a
    1-thread model in that thread): time spent waiting for a core that other jobs hold is not counted,
    so the figure survives a shared machine far better than wall time. Wall time is kept beside it."""
    from ai_edge_litert.interpreter import Interpreter

    from edgecompress.export import to_tflite

    out = args.out if args.out.name != "speed.json" else ROOT / "results" / "channel_tile.json"
    rng = np.random.default_rng(0)
    calibration = rng.random((64, 32, 32, 3), dtype=np.float32)
    sessions = {}
    for width in args.tile_widths:
        blob = to_tflite(two_conv_net(width), mode="int8", representative=calibration, io_dtype="int8")
        interpreter = Interpreter(model_content=blob, num_threads=1)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], np.int8))
        for _ in range(args.warmup):
            interpreter.invoke()
        sessions[width] = interpreter
    cpu: dict[int, list[float]] = {w: [] for w in sessions}
    wall: dict[int, list[float]] = {w: [] for w in sessions}
    for number in range(args.rounds):
        order = list(sessions)
        random.Random(number).shuffle(order)
        for width in order:
            started_cpu, started_wall = time.thread_time_ns(), time.perf_counter_ns()
            for _ in range(args.runs):
                sessions[width].invoke()
            cpu[width].append((time.thread_time_ns() - started_cpu) / args.runs / 1e6)
            wall[width].append((time.perf_counter_ns() - started_wall) / args.runs / 1e6)
    table = {
        str(w): {
            "cpu_ms_per_inference": round(statistics.median(cpu[w]), 5),
            "cpu_round_ms": [round(v, 5) for v in cpu[w]],
            "wall_ms_per_inference": round(statistics.median(wall[w]), 5),
            "cpu_spread_x": round(max(cpu[w]) / min(cpu[w]), 3),
        }
        for w in sessions
    }
    document = {
        "benchmark": "channel_tile",
        "command": " ".join(sys.argv),
        "model": "reference CNN layout: Conv(w)-pool-Conv(w)-pool-Dense16-Dense1, int8 with int8 I/O (random weights: "
        "time does not depend on them), LiteRT with XNNPACK, 1 thread, in this process",
        "figure": "cpu_ms_per_inference: the calling thread's CPU time per invoke, median over interleaved shuffled rounds",
        "settings": {"rounds": args.rounds, "runs": args.runs, "warmup": args.warmup},
        "load_average_1min": os.getloadavg()[0],
        "machine_note": "2 cores shared with other engineers' jobs: wall time waits for a core, CPU time mostly does not; "
        "each width's spread over rounds is its remaining noise",
        "widths": table,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    for width, row in table.items():
        print(f"width {width:>3}: {row['cpu_ms_per_inference']:.4f} ms CPU (spread {row['cpu_spread_x']:.2f}x), "
              f"{row['wall_ms_per_inference']:.4f} ms wall")  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
