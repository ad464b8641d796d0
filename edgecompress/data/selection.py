"""Choose classes, split off a test set and subsample, on labels only and reproducibly.

All randomness comes from `seed` through scikit-learn's stratified splitter, so the same
seed always yields the same files in the same order, and every class keeps its share.
(scikit-learn is imported when a split is made: it costs ~1 s, which `--help` must not pay.)
"""

from __future__ import annotations

import difflib

import numpy as np

from edgecompress.data.pool import Pool
from edgecompress.errors import DataError


def class_mapping(names: list[str], wanted: list[str] | None, where: str) -> tuple[list[str], np.ndarray]:
    """Map source class indices to the chosen classes' indices in the order asked (-1 = dropped)."""
    chosen = list(names) if wanted is None else [str(name) for name in wanted]
    unknown = [name for name in chosen if name not in names]
    if unknown:
        raise DataError(
            f"Unknown class{'es' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in {where}"
            f"{_suggestion(unknown, names)}. Available classes: {', '.join(names)}.",
            "Pick class names from that list (they are the class folder names, or class_names in an .npz).",
        )
    if len(set(chosen)) != len(chosen):
        raise DataError(f"The classes {chosen} name a class twice.", "List each class once.")
    if len(chosen) < 2:
        problem = (
            f"{where} has only one class ({chosen[0]!r})"
            if wanted is None and chosen
            else f"The chosen classes {chosen} are fewer than two"
        )
        raise DataError(
            f"{problem}; a classifier needs at least two classes.",
            "Give data with a folder (or label) per class, at least two of them."
            if wanted is None
            else "Name at least two classes.",
        )
    mapping = np.full(len(names), -1, dtype=np.int64)
    for new, name in enumerate(chosen):
        mapping[names.index(name)] = new
    return chosen, mapping


def _suggestion(unknown: list[str], names: list[str]) -> str:
    close = {name: difflib.get_close_matches(name, names, n=1) for name in unknown}
    hints = [f"{name!r} -> {match[0]!r}" for name, match in close.items() if match]
    return f" (did you mean {', '.join(hints)}?)" if hints else ""


def require_examples(pool: Pool, names: list[str], where: str, *, at_least: int = 1) -> None:
    counts = pool.counts(len(names))
    short = [f"{name!r} ({count})" for name, count in zip(names, counts) if count < at_least]
    if short:
        need = "no" if at_least == 1 else f"fewer than {at_least}"
        raise DataError(
            f"These classes have {need} {'training ' if at_least == 1 else ''}examples in {where}: {', '.join(short)}.",
            "Add examples for them, or leave them out with --classes."
            + (" A random split needs at least two per class (one for test)." if at_least > 1 else ""),
        )


def random_split(
    pool: Pool, names: list[str], *, test_fraction: float, seed: int, where: str, stratified: bool = True
) -> tuple[Pool, Pool, str]:
    """A split of one pool into train and test, stratified by class when `stratified`; also returns how."""
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction={test_fraction} is not between 0 and 1.", "Use e.g. 0.2 for 20%.")
    if stratified:
        require_examples(pool, names, where, at_least=2)
    elif len(pool) < 2:
        raise DataError(f"{where} holds {len(pool)} sample(s); at least 2 are needed.", "Give more samples.")
    from sklearn.model_selection import train_test_split

    try:
        train, test = train_test_split(
            np.arange(len(pool)),
            test_size=test_fraction,
            stratify=pool.labels if stratified or _both_labels_twice(pool) else None,
            random_state=seed,
        )
    except ValueError as error:
        raise DataError(
            f"A {test_fraction:.0%} stratified test split of {where} is not possible: {error}",
            "Use a larger test_fraction or more examples per class.",
        ) from error
    return pool.take(train), pool.take(test), f"random {test_fraction * 100:g}% (seed {seed})"


def _both_labels_twice(pool: Pool) -> bool:
    """Anomaly labels (0/1) can stratify a split when each occurs at least twice."""
    values, counts = np.unique(pool.labels, return_counts=True)
    return len(values) > 1 and bool(counts.min() >= 2)


def shuffled(pool: Pool, seed: int) -> Pool:
    """Folders list class by class; shuffling keeps e.g. Keras' validation_split from taking one class."""
    return pool.take(np.random.default_rng(seed).permutation(len(pool)))


def subsample(pool: Pool, limit: int | None, *, seed: int, what: str, stratified: bool) -> tuple[Pool, list[str]]:
    """At most `limit` examples: class shares kept when `stratified`, else a seeded random choice."""
    if stratified:
        return stratified_sample(pool, limit, seed=seed, what=what)
    if limit is None or limit >= len(pool):
        return pool, []
    if limit < 1:
        raise DataError(f"{what}={limit} keeps no example.", f"Use {what} of at least 1, or leave it unset.")
    kept = np.sort(np.random.default_rng(seed).permutation(len(pool))[:limit])
    return pool.take(kept), [f"{what}: random sample of {limit} out of {len(pool)} (seed {seed})"]


def stratified_sample(pool: Pool, limit: int | None, *, seed: int, what: str) -> tuple[Pool, list[str]]:
    """Keep at most `limit` examples with every class's share preserved; note it for the report."""
    if limit is None or limit >= len(pool):
        return pool, []
    n_classes = len(np.unique(pool.labels))
    if limit < n_classes:
        raise DataError(
            f"{what}={limit} is fewer than the {n_classes} classes, so some class would have no example.",
            f"Use {what} of at least {n_classes}, or leave it unset to use all {len(pool)} examples.",
        )
    from sklearn.model_selection import train_test_split

    try:
        kept, _ = train_test_split(np.arange(len(pool)), train_size=limit, stratify=pool.labels, random_state=seed)
    except ValueError as error:
        raise DataError(
            f"A stratified sample of {what}={limit} is not possible: {error}", f"Leave {what} unset, or raise it."
        ) from error
    return pool.take(kept), [f"{what}: stratified sample of {limit} out of {len(pool)} (seed {seed})"]
