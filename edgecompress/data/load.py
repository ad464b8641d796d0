"""`load_dataset`: from a data spec to scaled train/test arrays that fit the model's input."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecompress.data.dataset import Dataset, check_scaling, scale_pixels
from edgecompress.data.layout import InputLayout
from edgecompress.data.pool import Pool
from edgecompress.data.selection import class_mapping, random_split, require_examples, shuffled, stratified_sample
from edgecompress.data.sources import Source, read_source
from edgecompress.data.spec import DataSpec
from edgecompress.errors import DataError


def load_dataset(
    spec: str | Path | DataSpec,
    *,
    input_shape: tuple[int | None, ...],
    classes: list[str] | None = None,
    scaling: str = "0-1",
    seed: int = 0,
    test_fraction: float = 0.2,
    resize: bool = False,
    max_train: int | None = None,
    max_test: int | None = None,
) -> Dataset:
    """Load `spec` for a model whose input (without batch) is `input_shape`.

    Spec forms: 'sklearn:digits'; a folder of class folders, with train/ and test/ or split
    here (stratified, `test_fraction`, `seed`); an .npz with x/y (split the same way) or
    x_train/y_train/x_test/y_test and optional class_names. An .npz's pixels are read as raw
    0..255 when their maximum is above 1.5 and as already 0..1 otherwise (recorded in notes).
    `classes` picks classes by name and relabels them 0..k-1 in the order given.
    Everything that does not fit raises DataError naming the file or value and the fix.
    """
    data_spec = spec if isinstance(spec, DataSpec) else DataSpec.parse(spec)
    where = str(data_spec)
    check_scaling(scaling)
    layout = InputLayout.from_input_shape(input_shape, resize=resize)
    source = read_source(data_spec, layout, classes)
    names, mapping = class_mapping(source.class_names, classes, where)
    train, test, split = _split(source, names, mapping, where, test_fraction=test_fraction, seed=seed)
    train, train_note = stratified_sample(train, max_train, seed=seed, what="max_train")
    test, test_note = stratified_sample(test, max_test, seed=seed, what="max_test")
    x_train, train_read_notes = train.load()
    x_test, test_read_notes = test.load()
    missing = [name for name, n in zip(names, test.counts(len(names))) if n == 0]
    notes = [
        *source.notes,
        *(f"train: {n}" for n in train_read_notes),
        *(f"test: {n}" for n in test_read_notes),
        *train_note,
        *test_note,
    ]
    if missing:
        notes.append(f"no test examples for class(es) {', '.join(missing)}")
    return Dataset(
        x_train=scale_pixels(x_train, scaling),
        y_train=train.labels.copy(),
        x_test=scale_pixels(x_test, scaling),
        y_test=test.labels.copy(),
        class_names=names,
        source=where,
        scaling=scaling,
        split=split,
        notes=notes,
    )


def _split(
    source: Source, names: list[str], mapping: np.ndarray, where: str, *, test_fraction: float, seed: int
) -> tuple[Pool, Pool, str]:
    """Train and test examples in the chosen classes: the source's own test part, else a stratified random split."""
    train = source.train.relabel(mapping)
    if source.test is None:
        train, test, split = random_split(train, names, test_fraction=test_fraction, seed=seed, where=where)
    else:
        require_examples(train, names, where)
        train, test, split = shuffled(train, seed), shuffled(source.test.relabel(mapping), seed), "given"
    if len(test) == 0:
        raise DataError(
            f"{where} has no test examples for the classes {names}.",
            "Add test examples for them, or drop the test part to have a random split made.",
        )
    return train, test, split
