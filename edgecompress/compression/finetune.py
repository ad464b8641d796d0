"""Fine-tuning after a recipe changed the weights: seeded, validated, stopped early.

The validation split is drawn at random (seeded) rather than Keras's "last 10%", because
user data is often ordered by class. Early stopping watches validation loss and always
restores the best epoch's weights; recipes whose shape is still changing during the first
epochs (pruning's sparsity ramp) start it later with `settle_epochs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from edgecompress._tf import keras, tensorflow
from edgecompress.errors import DataError

DEFAULT_EPOCHS = 10


@dataclass(frozen=True)
class FineTuning:
    """How every compression stage is fine-tuned; `epochs` is per stage (CQAT has two stages)."""

    epochs: int = DEFAULT_EPOCHS
    batch_size: int = 32
    validation_fraction: float = 0.1
    patience: int = 3
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be between 0 and 1, got {self.validation_fraction}")


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def training_arrays(data: Any) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) from an `edgecompress.data.Dataset` (anything with x_train/y_train) or an (x, y) pair."""
    if hasattr(data, "x_train") and hasattr(data, "y_train"):
        x, y = data.x_train, data.y_train
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    else:
        raise TypeError("data must be an edgecompress Dataset (x_train, y_train) or an (x, y) pair")
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise DataError(f"The training data has {len(x)} images but {len(y)} labels.", "Pass one label per image.")
    return x, y


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> Split:
    """A seeded random hold-out; refuses data too small to hold anything out."""
    n_val = int(round(len(x) * fraction))
    if n_val < 1 or n_val >= len(x):
        raise DataError(
            f"The training data has {len(x)} examples, too few to hold out {fraction:.0%} for validation during fine-tuning.",
            "Give fine-tuning more training data (at least a few dozen images per class).",
        )
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = order[:n_val], order[n_val:]
    return Split(x[train], y[train], x[val], y[val])


def loss_for(model: Any) -> Any:
    """The training loss the model's output layer implies (softmax, sigmoid or logits).

    Call it on the model as the user gave it: once the last layer is wrapped for training
    its activation is hidden inside the wrapper.
    """
    from edgecompress.model_io import _output_kind

    k = keras()
    kind = _output_kind(model)
    if int(model.outputs[0].shape[-1]) == 1:
        return k.losses.BinaryCrossentropy(from_logits=kind == "logits")
    return k.losses.SparseCategoricalCrossentropy(from_logits=kind == "logits")


def finetune(
    model: Any,
    split: Split,
    settings: FineTuning,
    *,
    learning_rate: float,
    loss: Any,
    callbacks: Sequence[Any] = (),
    settle_epochs: int = 0,
    label: str = "fine-tuning",
) -> dict[str, Any]:
    """Train `model` in place; its weights end at the best validation epoch. Returns a summary.

    `loss` comes from `loss_for` on the unwrapped model.
    """
    tf = tensorflow()
    k = keras()
    k.utils.set_random_seed(settings.seed)
    tf.config.experimental.enable_op_determinism()
    model.compile(optimizer=k.optimizers.Adam(learning_rate), loss=loss, metrics=["accuracy"])
    stopper = k.callbacks.EarlyStopping(
        monitor="val_loss", patience=settings.patience, restore_best_weights=True, start_from_epoch=max(0, settle_epochs - 1)
    )
    steps = int(np.ceil(len(split.x_train) / settings.batch_size))
    progress = [_progress_bar(label, settings.epochs, steps)] if settings.progress else []
    history = model.fit(
        split.x_train,
        split.y_train,
        validation_data=(split.x_val, split.y_val),
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[*callbacks, stopper, *progress],  # recipe callbacks first: they finish the epoch's weights
    )
    val_loss = history.history["val_loss"]
    best = stopper.best_epoch if stopper.best_weights is not None else len(val_loss) - 1
    return {
        "stage": label,
        "learning_rate": learning_rate,
        "epochs_run": len(val_loss),
        "best_epoch": int(best) + 1,
        "val_loss": float(val_loss[best]),
        "val_accuracy": float(history.history["val_accuracy"][best]),
    }


def _progress_bar(label: str, epochs: int, steps: int) -> Any:
    """A rich progress bar over all batches of all epochs, with the last validation figures."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    k = keras()

    class RichProgress(k.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), TextColumn("{task.fields[status]}"), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(label, total=epochs * steps, status="")

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.bar.advance(self.task)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs = logs or {}
            self.bar.update(self.task, completed=(epoch + 1) * steps, description=f"{label} epoch {epoch + 1}/{epochs}",
                            status=f"val_loss {logs.get('val_loss', float('nan')):.4f} val_acc {logs.get('val_accuracy', float('nan')):.3f}")

        def on_train_end(self, logs: Any = None) -> None:
            self.bar.stop()

    return RichProgress()
