"""A CIFAR-10 ResNet that takes raw 0-255 pixels: the model class issue 23 found failing on microcontrollers.

Benchmark support, not part of the package. The architecture is bench_pipeline's `resnet_80k`
(three stages of residual blocks, 78,714 parameters, 12.5 M MACs), trained here on all
50,000 CIFAR-10 training images *without* dividing by 255 and without a rescaling layer, so
its int8 input scale is exactly 1.0, as for any model fed raw camera pixels. Trained once
(cosine learning-rate decay, horizontal flips) and kept in the data cache.

    python benchmarks/resnet_0_255.py [--epochs 30] [--seed 0]     # prints the path and test accuracy
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))


def trained_resnet_0_255(epochs: int = 30, seed: int = 0) -> Path:
    """The .h5 of the 0-255 ResNet, trained on first use; its figures are in a .json beside it."""
    from benchmarks.bench_pipeline import cifar_arrays, resnet_80k
    from benchmarks.datasets_cache import CACHE_DIR, ensure_cifar10_jpeg

    path = CACHE_DIR / "bench-models" / f"resnet_80k-0_255-cifar10-e{epochs}-s{seed}.h5"
    if path.is_file():
        return path
    from edgecompress._tf import keras, tensorflow

    k, tf = keras(), tensorflow()
    data = cifar_arrays(ensure_cifar10_jpeg())
    x_train, x_test = data["x_train"] * 255.0, data["x_test"] * 255.0  # raw pixels, 0..255
    model = resnet_80k(seed)
    steps = epochs * int(np.ceil(len(x_train) / 128))
    schedule = k.optimizers.schedules.CosineDecay(2e-3, decay_steps=steps)
    model.compile(optimizer=k.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    flips = (
        tf.data.Dataset.from_tensor_slices((x_train, data["y_train"]))
        .shuffle(len(x_train), seed=seed)
        .map(lambda x, y: (tf.image.random_flip_left_right(x, seed=seed), y))
        .batch(128)
        .prefetch(2)
    )
    print(f"training {model.name} on 0-255 pixels ({model.count_params():,} parameters, {epochs} epochs)", flush=True)
    model.fit(flips, epochs=epochs, verbose=2)
    accuracy = float(model.evaluate(x_test, data["y_test"], verbose=0)[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    path.with_suffix(".json").write_text(
        json.dumps({"test_accuracy": accuracy, "epochs": epochs, "seed": seed, "input": "0-255"}, indent=2) + "\n"
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    path = trained_resnet_0_255(args.epochs, args.seed)
    print(path, path.with_suffix(".json").read_text())


if __name__ == "__main__":
    main()
