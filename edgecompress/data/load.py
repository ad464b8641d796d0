"""`load_dataset`: from a data spec to scaled train/test arrays that fit the model, read for its task."""

from __future__ import annotations

from pathlib import Path

from edgecompress.data.dataset import AS_STORED, Dataset, check_scaling, scale_values
from edgecompress.data.labels import label_facts, labelled_parts
from edgecompress.data.layout import InputLayout
from edgecompress.data.pool import Pool
from edgecompress.data.selection import class_mapping, random_split, require_examples, shuffled, subsample
from edgecompress.data.sources import Source, read_source
from edgecompress.data.spec import DataSpec
from edgecompress.errors import DataError
from edgecompress.tasks import TASKS, LabelFacts, ModelFacts, Task, TaskDecision, decide_task

#: a data set needs at least this many samples: one to train on and one to evaluate
MIN_SAMPLES = 2


def load_dataset(
    spec: str | Path | DataSpec,
    *,
    input_shape: tuple[int | None, ...] | None = None,
    model: ModelFacts | None = None,
    task: str | None = None,
    classes: list[str] | None = None,
    scaling: str | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    resize: bool = False,
    max_train: int | None = None,
    max_test: int | None = None,
) -> Dataset:
    """Load `spec` for a model (its `ModelFacts`, or just its `input_shape`), read for its task.

    Spec forms: 'sklearn:digits' / 'sklearn:diabetes'; a folder of class folders (images or
    one-sample .npy files), with train/ and test/ or split here (`test_fraction`, `seed`), or
    a folder of unlabelled images; an .npz with x and optional y (or x_train/x_test with
    y_train/y_test) and optional class_names; a .npy of samples. The task is `task`, else
    inferred from the labels and the model's outputs (tasks/infer.py); the decision is kept
    in `Dataset.task_decision`. Without the model's facts (only `input_shape`), whole-number
    labels are read as class indices and other numbers as regression targets: pass `model`
    or `task` for anything else. `classes` picks classes by name (classification only).
    `scaling` None means: 0-1 for pixels, the values as stored otherwise.
    Everything that does not fit raises DataError naming the file or value and the fix.
    """
    data_spec = spec if isinstance(spec, DataSpec) else DataSpec.parse(spec)
    where = str(data_spec)
    if scaling is not None:
        check_scaling(scaling, None if scaling == AS_STORED else 1.0)
    shape = model.input_shape if model is not None else input_shape
    if shape is None:
        raise DataError(
            "load_dataset needs the model's input shape.", "Pass model=ModelFacts(...) or input_shape=(...)."
        )
    source = read_source(data_spec, InputLayout.from_input_shape(shape, resize=resize), classes)
    decision = _decision(task, model, label_facts(source, where))
    chosen = TASKS[decision.task]
    names, train, test, notes = labelled_parts(source, chosen, model, where)
    names, train, test = _classes(chosen, names, train, test, classes, where)
    train, test, split = _split(train, test, names, chosen, where, test_fraction=test_fraction, seed=seed)
    train, train_note = subsample(train, max_train, seed=seed, what="max_train", stratified=chosen.stratified)
    test, test_note = subsample(test, max_test, seed=seed, what="max_test", stratified=chosen.stratified)
    notes += [*train_note, *test_note, *_missing_classes(chosen, names, test)]
    dataset = _loaded(train, test, scaling, source, notes)
    dataset.class_names, dataset.source, dataset.split = names, where, split
    dataset.task, dataset.labelled, dataset.task_decision = chosen.name, _labelled(chosen, source), decision.to_dict()
    return dataset


def _loaded(train: Pool, test: Pool, scaling: str | None, source: Source, notes: list[str]) -> Dataset:
    """The kept samples read and scaled (0-1 for pixels and values as stored otherwise, unless `scaling` says)."""
    x_train, train_read_notes = train.load()
    x_test, test_read_notes = test.load()
    used = scaling or (AS_STORED if source.pixel_factor is None else "0-1")
    check_scaling(used, source.pixel_factor)
    return Dataset(
        x_train=scale_values(x_train, used, source.pixel_factor),
        y_train=train.values.copy(),
        x_test=scale_values(x_test, used, source.pixel_factor),
        y_test=test.values.copy(),
        class_names=[],
        source="",
        scaling=used,
        split="",
        notes=[
            *source.notes,
            *notes,
            *(f"train: {n}" for n in train_read_notes),
            *(f"test: {n}" for n in test_read_notes),
        ],
        pixel_factor=source.pixel_factor,
    )


def _decision(task: str | None, model: ModelFacts | None, labels: LabelFacts) -> TaskDecision:
    """The task: decided against the model when its facts are known, else from the labels alone."""
    if model is not None:
        return decide_task(task, model, labels)
    if task is not None:
        if task not in TASKS:
            raise DataError(f"Unknown task {task!r}.", f"Use one of {', '.join(TASKS)}.")
        return TaskDecision(task, "option", f"task {task}")
    if labels.given == "none":
        return TaskDecision("fidelity", "data", "the data has no labels")
    if labels.given == "classes" or (labels.integral and labels.sample_shape == ()):
        return TaskDecision("classification", "data", "the data has class labels")
    return TaskDecision("regression", "data", "the labels are not class indices")


def _labelled(task: Task, source: Source) -> bool:
    if task.labels == "none":
        return False
    test = source.test or source.train
    return test.y is not None


def _classes(
    task: Task, names: list[str], train: Pool, test: Pool | None, wanted: list[str] | None, where: str
) -> tuple[list[str], Pool, Pool | None]:
    """Classification: the chosen classes, relabelled 0..k-1 in the order given."""
    if task.labels != "classes":
        if wanted is not None:
            raise DataError(
                f"--classes picks classes, but this is a {task.name} task.", "Leave --classes out for this data."
            )
        return names, train, test
    names, mapping = class_mapping(names, wanted, where)
    return names, train.relabel(mapping), None if test is None else test.relabel(mapping)


def _split(
    train: Pool, test: Pool | None, names: list[str], task: Task, where: str, *, test_fraction: float, seed: int
) -> tuple[Pool, Pool, str]:
    """Train and test examples: the source's own test part, else a random split (stratified when the task says)."""
    if len(train) + (len(test) if test is not None else 0) < MIN_SAMPLES:
        raise DataError(
            f"{where} holds {len(train) + (len(test) if test is not None else 0)} sample(s); at least {MIN_SAMPLES} "
            "are needed (some to compress with, some to evaluate on).",
            "Give representative data: a few hundred samples or more.",
        )
    if test is None:
        train, test, split = random_split(
            train, names, test_fraction=test_fraction, seed=seed, where=where, stratified=task.labels == "classes"
        )
    else:
        if task.labels == "classes":
            require_examples(train, names, where)
        train, test, split = shuffled(train, seed), shuffled(test, seed), "given"
    if len(test) == 0 or len(train) == 0:
        which = "test" if len(test) == 0 else "training"
        raise DataError(
            f"{where} has no {which} examples{f' for the classes {names}' if task.labels == 'classes' else ''}.",
            f"Add {which} examples, or drop the test part to have a random split made.",
        )
    return train, test, split


def _missing_classes(task: Task, names: list[str], test: Pool) -> list[str]:
    if task.labels != "classes":
        return []
    missing = [name for name, n in zip(names, test.counts(len(names))) if n == 0]
    return [f"no test examples for class(es) {', '.join(missing)}"] if missing else []
