"""Fine-tuning after a recipe changed the weights: it runs while it still improves, within a step cap and time.

Compression fine-tuning needs enough optimizer steps at a sensible learning rate, not many
passes over whatever data set the user has: tfmot's own clustering and CQAT examples
fine-tune for one to a few epochs, while binarised weights take several times longer to
recover. So a stage trains while its validation accuracy still improves: a held-out split
(seeded and random, because user data is often ordered by class) is checked every tenth of
the base step budget, and the stage stops on a plateau -- PLATEAU_CHECKS checks in a row
that neither raise the best validation accuracy by more than PLATEAU_MIN_GAIN nor lower the
best validation loss by more than PLATEAU_MIN_LOSS_DROP (a small or easy hold-out saturates
in accuracy while the loss still says the network is recovering) -- restoring the weights of
the check with the best accuracy (the lower loss among equals). The first plateau does not stop a stage: it
goes back to the best check and cuts the learning rate to a tenth (ANNEAL_FACTOR), because a stage cut
short of its cap would otherwise end on weights trained at a high rate, which is what its cosine decay
over the cap is there to avoid (8-cluster clustering of a CIFAR-10 ResNet: 1.4 points worse when a
2,000-step cap let it stop at step 1,000 than with a 1,000-step cap); the second plateau stops it.
A step cap bounds it, scaled by how harsh the stage's recipes are
(`Recipe.step_scale_for`: binarisation gets 4x the budget of 16-cluster clustering, 8 clusters 2x), and the whole fine-tune has an
optional wall-clock budget. Batches are drawn from the whole training set in a seeded
order; the learning rate warms up and follows a cosine decay over the cap. Every check is
one progress line with an ETA, and training.json says why each stage stopped. Small data
sets are also capped in epochs-equivalent, so 1,400 digits are not seen 40 times.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgecompress._tf import keras, tensorflow
from edgecompress.errors import DataError

DEFAULT_STEPS = 1000
DEFAULT_EPOCHS = 10
#: validation checks (and progress lines) per base step budget; a scaled stage gets as many more
CHECKS_PER_STAGE = 10
#: a plateau: this many checks in a row without beating the best validation accuracy by more than PLATEAU_MIN_GAIN
PLATEAU_CHECKS = 3
#: 0.5 point of validation accuracy per check: below it, more steps cost time and buy noise (2,000 held-out
#: images measure a 70 % accuracy to about +-1 point)
PLATEAU_MIN_GAIN = 0.005
#: ... or a fall of the validation loss by this fraction of its best
PLATEAU_MIN_LOSS_DROP = 0.01
#: the learning rate after the first plateau, as a fraction of the schedule's (ReduceLROnPlateau's usual tenth)
ANNEAL_FACTOR = 0.1

Say = Callable[[str], None]


@dataclass(frozen=True)
class FineTuning:
    """How every compression stage is fine-tuned (CQAT has two stages).

    A stage runs at most `steps` optimizer steps and at most `epochs` passes over the
    training data, whichever is fewer; all stages together stop after `minutes` if given.
    """

    steps: int = DEFAULT_STEPS
    epochs: int = DEFAULT_EPOCHS
    minutes: float | None = None
    batch_size: int = 64
    validation_fraction: float = 0.1
    validation_max: int = 2000  # a larger hold-out only makes each check slower
    patience: int = PLATEAU_CHECKS  # checks in a row without a gain of min_gain: a plateau, the stage stops
    min_gain: float = PLATEAU_MIN_GAIN  # validation accuracy a check must add to the best to count as progress
    min_loss_drop: float = PLATEAU_MIN_LOSS_DROP  # ... or the fraction of the best validation loss it must shed
    seed: int = 0
    progress: bool = True
    say: Say | None = field(default=None, compare=False)  # where progress lines go (None: nowhere)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.epochs < 1:
            raise ValueError(f"steps and epochs must be at least 1, got {self.steps} and {self.epochs}")
        if self.minutes is not None and self.minutes <= 0:
            raise ValueError(f"minutes must be positive, got {self.minutes}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be between 0 and 1, got {self.validation_fraction}")

    def budget(self) -> dict[str, Any]:
        """The settings that decide the result (what a cache key and the plan show)."""
        return {
            "steps": self.steps,
            "epochs": self.epochs,
            "minutes": self.minutes,
            "batch_size": self.batch_size,
            "validation_fraction": self.validation_fraction,
            "validation_max": self.validation_max,
            "patience": self.patience,
            "min_gain": self.min_gain,
            "min_loss_drop": self.min_loss_drop,
            "seed": self.seed,
        }

    def describe(self, n_examples: int) -> str:
        """The budget in words, for the plan and the log."""
        n_train = n_examples - int(round(n_examples * self.validation_fraction))
        limit = f"at most {self.minutes:g} minutes in all" if self.minutes is not None else "no time limit"
        return (
            f"each stage trains while it improves, up to {self.stage_steps(n_train):,} steps of {self.batch_size} "
            f"images (the smaller of {self.steps:,} steps and {self.epochs} passes over {n_train:,} training images; "
            f"binarised, few-bit and few-cluster recipes and a speed recipe's new shapes get 2-4x that), validation on "
            f"{min(self.validation_max, n_examples - n_train):,} held-out images every {self.check_every(n_train):,} steps, "
            f"stopping on a plateau ({self.patience} checks without {100 * self.min_gain:g} points of validation "
            f"accuracy gained or {100 * self.min_loss_drop:g} % of validation loss shed), {limit}"
        )

    def check_every(self, n_train: int) -> int:
        """Steps between validation checks: a tenth of the unscaled stage budget, so a stage with a scaled
        cap gets proportionally more checks."""
        return max(1, math.ceil(self.stage_steps(n_train) / CHECKS_PER_STAGE))

    def stage_steps(self, n_train: int, scale: float = 1.0) -> int:
        """The step cap of one stage for `n_train` training examples; a stage that changes more (binarised
        weights, a speed recipe's new shapes) asks for `scale` times the base budget."""
        return max(1, int(scale * min(self.steps, self.epochs * math.ceil(n_train / self.batch_size))))


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: Any  # one array, or a tuple with one per output (a model with several outputs)
    x_val: np.ndarray
    y_val: Any


def training_arrays(data: Any) -> tuple[np.ndarray, Any]:
    """(x, y) from an `edgecompress.data.Dataset` (anything with x_train/y_train) or an (x, y) pair;
    y may be a tuple with one array per output of a model with several outputs."""
    if hasattr(data, "x_train") and hasattr(data, "y_train"):
        x, y = data.x_train, data.y_train
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    else:
        raise TypeError("data must be an edgecompress Dataset (x_train, y_train) or an (x, y) pair")
    x = np.asarray(x)
    y = tuple(np.asarray(part) for part in y) if isinstance(y, tuple) else np.asarray(y)
    if any(len(part) != len(x) for part in (y if isinstance(y, tuple) else (y,))):
        raise DataError(
            f"The training data has {len(x)} samples but targets of another length.", "Pass one target per sample."
        )
    return x, y


def _rows(y: Any, rows: np.ndarray) -> Any:
    return tuple(part[rows] for part in y) if isinstance(y, tuple) else y[rows]


def split_validation(x: np.ndarray, y: Any, fraction: float, seed: int, limit: int | None = None) -> Split:
    """A seeded random hold-out of `fraction` (at most `limit` examples); refuses data too small to hold anything out."""
    n_val = int(round(len(x) * fraction))
    if n_val < 1 or n_val >= len(x):
        raise DataError(
            f"The training data has {len(x)} examples, too few to hold out {fraction:.0%} for validation during fine-tuning.",
            "Give fine-tuning more training data (at least a few dozen images per class).",
        )
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = order[:n_val][:limit], order[n_val:]
    return Split(x[train], _rows(y, train), x[val], _rows(y, val))


def loss_for(model: Any) -> Any:
    """The training loss the model's output layer implies (softmax, sigmoid or logits).

    Call it on the model as the user gave it: once the last layer is wrapped for training
    its activation is hidden inside the wrapper.
    """
    from edgecompress.model_io import output_kind

    k = keras()
    kind = output_kind(model)
    if int(model.outputs[0].shape[-1]) == 1:
        return k.losses.BinaryCrossentropy(from_logits=kind == "logits")
    return k.losses.SparseCategoricalCrossentropy(from_logits=kind == "logits")


@dataclass
class Clock:
    """The wall-clock budget shared by every stage of one fine-tune."""

    minutes: float | None
    started: float = field(default_factory=time.monotonic)

    def remaining_s(self) -> float:
        return math.inf if self.minutes is None else self.minutes * 60.0 - (time.monotonic() - self.started)


def finetune(
    model: Any,
    split: Split,
    settings: FineTuning,
    *,
    learning_rate: float,
    loss: Any,
    callbacks: Sequence[Any] = (),
    settle_steps: int = 0,
    label: str = "fine-tuning",
    clock: Clock | None = None,
    budget_scale: float = 1.0,
    metrics: Sequence[str] = ("accuracy",),
    loss_words: str = "",
) -> dict[str, Any]:
    """Train `model` in place within the budget; its weights end at the best validation check.

    Returns what training.json records: steps run, epochs-equivalent, wall time, why it
    stopped and the validation curve. `loss` comes from `loss_for` on the unwrapped model;
    `settle_steps` delays early stopping while a recipe's shape still changes (pruning's ramp).
    """
    tf, k = tensorflow(), keras()
    k.utils.set_random_seed(settings.seed)
    tf.config.experimental.enable_op_determinism()
    clock = clock or Clock(settings.minutes)
    cap = settings.stage_steps(len(split.x_train), budget_scale)
    check_every = min(cap, settings.check_every(len(split.x_train)))
    rounds = max(1, cap // check_every)
    total = rounds * check_every  # never over the cap
    schedule = _schedule(learning_rate, total)
    model.compile(optimizer=k.optimizers.Adam(schedule), loss=loss, metrics=list(metrics))
    plateau = _plateau_class()(settings, schedule, start=settle_steps // check_every)
    watch = _watch_class()(
        label,
        total,
        check_every,
        len(split.x_train) / settings.batch_size,
        clock,
        settings.say if settings.progress else None,
    )
    started = time.monotonic()
    model.fit(
        _batches(split, settings.batch_size, settings.seed),
        validation_data=(split.x_val, split.y_val),
        validation_batch_size=256,
        steps_per_epoch=check_every,
        epochs=rounds,
        verbose=0,
        callbacks=[*callbacks, plateau, watch],  # recipe callbacks first: they finish the round's weights
    )
    restored = plateau.best_check if plateau.best_check is not None else len(watch.curve) - 1
    record = _record(label, learning_rate, total, watch, len(split.x_train) / settings.batch_size, started, restored)
    record.update(_why_stopped(record, watch, plateau, settings, budget_scale))
    return {**record, "loss": loss_words} if loss_words else record


def _why_stopped(
    record: dict[str, Any], watch: Any, plateau: Any, settings: FineTuning, scale: float
) -> dict[str, Any]:
    """Why a stage ended, in training.json's words: 'plateau', 'step cap' or 'time budget', with its figures."""
    cap = f"{record['budget_steps']:,} steps" + (f" ({scale:g}x the base {settings.steps:,})" if scale != 1 else "")
    if watch.stopped_by == "time budget":
        key, reason = "time budget", f"the fine-tune's {settings.minutes:g}-minute budget ran out"
    elif plateau.stopped:
        key = "plateau"
        best = (
            f"best accuracy {record['val_accuracy']:.4f}"
            if record["val_accuracy"] is not None
            else f"best validation loss {record['val_loss']:.4g}"  # a task trained without accuracy (MSE, distillation)
        )
        no_gain = (
            f"validation accuracy gained less than {100 * settings.min_gain:g} points over its best and "
            if record["val_accuracy"] is not None
            else ""  # trained without an accuracy (MSE, distillation): the loss alone decides
        )
        reason = (
            f"in {settings.patience} checks in a row {no_gain}validation loss fell less than "
            f"{100 * settings.min_loss_drop:g} % ({best} at step {record['best_step']:,}), after the first such "
            f"plateau had cut the learning rate to {ANNEAL_FACTOR:g}x from the best check at step "
            f"{watch.check_every * (plateau.annealed_at + 1):,}"
        )
    else:
        gained = _last_gain(watch.curve, settings.patience)
        key, reason = (
            "step cap",
            f"reached the cap of {cap} while still improving"
            + (  # accuracy may have dipped while the loss still fell: the rule's other sign of progress
                f" ({100 * gained:+.2f} points of validation accuracy over the last {settings.patience} checks)"
                if gained is not None
                else ""
            ),
        )
    rule = {
        "checks": settings.patience,
        "anneal_factor": ANNEAL_FACTOR,
        "min_gain": settings.min_gain,
        "min_loss_drop": settings.min_loss_drop,
        "check_every": watch.check_every,
        "cap": cap,
    }
    annealed = None if plateau.annealed_at is None else watch.check_every * (plateau.annealed_at + 1)
    return {"stopped_by": key, "stop_reason": reason, "stop_rule": rule, "annealed_at_step": annealed}


def _last_gain(curve: list[dict[str, Any]], checks: int) -> float | None:
    accuracies = [point["val_accuracy"] for point in curve if "val_accuracy" in point]
    return accuracies[-1] - accuracies[-1 - checks] if len(accuracies) > checks else None


def _record(
    label: str, learning_rate: float, total: int, watch: Any, steps_per_epoch: float, started: float, best: int
) -> dict[str, Any]:
    """What training.json keeps of one stage: its cap, what ran, and the check whose weights it ends with."""
    best = min(max(best, 0), len(watch.curve) - 1)
    return {
        "stage": label,
        "learning_rate": learning_rate,
        "budget_steps": total,
        "steps": watch.steps,
        "epochs_equivalent": round(watch.steps / steps_per_epoch, 3),
        "wall_seconds": round(time.monotonic() - started, 2),
        "best_step": watch.curve[best]["step"] if watch.curve else 0,
        "val_loss": watch.curve[best].get("val_loss") if watch.curve else None,
        "val_accuracy": watch.curve[best].get("val_accuracy") if watch.curve else None,
        "curve": watch.curve,
    }


def _schedule(learning_rate: float, steps: int) -> Any:
    """Warm up for 5 % of the budget from a tenth of the rate, then a cosine decay to 5 %, times a factor the
    plateau rule cuts (`scale`)."""
    warmup = max(1, steps // 20)
    cosine = keras().optimizers.schedules.CosineDecay(
        learning_rate / 10.0,
        decay_steps=max(1, steps - warmup),
        alpha=0.05,
        warmup_target=learning_rate,
        warmup_steps=warmup,
    )
    return _scaled_class()(cosine)


@functools.lru_cache(maxsize=1)
def _scaled_class() -> type:
    """A schedule times a variable factor (Keras' ReduceLROnPlateau cannot change a schedule's rate)."""
    k, tf = keras(), tensorflow()

    class Scaled(k.optimizers.schedules.LearningRateSchedule):  # type: ignore[name-defined]  # tf-keras, lazily
        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.scale = tf.Variable(1.0, trainable=False, dtype=tf.float32)

        def __call__(self, step: Any) -> Any:
            return self.inner(step) * self.scale

        def get_config(self) -> dict[str, Any]:
            return {"inner": self.inner.get_config(), "scale": float(self.scale.numpy())}

    return Scaled


def _batches(split: Split, batch_size: int, seed: int) -> Any:
    """Batches drawn from the whole training set in a seeded order, reshuffled every pass, endless."""
    tf = tensorflow()
    n = len(split.x_train)
    rng = np.random.default_rng(seed)

    def indices() -> Any:
        while True:
            yield from rng.permutation(n)

    order = tf.data.Dataset.from_generator(indices, output_signature=tf.TensorSpec((), tf.int64))
    x, y = split.x_train, split.y_train
    parts = y if isinstance(y, tuple) else (y,)
    types = (tf.as_dtype(x.dtype), *(tf.as_dtype(part.dtype) for part in parts))

    def lookup(rows: Any) -> Any:
        found = tf.numpy_function(lambda r: (x[r], *(part[r] for part in parts)), [rows], types)
        bx = tf.ensure_shape(found[0], (None, *x.shape[1:]))
        by = [tf.ensure_shape(t, (None, *part.shape[1:])) for t, part in zip(found[1:], parts)]
        return bx, (tuple(by) if isinstance(y, tuple) else by[0])

    return order.batch(batch_size).map(lookup).prefetch(2)


def _duration(seconds: float) -> str:
    if math.isinf(seconds):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@functools.lru_cache(maxsize=1)
def _plateau_class() -> type:
    """The plateau rule as a callback (Keras' EarlyStopping watches one figure; this one watches accuracy and
    loss), defined on first use so importing this module stays free of TensorFlow."""
    k = keras()

    class Plateau(k.callbacks.Callback):  # type: ignore[name-defined]  # tf-keras, imported lazily
        """After `patience` checks without progress, goes back to the best check and cuts the learning rate;
        the next time, stops. Ends with the best-accuracy check's weights."""

        def __init__(self, settings: FineTuning, schedule: Any, start: int = 0) -> None:
            super().__init__()
            self.settings, self.schedule, self.start = settings, schedule, start
            self.annealed_at: int | None = None  # the check after which the learning rate was cut
            self.best_accuracy, self.best_loss = -math.inf, math.inf
            self.best_check: int | None = None
            self.best_weights: Any = None
            self.best_rank = (-math.inf, -math.inf)
            self.waited, self.stopped = 0, False

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs = logs or {}
            # a stage trained without an accuracy metric (MSE, distillation) ranks its checks by loss alone
            accuracy, loss = float(logs.get("val_accuracy", -math.inf)), float(logs.get("val_loss", math.nan))
            if epoch >= self.start and (accuracy, -loss) > self.best_rank:  # not while a recipe still ramps
                self.best_rank, self.best_check, self.best_weights = (accuracy, -loss), epoch, self.model.get_weights()
            progress = accuracy > self.best_accuracy + self.settings.min_gain or loss < self.best_loss * (
                1 - self.settings.min_loss_drop
            )
            self.best_accuracy, self.best_loss = max(self.best_accuracy, accuracy), min(self.best_loss, loss)
            self.waited = 0 if progress or epoch < self.start else self.waited + 1
            if self.waited >= self.settings.patience and self.annealed_at is None:
                self.annealed_at, self.waited = epoch, 0
                self.schedule.scale.assign(ANNEAL_FACTOR)
                if self.best_weights is not None:
                    self.model.set_weights(self.best_weights)
            elif self.waited >= self.settings.patience:
                self.stopped = self.model.stop_training = True

        def on_train_end(self, logs: Any = None) -> None:
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return Plateau


@functools.lru_cache(maxsize=1)
def _watch_class() -> type:
    """The progress/budget callback, defined on first use so importing this module stays free of TensorFlow."""
    k = keras()

    class Watch(k.callbacks.Callback):  # type: ignore[name-defined]  # tf-keras, imported lazily
        """One progress line per validation check, the curve for training.json, and the time budget."""

        def __init__(
            self, label: str, total: int, check_every: int, steps_per_epoch: float, clock: Clock, say: Say | None
        ) -> None:
            super().__init__()
            self.label, self.total, self.check_every = label, total, check_every
            self.steps_per_epoch, self.clock, self.say = steps_per_epoch, clock, say
            self.curve: list[dict[str, Any]] = []
            self.steps = 0
            self.stopped_by: str | None = None
            self.started = time.monotonic()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.steps += 1
            if self.clock.remaining_s() <= 0 and not self.model.stop_training:
                self.model.stop_training = True
                self.stopped_by = "time budget"

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs = logs or {}
            elapsed = time.monotonic() - self.started
            point = {
                "step": self.steps,
                "epochs_equivalent": round(self.steps / self.steps_per_epoch, 3),
                "elapsed_s": round(elapsed, 2),
                **{key: float(logs[key]) for key in ("loss", "accuracy", "val_loss", "val_accuracy") if key in logs},
            }
            self.curve.append(point)
            if self.say is not None:
                eta = elapsed / max(1, self.steps) * max(0, self.total - self.steps)
                scores = (
                    f"accuracy {point['accuracy']:.3f}, val accuracy {point.get('val_accuracy', math.nan):.3f}"
                    if "accuracy" in point
                    else f"val loss {point.get('val_loss', math.nan):.4g}"
                )
                self.say(
                    f"  {self.label}: step {self.steps}/{self.total} ({point['epochs_equivalent']:.2f} epochs), "
                    f"loss {point.get('loss', math.nan):.4g}, {scores}, {_duration(elapsed)} elapsed, "
                    f"ETA {_duration(min(eta, self.clock.remaining_s()))}"
                )

    return Watch
