"""Why the 17-channel convolutions of twonn-prune 0.3 are slow: the reference CNN at several widths, in int8.

    python benchmarks/bench_channels.py          # writes benchmarks/results/channel_widths.json

The reference CNN of bench_compression.py (two 3x3 convolutions, each followed by 2x2 pooling,
then Dense 128, Dense 16, Dense 1) with both convolutions at the same width, exported
full-integer int8 (random weights, calibrated on random 0-1 images: kernels do not care what
the weights are), timed against each other by the board-side runner on this machine at one
thread in interleaved rounds (targets/rounds.py: every width once per round, the order
rotated, the 16-channel model twice for the noise floor). Every ratio is against the
16-channel model, paired round by round.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))


def int8_cnn(width: int, path: Path) -> Path:
    from edgecompress._tf import keras, tensorflow

    k, tf = keras(), tensorflow()
    k.utils.set_random_seed(0)
    layers = k.layers
    model = k.Sequential(
        [
            layers.Input((32, 32, 3)),
            layers.Conv2D(width, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(width, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(16, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.random((1, 32, 32, 3), dtype=np.float32)] for _ in range(50))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", nargs="+", type=int, default=[16, 17, 24, 32])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3000, help="timed runs per model in all, spread over the rounds")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "channel_widths.json")
    args = parser.parse_args()
    from edgecompress.decision import statistics as stats
    from edgecompress.decision.timing import BoardTiming
    from edgecompress.export.macs import summary, tflite_macs
    from edgecompress.targets.local import LocalTarget
    from edgecompress.targets.rounds import RoundsJob, time_in_rounds

    with tempfile.TemporaryDirectory(prefix="edgecompress-widths-") as scratch:
        folder = Path(scratch)
        models = [int8_cnn(w, folder / f"width{w}.tflite") for w in args.widths]
        rng = np.random.default_rng(1)
        data = folder / "eval.npz"
        np.savez(data, x=rng.random((64, 32, 32, 3), dtype=np.float32), y=np.zeros(64, np.int64),
                 class_names=np.array(["a", "b"]), output_kind=np.array("sigmoid"))  # fmt: skip
        job = RoundsJob.split(models, data, rounds=args.rounds, warmup=args.warmup, runs=args.runs, threads=1)
        load_before = os.getloadavg()[0]
        with LocalTarget() as target:
            measurement = time_in_rounds(target, job)
        names = [f"width{w}" for w in args.widths]
        timing = BoardTiming.from_file({"target": "local", "artifacts": names, "result": measurement.result})
        macs = {name: summary(tflite_macs(m.read_bytes()), "tflite")["total"] for name, m in zip(names, models)}
    noise = timing.noise()
    rows = []
    for width, name in zip(args.widths, names):
        interval = stats.rounds_interval(timing.rounds(name))
        ratio = stats.paired_ratio(timing.rounds(name), timing.rounds(names[0]))
        rows.append({"width": width, "macs": macs[name], "median_ms": interval.median, "interval_ms": [interval.low, interval.high],
                     "vs_16": ratio.to_dict(), "round_medians_ms": stats.round_medians(timing.rounds(name))})  # fmt: skip
        print(f"width {width:>3}: {interval.median:.4f} ms [{interval.low:.4f}, {interval.high:.4f}], "
              f"{macs[name] / 1e6:.2f} M MACs, {ratio.ratio:.2f}x the 16-channel time [{ratio.low:.2f}, {ratio.high:.2f}]")  # fmt: skip
    document = {
        "benchmark": "channel_widths",
        "command": " ".join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "load_average_1min": [load_before, os.getloadavg()[0]]},
        "settings": {"rounds": job.rounds, "warmup_per_round": job.warmup, "runs_per_round": job.runs, "threads": 1},
        "timing_noise": noise.to_dict() if noise else None,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"timing noise ±{noise.percent if noise else float('nan'):.1f} %; wrote {args.out}")


if __name__ == "__main__":
    main()
