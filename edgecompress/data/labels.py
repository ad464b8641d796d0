"""Labels as the task reads them: class indices, 0/1 anomaly labels, float targets, or none.

The labels are described first (`label_facts`, all a task decision needs), then read for the
decided task (`labelled_parts`). Nothing a file says sizes an allocation before it has been
checked: a class index is held against the model's score vector (or a fixed ceiling without
a model) before a list of class names is built for it.
"""

from __future__ import annotations

import numpy as np

from edgecompress.data.arrays import finite_targets
from edgecompress.data.pool import Pool
from edgecompress.data.sources import Part, Source
from edgecompress.errors import DataError
from edgecompress.tasks import LabelFacts, ModelFacts, Task

#: without a model to check class indices against, no label may claim more classes than this
MAX_CLASSES_WITHOUT_MODEL = 1 << 16


def label_facts(source: Source, where: str) -> LabelFacts:
    """What the labels look like (kind, shape per sample, whole / 0-1 values, range, the anomaly layout)."""
    if source.labels != "numbers":
        return LabelFacts(source.labels)
    parts = {"train": source.train, "test": source.test}
    given = {
        name: finite_targets(part.y, where, f"y_{name}") for name, part in parts.items() if part and part.y is not None
    }
    joined = [y.reshape(len(y), -1) for y in given.values()]
    shapes = {y.shape[1:] for y in given.values()}
    if len({tuple(y.shape[1:]) for y in joined}) > 1:
        raise DataError(f"{where}: the labels of the train and test parts differ in shape ({sorted(shapes)}).", _SAME)
    values = np.concatenate(joined)
    sample_shape = next(iter(shapes))
    binary = bool(np.isin(values, (0.0, 1.0)).all())
    train_y, test_y = given.get("train"), given.get("test")
    layout = (
        source.test is not None
        and test_y is not None
        and len(np.unique(test_y)) == 2
        and binary
        and (train_y is None or not np.any(train_y))
    )
    return LabelFacts(
        "numbers",
        tuple(sample_shape) if tuple(sample_shape) != (1,) else (),
        bool(np.all(values == np.round(values))),
        binary,
        bool(layout),
        float(values.min()) if values.size else None,
        float(values.max()) if values.size else None,
    )


_SAME = "Save y_train and y_test with the same number of values per sample."


def labelled_parts(
    source: Source, task: Task, facts: ModelFacts | None, where: str
) -> tuple[list[str], Pool, Pool | None, list[str]]:
    """(class names, train pool, test pool or None, notes) with every label read as `task` reads them."""
    if task.labels == "classes":
        names, indices = class_indices(source, facts, where)
        pools = {name: Pool.over(indices[name], part.read) for name, part in _parts(source).items()}
        return names, pools["train"], pools.get("test"), []
    if task.labels == "targets":
        return [], *_target_pools(source, facts, where), []
    if task.labels == "binary":
        return _anomaly_pools(source, where)
    notes = [] if source.labels == "none" else [f"labels ignored: the {task.name} task judges outputs, not labels"]
    pools = {name: Pool.over(np.zeros(part.n, dtype=np.int64), part.read) for name, part in _parts(source).items()}
    return [], pools["train"], pools.get("test"), notes


def _parts(source: Source) -> dict[str, Part]:
    return {"train": source.train, **({"test": source.test} if source.test is not None else {})}


# --- classification ------------------------------------------------------------------------


def class_indices(source: Source, facts: ModelFacts | None, where: str) -> tuple[list[str], dict[str, np.ndarray]]:
    """Class names and a class index per sample of every part, from folders, strings, one-hot rows or numbers."""
    parts = _parts(source)
    missing = [name for name, part in parts.items() if part.y is None]
    if missing:
        raise DataError(f"{where}: the {' and '.join(missing)} part has no labels.", _LABELS_FIX)
    flat = {name: _label_vector(np.asarray(part.y), where) for name, part in parts.items()}
    joined = np.concatenate(list(flat.values()))
    names = source.class_names
    if joined.dtype.kind in "US":
        return _named_classes(flat, joined, names, where)
    values = finite_targets(joined, where, "y")
    if values.size and (values.min() < 0 or np.any(values != np.round(values))):
        raise DataError(f"{where}: y holds values that are not class indices 0, 1, 2, ...", _LABELS_FIX)
    top = int(values.max()) if values.size else -1
    limit = facts.class_scores if facts is not None and facts.class_scores is not None else MAX_CLASSES_WITHOUT_MODEL
    if top >= limit:
        whose = (
            f"the model outputs {limit} class scores" if facts is not None else f"at most {limit:,} classes are read"
        )
        raise DataError(
            f"{where}: y uses class index {top:,} but {whose} (class indices run 0..{limit - 1}).",
            "Give labels that are class indices in the model's output order, or pick the task with --task.",
        )
    if names is not None and top >= len(names):
        raise DataError(
            f"{where}: y uses class index {top} but class_names has only {len(names)} names.",
            "Give one class name per class index.",
        )
    names = names or [str(i) for i in range(top + 1)]
    return names, {name: y.astype(np.int64) for name, y in flat.items()}


def _named_classes(
    flat: dict[str, np.ndarray], joined: np.ndarray, names: list[str] | None, where: str
) -> tuple[list[str], dict[str, np.ndarray]]:
    found = sorted({str(v) for v in joined})
    names = names or found
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise DataError(
            f"{where}: labels {unknown[:10]} are not in class_names {names[:20]}.",
            "Make class_names list every label used in y.",
        )
    index = {name: i for i, name in enumerate(names)}
    return names, {part: np.array([index[str(v)] for v in y], dtype=np.int64) for part, y in flat.items()}


def _label_vector(y: np.ndarray, where: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        return y.ravel()
    if y.ndim == 2 and y.dtype.kind in "biuf" and np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():
        return y.argmax(axis=1)  # one-hot rows
    if y.ndim != 1:
        raise DataError(
            f"{where}: y has shape {list(y.shape)}; expected one label per example.",
            "Save y as a vector of class indices (N,) or one-hot rows (N, classes).",
        )
    return y


_LABELS_FIX = "Save y as integer class indices (or one-hot rows, or class-name strings), one per sample."


# --- regression ----------------------------------------------------------------------------


def _target_pools(source: Source, facts: ModelFacts | None, where: str) -> tuple[Pool, Pool | None]:
    pools = {}
    for name, part in _parts(source).items():
        if part.y is None:
            raise DataError(
                f"{where}: the {name} part has no targets.", "Save y (or y_train and y_test) with the targets."
            )
        targets = finite_targets(part.y, where, f"y_{name}").astype(np.float32).reshape(part.n, -1)
        if facts is not None and targets.shape[1] != facts.output_size:
            raise DataError(
                f"{where}: the targets hold {targets.shape[1]} value(s) per sample but the model outputs "
                f"{facts.output_size}.",
                "Save y with one row per sample shaped like the model's output.",
            )
        pools[name] = Pool.over(np.zeros(part.n, dtype=np.int64), part.read, targets)
    return pools["train"], pools.get("test")


# --- anomaly -------------------------------------------------------------------------------


def _anomaly_pools(source: Source, where: str) -> tuple[list[str], Pool, Pool | None, list[str]]:
    """0 normal / 1 anomalous per sample; training samples without labels are taken as normal."""
    pools, notes = {}, []
    for name, part in _parts(source).items():
        if part.y is None:
            labels = np.zeros(part.n, dtype=np.int64)
            if name == "train":
                notes.append("training samples have no labels: taken as normal (0)")
        else:
            values = finite_targets(part.y, where, f"y_{name}").reshape(part.n, -1)
            if values.shape[1] != 1 or not np.isin(values, (0.0, 1.0)).all():
                raise DataError(
                    f"{where}: anomaly labels must be one 0 (normal) or 1 (anomalous) per sample, but y_{name} holds "
                    f"{_shown_values(values)}.",
                    "Save y_test with 0 for normal and 1 for anomalous samples (y_train may be left out: training "
                    "samples are taken as normal).",
                )
            labels = values.ravel().astype(np.int64)
        pools[name] = Pool.over(labels, part.read)
    return ["normal", "anomalous"], pools["train"], pools.get("test"), notes


def _shown_values(values: np.ndarray) -> str:
    if values.shape[1] != 1:
        return f"{values.shape[1]} values per sample"
    odd = np.unique(values[~np.isin(values, (0.0, 1.0))])[:5]
    return "values such as " + ", ".join(f"{v:g}" for v in odd)
