"""Which layers matter: the intrinsic-dimension (ID) profile of a model and what it implies.

A layer is *significant* when it changes the ID of the representation by more than delta:
|ID(l) - ID(l-1)| > delta, with ID(-1) the ID of the input. Those layers reshape the data
the most, so the compression plan keeps them at higher precision; so are the first and last
Conv/Dense layers, whatever their change, because quantising the layers that touch raw
input and final scores costs the most accuracy. Each ID comes with its spread over random
half-size subsamples, so a user sees whether a verdict survives a slightly different sample.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from edgecompress.analysis.activations import (
    check_input_fits,
    flat_input,
    input_representation,
    iter_activations,
    probed_layers,
)
from edgecompress.analysis.pca import pca_dimension
from edgecompress.analysis.twonn import check_twonn_settings, twonn_with_spread
from edgecompress.errors import DataError, EdgeCompressError
from edgecompress.run_layout import LAYOUT

SCHEMA = "edgecompress.significance/1"
JSON_NAME = LAYOUT.significance
PLOT_NAME = LAYOUT.id_profile

#: progress(step, done, total): called after each representation is measured.
Progress = Callable[[str, int, int], None]


@dataclass
class LayerSignificance:
    """The verdict for one representation (the input, or the output of one Conv/Dense layer)."""

    name: str
    class_name: str
    output_shape: tuple[int, ...]
    id: float
    id_std: float
    delta_id: float | None  # None for the input, the reference the first layer is compared with
    significant: bool
    kept_high_precision: bool  # first / last Conv/Dense layer, kept whatever its delta_id
    reason: str
    robust: bool = True  # False when the threshold lies within the combined spread of the two IDs
    n_duplicates_dropped: int = 0
    id_subsamples: list[float] = field(default_factory=list)

    @property
    def is_input(self) -> bool:
        return self.delta_id is None

    @property
    def high_precision(self) -> bool:
        """Whether the compression plan should keep this layer at higher precision."""
        return self.significant or self.kept_high_precision


@dataclass
class SignificanceProfile:
    """The ID profile of one model on one data sample, and the per-layer verdicts."""

    layers: list[LayerSignificance]
    method: str
    delta: float
    n_samples: int
    seed: int
    n_subsamples: int
    discard_fraction: float
    variance: float = 0.99
    model_name: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        document = {"schema": SCHEMA, **asdict(self)}
        for layer in document["layers"]:
            layer["output_shape"] = list(layer["output_shape"])
        return document

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> SignificanceProfile:
        if document.get("schema") != SCHEMA:
            raise EdgeCompressError(
                f"This is not a layer-significance document of schema {SCHEMA} (schema: {document.get('schema')!r}).",
                "Regenerate it with `edgecompress analyze`.",
            )
        try:
            layers = [
                LayerSignificance(**{**layer, "output_shape": tuple(layer["output_shape"])})
                for layer in document["layers"]
            ]
            settings = {f.name: document[f.name] for f in fields(cls) if f.name != "layers" and f.name in document}
            return cls(layers=layers, **settings)
        except (KeyError, TypeError) as error:
            raise EdgeCompressError(
                f"The layer-significance document is incomplete or has unknown fields ({error}).",
                "Regenerate it with `edgecompress analyze`.",
            ) from error

    def with_delta(self, delta: float) -> SignificanceProfile:
        """The same measured IDs judged against another threshold: delta only decides which
        changes count, so a new delta needs no new measurement."""
        if float(delta) == self.delta:
            return self
        _check_settings(
            self.method, delta, max(self.n_samples, 10), self.n_subsamples, self.discard_fraction, self.variance
        )
        last = len(self.layers) - 1
        layers = [self.layers[0]]
        for index in range(1, len(self.layers)):
            current, previous = self.layers[index], self.layers[index - 1]
            change = abs(current.id - previous.id)
            spread = float(np.hypot(current.id_std, previous.id_std))
            position = {1: "first", last: "last"}.get(index)
            layers.append(
                dataclasses.replace(
                    current,
                    significant=change > delta,
                    reason=_reason(change, delta, spread, position),
                    robust=abs(change - delta) > spread,
                )
            )
        return dataclasses.replace(self, layers=layers, delta=float(delta))

    @classmethod
    def read(cls, path: Path) -> SignificanceProfile:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def write(self, directory: Path) -> dict[str, Path]:
        """Write significance.json and id_profile.png into `directory`; return their paths."""
        from edgecompress.analysis.plot import plot_id_profile

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {"json": directory / JSON_NAME, "plot": directory / PLOT_NAME}
        paths["json"].write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        plot_id_profile(self, paths["plot"])
        return paths


@dataclass(frozen=True)
class _Settings:
    n_subsamples: int
    seed: int
    discard_fraction: float
    variance: float


@dataclass(frozen=True)
class _Estimate:
    id: float
    subsamples: list[float]
    n_duplicates_dropped: int = 0

    @property
    def std(self) -> float:
        return float(np.std(self.subsamples, ddof=1)) if len(self.subsamples) > 1 else 0.0


def _twonn_estimate(points: np.ndarray, settings: _Settings) -> _Estimate:
    result, halves = twonn_with_spread(
        points, n_subsamples=settings.n_subsamples, seed=settings.seed, discard_fraction=settings.discard_fraction
    )
    return _Estimate(result.d, halves, result.n_duplicates_dropped)


def _pca_estimate(points: np.ndarray, settings: _Settings) -> _Estimate:
    rng = np.random.default_rng(settings.seed)
    halves = [np.sort(rng.choice(len(points), len(points) // 2, replace=False)) for _ in range(settings.n_subsamples)]
    return _Estimate(
        float(pca_dimension(points, variance=settings.variance)),
        [float(pca_dimension(points[half], variance=settings.variance)) for half in halves],
    )


ESTIMATORS: dict[str, Callable[[np.ndarray, _Settings], _Estimate]] = {"twonn": _twonn_estimate, "pca": _pca_estimate}


def analyze_model(
    model: Any,
    x: np.ndarray,
    *,
    method: str = "twonn",
    delta: float = 20.0,
    n_samples: int = 2000,
    seed: int = 0,
    n_subsamples: int = 5,
    discard_fraction: float = 0.1,
    variance: float = 0.99,
    batch_size: int = 256,
    progress: Progress | None = None,
) -> SignificanceProfile:
    """Measure the ID of the input and of every Conv/Dense output of `model` on samples of `x`.

    `x` holds samples already shaped and scaled as the model expects; how they were loaded
    is the caller's business. `n_samples` rows are drawn from it with `seed` (all rows if it
    has fewer), so the same call gives the same profile.
    """
    _check_settings(method, delta, n_samples, n_subsamples, discard_fraction, variance)
    x = np.asarray(x)
    check_input_fits(model, x)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(x), n_samples, replace=False)) if len(x) > n_samples else np.arange(len(x))
    sample = np.ascontiguousarray(x[rows], dtype=np.float32)
    layers = probed_layers(model)
    representations = [input_representation(model), *layers]
    estimator = ESTIMATORS[method]
    settings = _Settings(n_subsamples, seed, discard_fraction, variance)

    estimates: list[_Estimate] = []
    timings = {"activations_s": 0.0, "id_s": 0.0}
    stream = chain(
        [(representations[0], flat_input(sample))], iter_activations(model, sample, layers, batch_size=batch_size)
    )
    for representation, points in _timed(stream, timings, "activations_s"):
        started = time.perf_counter()
        try:
            estimates.append(estimator(points, settings))
        except DataError as error:
            raise DataError(f"Layer {representation.name!r}: {error.problem}", error.fix) from error
        timings["id_s"] += time.perf_counter() - started
        if progress is not None:
            progress(representation.name, len(estimates), len(representations))

    return SignificanceProfile(
        layers=_judge(representations, estimates, delta),
        method=method,
        delta=float(delta),
        n_samples=len(rows),
        seed=seed,
        n_subsamples=n_subsamples,
        discard_fraction=discard_fraction,
        variance=variance,
        model_name=str(model.name),
        timings={name: round(seconds, 3) for name, seconds in timings.items()},
    )


def _judge(representations: list[Any], estimates: list[_Estimate], delta: float) -> list[LayerSignificance]:
    last = len(representations) - 1
    verdicts = [
        LayerSignificance(
            name=representations[0].name,
            class_name=representations[0].class_name,
            output_shape=representations[0].output_shape,
            id=estimates[0].id,
            id_std=estimates[0].std,
            delta_id=None,
            significant=False,
            kept_high_precision=False,
            reason="reference: the data as the model receives it",
            n_duplicates_dropped=estimates[0].n_duplicates_dropped,
            id_subsamples=estimates[0].subsamples,
        )
    ]
    for index in range(1, len(representations)):
        current, previous = estimates[index], estimates[index - 1]
        change = abs(current.id - previous.id)
        spread = float(np.hypot(current.std, previous.std))
        position = {1: "first", last: "last"}.get(index)
        verdicts.append(
            LayerSignificance(
                name=representations[index].name,
                class_name=representations[index].class_name,
                output_shape=representations[index].output_shape,
                id=current.id,
                id_std=current.std,
                delta_id=change,
                significant=change > delta,
                kept_high_precision=position is not None,
                reason=_reason(change, delta, spread, position),
                robust=abs(change - delta) > spread,
                n_duplicates_dropped=current.n_duplicates_dropped,
                id_subsamples=current.subsamples,
            )
        )
    return verdicts


def _reason(change: float, delta: float, spread: float, position: str | None) -> str:
    comparison = ">" if change > delta else "<="
    parts = [f"|dID| = {change:.1f} {comparison} delta = {delta:g}"]
    if abs(change - delta) <= spread:
        parts.append(f"borderline: the threshold is within the spread (+-{spread:.1f})")
    if position:
        parts.insert(0, f"{position} Conv/Dense layer: always kept at higher precision")
    return "; ".join(parts)


def _timed(stream: Iterable[Any], timings: dict[str, float], key: str) -> Iterable[Any]:
    """Re-yield `stream`, adding the time spent producing each item to timings[key]."""
    iterator = iter(stream)
    while True:
        started = time.perf_counter()
        try:
            item = next(iterator)
        except StopIteration:
            return
        timings[key] += time.perf_counter() - started
        yield item


def _check_settings(
    method: str, delta: float, n_samples: int, n_subsamples: int, discard_fraction: float, variance: float
) -> None:
    problems = {
        f"Unknown significance method {method!r}.": method not in ESTIMATORS,
        f"delta must be a positive number of dimensions, got {delta}.": not (np.isfinite(delta) and delta > 0),
        f"n_samples must be at least 10, got {n_samples}.": n_samples < 10,
        f"n_subsamples must be 0 or more, got {n_subsamples}.": n_subsamples < 0,
        f"variance must be in (0, 1], got {variance}.": not 0 < variance <= 1,
    }
    for problem, failed in problems.items():
        if failed:
            raise EdgeCompressError(
                problem,
                f"Use --method {'|'.join(ESTIMATORS)}, a delta such as 20 (the default), a few thousand samples "
                "and a variance share such as 0.99.",
            )
    check_twonn_settings(discard_fraction, "linear")
