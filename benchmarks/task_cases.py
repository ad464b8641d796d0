"""Small real models and data of each task, for the task benchmark and the tests (a few seconds each).

* gestures: a Conv1D classifier of synthetic IMU windows (128 x 3, standardised floats);
* diabetes: a dense regressor of scikit-learn's bundled diabetes data;
* autoencoder: a dense autoencoder of scikit-learn's digits, 0-4 normal and 5-9 anomalous;
* detector: a two-output model (softmax colour scores and boxes) of coloured squares, and a
  folder of unlabelled images of them.

Each builder trains its model with `seed`, saves it and its data under `folder`, and returns
(model file, data spec).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def _keras(seed: int) -> Any:
    from edgecompress._tf import keras

    k = keras()
    k.utils.set_random_seed(seed)
    return k


def imu_windows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four gestures as noisy oscillations of different frequencies on three axes, standardised."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    t = np.linspace(0, 1, 128)
    freq = np.array([2, 4, 7, 11])[y][:, None]
    x = np.stack([np.sin(2 * np.pi * freq * t + rng.uniform(0, 6, (n, 1))) * (1 + 0.3 * c) for c in range(3)], -1)
    x = x + rng.normal(0, 0.3, x.shape)
    return ((x - x.mean()) / x.std()).astype(np.float32), y


def gestures(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    k = _keras(seed)
    x, y = imu_windows(900, seed)
    model = k.Sequential(
        [
            k.Input((128, 3)),
            k.layers.Conv1D(8, 5, activation="relu"),
            k.layers.MaxPooling1D(2),
            k.layers.Conv1D(16, 5, activation="relu"),
            k.layers.GlobalAveragePooling1D(),
            k.layers.Dense(4, activation="softmax"),
        ]
    )
    model.compile(k.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=6, batch_size=64, verbose=0)
    model.save(folder / "gestures.h5")
    np.savez(folder / "imu.npz", x=x, y=y, class_names=np.array(["circle", "shake", "tap", "wave"]))
    return folder / "gestures.h5", folder / "imu.npz"


def diabetes(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    from sklearn.datasets import load_diabetes

    k = _keras(seed)
    data = load_diabetes()
    x, y = data.data.astype(np.float32), data.target.astype(np.float32)
    model = k.Sequential(
        [
            k.Input((10,)),
            k.layers.Dense(32, activation="relu"),
            k.layers.Dense(32, activation="relu"),
            k.layers.Dense(1),
        ]
    )
    model.compile(k.optimizers.Adam(0.05), "mse")
    model.fit(x, y, epochs=120, batch_size=32, verbose=0)
    model.save(folder / "diabetes.h5")
    np.savez(folder / "diabetes.npz", x=x, y=y)
    return folder / "diabetes.h5", folder / "diabetes.npz"


def autoencoder(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    from sklearn.datasets import load_digits

    k = _keras(seed)
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    normal, anomalous = x[digits.target < 5], x[digits.target >= 5]
    model = k.Sequential(
        [
            k.Input((64,)),
            k.layers.Dense(24, activation="relu"),
            k.layers.Dense(8, activation="relu"),
            k.layers.Dense(24, activation="relu"),
            k.layers.Dense(64, activation="sigmoid"),
        ]
    )
    model.compile(k.optimizers.Adam(0.01), "mse")
    model.fit(normal[:600], normal[:600], epochs=40, batch_size=32, verbose=0)
    model.save(folder / "autoencoder.h5")
    x_test = np.concatenate([normal[600:750], anomalous[:150]])
    np.savez(folder / "sounds.npz", x_train=normal[:600], x_test=x_test, y_test=np.repeat([0, 1], 150))
    return folder / "autoencoder.h5", folder / "sounds.npz"


#: the five colours a square can have: the detector's classes
COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 255, 255]], dtype=np.uint8)


def squares(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noisy 16x16 images with one 5x5 coloured square: its colour (class) and its box (x, y, w, h in 0..1)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 80, (n, 16, 16, 3), dtype=np.uint8)
    colour = rng.integers(0, 5, n)
    corner = rng.integers(0, 11, (n, 2))
    for i in range(n):
        row, col = corner[i]
        pixels[i, row : row + 5, col : col + 5] = COLOURS[colour[i]]
    box = np.column_stack([corner[:, 1], corner[:, 0], np.full(n, 5), np.full(n, 5)]).astype(np.float32) / 16
    return pixels, colour, box


def detector(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """A two-output model (class scores and boxes) and unlabelled images: nothing but representative inputs."""
    k = _keras(seed)
    pixels, colour, box = squares(600, seed)
    source = k.Input((16, 16, 3))
    h = k.layers.Rescaling(1 / 255.0)(source)
    h = k.layers.Conv2D(8, 3, activation="relu")(h)
    h = k.layers.Conv2D(16, 3, activation="relu")(h)
    h = k.layers.GlobalAveragePooling2D()(h)
    scores = k.layers.Dense(5, activation="softmax", name="scores")(h)
    boxes = k.layers.Dense(4, name="boxes")(h)
    model = k.Model(source, [scores, boxes])
    model.compile(k.optimizers.Adam(0.01), ["sparse_categorical_crossentropy", "mse"])
    model.fit(pixels.astype(np.float32), [colour, box], epochs=10, batch_size=32, verbose=0)
    model.save(folder / "detector.h5")
    images = folder / "unlabelled_images"
    images.mkdir(exist_ok=True)
    for i, image in enumerate(squares(100, seed + 1000)[0]):
        Image.fromarray(image).save(images / f"{i:03d}.png")  # inputs alone: no labels, no boxes
    return folder / "detector.h5", images


BUILDERS = {"gestures": gestures, "diabetes": diabetes, "autoencoder": autoencoder, "detector": detector}
