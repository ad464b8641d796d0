"""A small CNN trained here, on data scikit-learn ships, so a fresh machine can run the
whole main job without downloading a model or a data set."""

from __future__ import annotations

from pathlib import Path

from edgecompress._tf import keras, tensorflow


def build_digits_cnn(n_classes: int = 10):  # noqa: ANN201 - tf_keras.Model
    """Conv-pool-conv-dense: the same shape of network the reference CIFAR CNN has, sized for 8x8 digits."""
    k = keras()
    layers = k.layers
    return k.Sequential(
        [
            layers.Input((8, 8, 1), name="image"),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dropout(0.1),
            layers.Dense(n_classes, activation="softmax"),
        ],
        name="digits_cnn",
    )


def train_example_model(output: Path, *, epochs: int = 15, seed: int = 0) -> dict[str, float]:
    """Train the digits CNN on the training split `sklearn:digits` gives and save it as .h5.

    Uses the same split and scaling `deploy --data sklearn:digits` uses, so the test accuracy
    printed here is the one the report's baseline should match.
    """
    from edgecompress.data import load_dataset

    tf = tensorflow()
    k = keras()
    k.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    data = load_dataset("sklearn:digits", input_shape=(8, 8, 1), seed=seed)
    model = build_digits_cnn(len(data.class_names))
    model.compile(optimizer=k.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        data.x_train,
        data.y_train,
        validation_split=0.1,
        epochs=epochs,
        batch_size=32,
        verbose=0,
        callbacks=[k.callbacks.EarlyStopping(patience=3, restore_best_weights=True)],
    )
    _, accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    model.save(output)
    return {"test_accuracy": float(accuracy), "parameters": float(model.count_params())}
