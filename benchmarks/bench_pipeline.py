"""How long `edgecompress deploy` takes on real data, and how that grows with the data set.

A 10-class CIFAR-10 model with residual blocks (about 80k parameters, trained here once,
outside edgecompress, and kept in the data cache) is deployed for rpi4 on the local target
with 5,000, 20,000 and 50,000 training images; every run starts from an empty stage cache.
For each run the script prints the wall time per phase (load, significance, PTQ export,
fine-tuning, compressed export, ONNX, measurement, report) and every artifact's accuracy,
then:
- the same 50,000-image deploy with a long fine-tune (--finetune-steps 8000), the accuracy
  reference for the bounded fine-tune;
- a second deploy of the same model for another profile (rpi5: same recipe family)
  that reuses the first one's cache, and how much sooner it reaches measurement.

Aims (figures, not asserts): the 50,000-image deploy within 10 minutes on 2 cores; wall time
from 5,000 to 50,000 images at most 2x; the compressed artifact within 0.5 points of the long
fine-tune; the second deploy at least 3x faster before measurement.

    python benchmarks/bench_pipeline.py            # writes benchmarks/results/pipeline.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
#: phases that come before anything is measured on the device
BEFORE_MEASUREMENT = (
    "load",
    "significance",
    "plan and targets",
    "analysis",
    "reference",
    "ptq-export",
    "fine-tune",
    "compressed-export",
    "onnx-export",
)


def resnet_80k(seed: int):  # noqa: ANN201
    """A small ResNet for 32x32x3 inputs in 0..1: three stages of residual blocks, about 80k parameters."""
    from edgecompress._tf import keras

    k = keras()
    k.utils.set_random_seed(seed)
    inputs = k.layers.Input((32, 32, 3))
    x = k.layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    x = k.layers.BatchNormalization()(x)
    x = k.layers.ReLU()(x)
    for filters, stride in ((16, 1), (32, 2), (64, 2)):  # 78,714 parameters
        shortcut = x
        y = k.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        y = k.layers.BatchNormalization()(y)
        y = k.layers.ReLU()(y)
        y = k.layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
        y = k.layers.BatchNormalization()(y)
        if stride != 1 or shortcut.shape[-1] != filters:
            shortcut = k.layers.Conv2D(filters, 1, strides=stride, use_bias=False)(shortcut)
            shortcut = k.layers.BatchNormalization()(shortcut)
        x = k.layers.ReLU()(k.layers.Add()([y, shortcut]))
    x = k.layers.GlobalAveragePooling2D()(x)
    outputs = k.layers.Dense(10, activation="softmax")(x)
    return k.Model(inputs, outputs, name="resnet_80k")


def trained_model(cache: Path, data: dict[str, np.ndarray], epochs: int, seed: int) -> Path:
    """The benchmark model, trained on all 50,000 images once and kept in `cache`."""
    path = cache / f"resnet_80k-cifar10-e{epochs}-s{seed}.h5"
    if path.is_file():
        return path
    from edgecompress._tf import keras

    model = resnet_80k(seed)
    print(
        f"training {model.name} ({model.count_params():,} parameters) for {epochs} epochs on 50,000 images", flush=True
    )
    model.compile(optimizer=keras().optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data["x_train"], data["y_train"], epochs=epochs, batch_size=128, validation_split=0.05, verbose=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def cifar_arrays(cifar: Path) -> dict[str, np.ndarray]:
    from edgecompress.data import load_dataset

    data = load_dataset(cifar, input_shape=(32, 32, 3), classes=CLASSES, scaling="0-1")
    return {"x_train": data.x_train, "y_train": data.y_train, "x_test": data.x_test, "y_test": data.y_test}


def subset_npz(data: dict[str, np.ndarray], n_train: int, folder: Path, seed: int) -> Path:
    """An .npz with `n_train` stratified training images (0..255 pixels) and the whole test set."""
    rng = np.random.default_rng(seed)
    per_class = n_train // len(CLASSES)
    rows = np.concatenate(
        [rng.permutation(np.flatnonzero(data["y_train"] == c))[:per_class] for c in range(len(CLASSES))]
    )
    path = folder / f"cifar10-{n_train}.npz"
    np.savez(
        path,
        x_train=(data["x_train"][rows] * 255).round().astype(np.uint8),
        y_train=data["y_train"][rows],
        x_test=(data["x_test"] * 255).round().astype(np.uint8),
        y_test=data["y_test"],
        class_names=np.array(CLASSES),
    )
    return path


def deploy(model: Path, data: Path, profile: str, cache: Path, out: Path, **options: object) -> dict:
    """One real deploy; returns its wall time, phase times and per-artifact accuracy."""
    import edgecompress

    os.environ["EDGECOMPRESS_CACHE"] = str(cache)
    started = time.perf_counter()
    result = edgecompress.deploy(model, profile, data=str(data), output=out, scaling="0-1", **options)
    seconds = time.perf_counter() - started
    report = result.report
    timings = report.get("timings_s") or {}
    return {
        "profile": profile,
        "wall_seconds": round(seconds, 1),
        "seconds_before_measurement": round(sum(v for k, v in timings.items() if k in BEFORE_MEASUREMENT), 1),
        "timings_s": timings,
        "accuracy_pct": {row["artifact"]: round(100 * row["accuracy"], 2) for row in report["comparison"]},
        "keras_reference_pct": round(100 * report["keras_reference"]["overall"], 2),
        "training": [
            {
                k: stage.get(k)
                for k in ("stage", "steps", "budget_steps", "epochs_equivalent", "wall_seconds", "stopped_by")
            }
            for stage in (report.get("training") or {}).get("stages", [])
        ],
        "run_dir": str(result.run_dir),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[5000, 20000, 50000])
    parser.add_argument("--train-epochs", type=int, default=20, help="epochs to train the benchmark model (once)")
    parser.add_argument("--long-steps", type=int, default=8000, help="fine-tuning steps of the long reference run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "pipeline.json")
    args = parser.parse_args()
    from benchmarks.datasets_cache import CACHE_DIR, ensure_cifar10_jpeg

    data = cifar_arrays(ensure_cifar10_jpeg())
    model = trained_model(CACHE_DIR / "bench-models", data, args.train_epochs, args.seed)
    results: dict = {
        "benchmark": "pipeline",
        "command": " ".join(sys.argv),
        "machine": {"cpus": os.cpu_count()},
        "model": str(model.name),
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="edgecompress-bench-") as scratch:
        scratch_dir = Path(scratch)
        npz = {n: subset_npz(data, n, scratch_dir, args.seed) for n in args.sizes}
        for n in args.sizes:
            run = deploy(model, npz[n], "rpi4", scratch_dir / f"cache-{n}", scratch_dir / "runs")
            results["runs"][f"train-{n}"] = run
            print(
                f"{n:>6} training images: {run['wall_seconds']:.0f} s ({run['timings_s']}) -> {run['accuracy_pct']}",
                flush=True,
            )
        largest = max(args.sizes)
        again = deploy(model, npz[largest], "rpi5", scratch_dir / f"cache-{largest}", scratch_dir / "runs")
        results["runs"]["second-profile-cached"] = again
        print(
            f"second deploy (rpi5, cache of the first): {again['wall_seconds']:.0f} s, "
            f"{again['seconds_before_measurement']:.0f} s before measurement",
            flush=True,
        )
        long = deploy(
            model,
            npz[largest],
            "rpi4",
            scratch_dir / "cache-long",
            scratch_dir / "runs",
            finetune_steps=args.long_steps,
            epochs=1000,
        )
        results["runs"]["long-finetune"] = long
        print(
            f"long fine-tune ({args.long_steps} steps per stage): {long['wall_seconds']:.0f} s -> {long['accuracy_pct']}",
            flush=True,
        )
    results["aims"] = aims(results["runs"], args.sizes)
    for name, aim in results["aims"].items():
        print(f"aim {name}: {aim['measured']} (aim {aim['aim']}): {'met' if aim['met'] else 'MISSED'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


def aims(runs: dict, sizes: list[int]) -> dict:
    smallest, largest = runs[f"train-{min(sizes)}"], runs[f"train-{max(sizes)}"]
    compressed = next(
        name
        for name in largest["accuracy_pct"]
        if name not in ("baseline-fp32", "ptq-int8") and not name.endswith("-onnx")
    )
    gap = round(runs["long-finetune"]["accuracy_pct"][compressed] - largest["accuracy_pct"][compressed], 2)
    growth = round(largest["wall_seconds"] / smallest["wall_seconds"], 2)
    speedup = round(
        largest["seconds_before_measurement"] / max(0.1, runs["second-profile-cached"]["seconds_before_measurement"]), 2
    )
    return {
        "deploy_50k_minutes": {
            "measured": round(largest["wall_seconds"] / 60, 2),
            "aim": "<= 10",
            "met": largest["wall_seconds"] <= 600,
        },
        "growth_5k_to_50k": {"measured": growth, "aim": "<= 2x", "met": growth <= 2.0},
        "points_below_long_finetune": {"measured": gap, "aim": "<= 0.5", "met": gap <= 0.5, "artifact": compressed},
        "second_deploy_speedup_before_measurement": {"measured": speedup, "aim": ">= 3x", "met": speedup >= 3.0},
    }


if __name__ == "__main__":
    main()
