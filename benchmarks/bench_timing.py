"""Are latency intervals honest? One block of timed runs against interleaved rounds, repeated, quiet and under load.

    python benchmarks/bench_timing.py          # writes benchmarks/results/timing.json

The reference CNN of bench_compression.py (random weights: kernels do not care) in float32
and full-integer int8 is timed by the board-side runner on this machine, `--repeats` times
in a row, in two ways:
- one block: each model measured on its own, one after the other (`--warmup` + `--runs`
  batch-1 runs), with the percentile bootstrap interval of the median over those runs: how
  edgecompress timed before interleaved rounds;
- rounds: both models timed against each other in `--rounds` interleaved rounds
  (targets/rounds.py), the same number of runs in all, the median of round medians with its
  two-level bootstrap interval, the board's noise floor, and the int8/fp32 ratio paired
  round by round.
Both ways run once on the machine as it is, and once while a CPU hog (busy-looping
processes on every CPU, 50 ms on, 50 ms off) runs beside them. An honest interval for a
byte-identical file measured three times in a row contains the other repeats' medians, so
the figures are: how far apart the repeats' medians are (max / min), whether every
repeat's interval holds every other repeat's median, and whether the int8-vs-fp32 verdict
("faster", "equally fast") stays the same from repeat to repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

HOG = """
import multiprocessing, os, sys, time
def spin(stop):
    while not stop.is_set():
        if int(time.monotonic() / 0.05) % 2:
            time.sleep(0.002)
if __name__ == "__main__":
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=spin, args=(stop,)) for _ in range(os.cpu_count() or 2)]
    for p in spinners:
        p.start()
    print("on", flush=True)
    sys.stdin.read()
    stop.set()
    for p in spinners:
        p.join()
"""


def reference_tflite(kind: str, path: Path) -> Path:
    from bench_compression import reference_cnn

    from edgecompress._tf import tensorflow

    tf = tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(reference_cnn(0))
    if kind == "int8":
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([rng.random((1, 32, 32, 3), dtype=np.float32)] for _ in range(50))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())
    return path


def one_block(models: dict[str, Path], data: Path, args: argparse.Namespace) -> dict:
    from edgecompress.decision import statistics as stats
    from edgecompress.targets import MeasureJob
    from edgecompress.targets.local import LocalTarget

    found = {}
    with LocalTarget() as target:
        for name, model in models.items():
            job = MeasureJob(model, data, warmup=args.warmup, runs=args.runs, threads=args.threads)
            interval = stats.median_interval(target.measure(job).result["latency_ms"]["samples"])
            found[name] = {"median": interval.median, "low": interval.low, "high": interval.high}
    words = stats.compare_speed(
        stats.Interval(found["int8"]["median"], found["int8"]["low"], found["int8"]["high"], args.runs, 0.95, 0, 0),
        stats.Interval(found["fp32"]["median"], found["fp32"]["low"], found["fp32"]["high"], args.runs, 0.95, 0, 0),
        reference_name="fp32",
    )
    fp32, int8 = found["fp32"], found["int8"]  # the speed-up's interval from the two medians' intervals
    speedup = {
        "ratio": fp32["median"] / int8["median"],
        "low": fp32["low"] / int8["high"],
        "high": fp32["high"] / int8["low"],
    }
    return {**found, "speedup": speedup, "int8_vs_fp32": words.words.split(" (")[0]}


def in_rounds(models: dict[str, Path], data: Path, args: argparse.Namespace) -> dict:
    from edgecompress.decision import statistics as stats
    from edgecompress.decision.timing import BoardTiming
    from edgecompress.targets.local import LocalTarget
    from edgecompress.targets.rounds import RoundsJob, time_in_rounds

    job = RoundsJob.split(
        list(models.values()), data, rounds=args.rounds, warmup=args.warmup, runs=args.runs, threads=args.threads
    )
    with LocalTarget() as target:
        measurement = time_in_rounds(target, job)
    timing = BoardTiming.from_file({"target": "local", "artifacts": list(models), "result": measurement.result})
    noise = timing.noise()
    found: dict = {}
    for name in models:
        interval = stats.rounds_interval(timing.rounds(name))
        found[name] = {"median": interval.median, "low": interval.low, "high": interval.high}
    ratio = stats.paired_ratio(timing.rounds("int8"), timing.rounds("fp32"))
    speed = stats.compare_in_rounds(ratio, noise, reference_name="fp32")
    speedup = {"ratio": speed.ratio, "low": speed.low, "high": speed.high}
    return {**found, "speedup": speedup, "noise_percent": noise.percent if noise else None,
            "int8_vs_fp32": speed.words.split(" (")[0]}  # fmt: skip


def honest(repeats: list[dict], name: str) -> dict:
    """How the repeats of one way agree: the spread of their point figures, the share of repeat pairs whose 95 %
    intervals overlap (an interval that excludes a repeat of the same measurement claimed too much), and how
    wide the intervals claim to be."""
    points = [r[name]["ratio" if name == "speedup" else "median"] for r in repeats]
    pairs = [(a, b) for i, a in enumerate(repeats) for b in repeats[i + 1 :]]
    overlapping = sum(a[name]["low"] <= b[name]["high"] and b[name]["low"] <= a[name]["high"] for a, b in pairs)
    half_widths = [100 * (r[name]["high"] - r[name]["low"]) / 2 / p for r, p in zip(repeats, points)]
    return {
        "points": [round(p, 5) for p in points],
        "spread_x": round(max(points) / min(points), 3),
        "intervals": [[round(r[name]["low"], 5), round(r[name]["high"], 5)] for r in repeats],
        "overlapping_pairs": f"{overlapping}/{len(pairs)}",
        "median_half_width_percent": round(float(np.median(half_widths)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "timing.json")
    args = parser.parse_args()
    results: dict = {"benchmark": "timing", "command": " ".join(sys.argv), "settings": vars(args) | {"out": None},
                     "machine": {"cpus": os.cpu_count()}, "conditions": {}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="edgecompress-timing-") as scratch:
        folder = Path(scratch)
        models = {kind: reference_tflite(kind, folder / f"reference_{kind}.tflite") for kind in ("fp32", "int8")}
        rng = np.random.default_rng(1)
        data = folder / "eval.npz"
        np.savez(data, x=rng.random((64, 32, 32, 3), dtype=np.float32), y=np.zeros(64, np.int64),
                 class_names=np.array(["a", "b"]), output_kind=np.array("sigmoid"))  # fmt: skip
        for condition in ("as it is", "cpu hog on/off"):
            hog = None
            if condition != "as it is":
                hog = subprocess.Popen(
                    [sys.executable, "-c", HOG], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
                )
                assert hog.stdout is not None and hog.stdout.readline().strip() == "on"
            try:
                loads, block, rounds = [os.getloadavg()[0]], [], []
                started = time.perf_counter()
                for _ in range(args.repeats):
                    block.append(one_block(models, data, args))
                    rounds.append(in_rounds(models, data, args))
                    loads.append(os.getloadavg()[0])
            finally:
                if hog is not None and hog.stdin is not None:
                    hog.stdin.close()
                    hog.wait(timeout=30)
            results["conditions"][condition] = {
                "seconds": round(time.perf_counter() - started, 1),
                "load_average_1min": loads,
                "one_block": {
                    "repeats": block,
                    **{name: honest(block, name) for name in (*models, "speedup")},
                    "int8_vs_fp32": [r["int8_vs_fp32"] for r in block],
                },  # fmt: skip
                "rounds": {
                    "repeats": rounds,
                    **{name: honest(rounds, name) for name in (*models, "speedup")},
                    "int8_vs_fp32": [r["int8_vs_fp32"] for r in rounds],
                    "noise_percent": [r["noise_percent"] for r in rounds],
                },  # fmt: skip
            }
            for way in ("one_block", "rounds"):
                part = results["conditions"][condition][way]
                shown = "; ".join(
                    f"{name} {part[name]['points']} (spread {part[name]['spread_x']}x, intervals ±"
                    f"{part[name]['median_half_width_percent']} %, overlapping pairs {part[name]['overlapping_pairs']})"
                    for name in (*models, "speedup")
                )
                noise = f"; noise ±{part['noise_percent']} %" if way == "rounds" else ""
                print(f"{condition}, {way}: {shown}; int8 vs fp32: {part['int8_vs_fp32']}{noise}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
