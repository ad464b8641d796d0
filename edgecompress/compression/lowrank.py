"""Low-rank factorisation: one big product replaced by two thin ones, so fewer MACs.

- Dense (kernel W, in x out): truncated SVD, W ~ (U_r sqrt(S_r)) (sqrt(S_r) V_r^T): a Dense
  to r units without bias or activation, then the original Dense (its bias and activation)
  reading r inputs. MACs in*out -> r*(in + out).
- Conv2D with a kh x kw window (kh, kw > 1): the rank-K *separable* scheme of Jaderberg,
  Vedaldi and Zisserman ("Speeding up Convolutional Neural Networks with Low Rank
  Expansions", BMVC 2014, scheme 2): W[y, x, c, n] is read as the matrix M[(y, c), (x, n)],
  and its rank-K SVD gives K vertical kh x 1 filters over the input channels followed by a
  1 x kw convolution from those K maps to the outputs. Strides, 'same'/'valid' padding and
  dilation split per axis, so at full rank the pair computes exactly the original layer.
- Conv1D/Conv2D with a window that is already 1 along an axis: the *channel* scheme, the
  same window to K maps, then a 1x1 convolution (SVD of W read as (window x in) x out).

The first factor is named '<layer>_lowrank'; the second keeps the layer's name (and bias and
activation), so plans and reports still find it. The rank comes from the caller: an energy
threshold on the singular values (`rank_for_energy`) or the layer's intrinsic dimension
(`LowRankRule`). A rank that would not cut at least `min_saving` of the layer's MACs is
refused: the layer is left whole, and the plan says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecompress.compression.surgery import LayerGraph, weight_names
from edgecompress.export.macs import keras_layer_macs

SUFFIX = "_lowrank"
SOURCES = ("energy", "id")


@dataclass(frozen=True)
class LowRankRule:
    """How the rank is chosen: the share of singular-value energy kept, or a multiple of the layer's ID."""

    source: str = "energy"  # 'energy' | 'id'
    energy: float = 0.8
    factor: float = 1.0  # rank = ceil(factor x ID) when source == 'id'
    min_saving: float = 0.2  # refuse factorisations that save less than this share of the layer's MACs

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"rank source must be one of {SOURCES}, got {self.source!r}")
        if not 0.0 < self.energy <= 1.0:
            raise ValueError(f"energy must be in (0, 1], got {self.energy}")


@dataclass(frozen=True)
class Factorisation:
    """One layer's factorisation as planned: scheme, rank, and what it costs."""

    layer: str
    scheme: str  # 'svd' | 'separable' | 'channel'
    rank: int
    full_rank: int
    energy_kept: float  # share of sum(s^2) in the kept singular values
    macs_before: int
    macs_after: int


def _factorisable(layer: Any) -> str:
    scheme, why_not = scheme_of(layer)
    if scheme is None:
        raise ValueError(f"layer '{layer.name}' cannot be factorised: {why_not}")
    return scheme


def scheme_of(layer: Any) -> tuple[str | None, str]:
    """(scheme, '') for a layer that can be factorised, else (None, why not)."""
    kind = type(layer).__name__
    config = layer.get_config()
    if kind == "Dense":
        return "svd", ""
    if kind not in ("Conv1D", "Conv2D"):
        return None, f"{kind} layers are not factorised (Dense and Conv1D/Conv2D are)"
    if int(config.get("groups", 1) or 1) != 1:
        return None, "grouped convolutions are not factorised"
    if config.get("data_format", "channels_last") != "channels_last":
        return None, "channels-first convolutions are not factorised"
    if config.get("padding") == "causal":
        return None, "causal convolutions are not factorised"
    window = tuple(config["kernel_size"])
    if kind == "Conv2D" and window[0] > 1 and window[1] > 1:
        return "separable", ""
    return "channel", ""


def _matrix(kernel: np.ndarray, scheme: str) -> np.ndarray:
    """The matrix whose SVD gives the factors: rows are the first factor's inputs."""
    if scheme == "separable":  # (kh, kw, c, n) -> M[(y, c), (x, n)]
        kh, kw, c, n = kernel.shape
        return kernel.transpose(0, 2, 1, 3).reshape(kh * c, kw * n)
    return kernel.reshape(-1, kernel.shape[-1])  # svd / channel: (window x in) x out


def singular_values(layer: Any) -> np.ndarray:
    scheme = _factorisable(layer)
    kernel = layer.get_weights()[weight_names(layer).index("kernel")]
    return np.asarray(np.linalg.svd(_matrix(kernel, scheme), compute_uv=False))


def full_rank(layer: Any) -> int:
    """The largest useful rank: the smaller side of the factorised matrix."""
    scheme = _factorisable(layer)
    kernel = layer.get_weights()[weight_names(layer).index("kernel")]
    return int(min(_matrix(kernel, scheme).shape))


def rank_for_energy(values: np.ndarray, energy: float) -> int:
    """Smallest rank whose singular values hold `energy` of sum(s^2)."""
    power = np.cumsum(values.astype(np.float64) ** 2)
    return min(len(values), int(np.searchsorted(power / power[-1], energy - 1e-12)) + 1)


def factorised_macs(layer: Any, scheme: str, rank: int) -> int:
    """MACs of the two factors for one sample, from the layer's input and output shapes."""
    inner_in = [1 if d is None else int(d) for d in tuple(layer.input_shape)[1:]]
    inner_out = [1 if d is None else int(d) for d in tuple(layer.output_shape)[1:]]
    channels_in, channels_out = inner_in[-1], inner_out[-1]
    if scheme == "svd":
        positions = math.prod(inner_out[:-1]) if len(inner_out) > 1 else 1
        return positions * rank * (channels_in + channels_out)
    window = tuple(layer.kernel_size)
    out_positions = math.prod(inner_out[:-1])
    if scheme == "separable":  # vertical output: out rows x input columns
        vertical_positions = inner_out[0] * inner_in[1]
        return vertical_positions * window[0] * channels_in * rank + out_positions * window[1] * rank * channels_out
    return out_positions * math.prod(window) * channels_in * rank + out_positions * rank * channels_out


def plan_factorisation(
    layer: Any, rule: LowRankRule, intrinsic_dimension: float | None = None
) -> tuple[Factorisation | None, str]:
    """The factorisation `rule` gives `layer`, or (None, why the layer stays whole)."""
    scheme, why = scheme_of(layer)
    if scheme is None:
        return None, why
    values = singular_values(layer)
    full = len(values)
    if rule.source == "id":
        if intrinsic_dimension is None:
            return None, "no intrinsic dimension measured for this layer"
        rank = min(full, max(1, math.ceil(rule.factor * float(intrinsic_dimension))))
    else:
        rank = rank_for_energy(values, rule.energy)
    before = keras_layer_macs(layer)
    after = factorised_macs(layer, scheme, rank)
    kept = float((values[:rank] ** 2).sum() / max((values**2).sum(), 1e-30))
    if after > (1.0 - rule.min_saving) * before:
        return None, (
            f"rank {rank} of {full} would keep {after / before:.0%} of its {before:,} MACs "
            f"(needs a saving of at least {rule.min_saving:.0%}): left whole"
        )
    return Factorisation(layer.name, scheme, rank, full, kept, before, after), ""


def _factors(kernel: np.ndarray, scheme: str, rank: int) -> tuple[np.ndarray, np.ndarray]:
    u, s, vt = np.linalg.svd(_matrix(kernel, scheme), full_matrices=False)
    root = np.sqrt(s[:rank])
    first, second = u[:, :rank] * root, (vt[:rank].T * root).T  # (rows, r), (r, cols)
    if scheme == "svd":
        return first.astype(kernel.dtype), second.astype(kernel.dtype)
    if scheme == "separable":
        kh, kw, c, n = kernel.shape
        vertical = first.reshape(kh, c, rank)[:, None, :, :]  # (kh, 1, c, r)
        horizontal = second.reshape(rank, kw, n).transpose(1, 0, 2)[None, :, :, :]  # (1, kw, r, n)
        return vertical.astype(kernel.dtype), horizontal.astype(kernel.dtype)
    window = kernel.shape[:-2]
    spatial = first.reshape(*window, kernel.shape[-2], rank)
    pointwise = second.reshape(*([1] * len(window)), rank, kernel.shape[-1])
    return spatial.astype(kernel.dtype), pointwise.astype(kernel.dtype)


def _split_config(config: dict[str, Any], scheme: str, rank: int, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(first factor's config, the layer's own config rewritten as the second factor)."""
    first = {
        key: value
        for key, value in config.items()
        if key
        not in (
            "units",
            "filters",
            "bias_initializer",
            "bias_regularizer",
            "bias_constraint",
            "activity_regularizer",
            "batch_input_shape",
        )
    }
    first.update(name=name + SUFFIX, use_bias=False, activation="linear")
    second = dict(config)
    if scheme == "svd":
        first["units"] = rank
        return first, second
    first["filters"] = rank
    if scheme == "separable":
        (kh, kw), (sh, sw), (dh, dw) = config["kernel_size"], config["strides"], config["dilation_rate"]
        first.update(kernel_size=[kh, 1], strides=[sh, 1], dilation_rate=[dh, 1])
        second.update(kernel_size=[1, kw], strides=[1, sw], dilation_rate=[1, dw])
    else:
        ones = [1] * len(config["kernel_size"])
        second.update(kernel_size=ones, strides=ones, dilation_rate=ones, padding="valid")
    return first, second


def factorise(model: Any, ranks: dict[str, int]) -> Any:
    """A copy of `model` in which each layer named in `ranks` is two factors of that rank."""
    graph = LayerGraph.of(model)
    layers = {layer.name: layer for layer in model.layers}
    for name, rank in ranks.items():
        layer = layers[name]
        scheme, why = scheme_of(layer)
        if scheme is None:
            raise ValueError(f"layer '{name}' cannot be factorised: {why}")
        node = graph.node(name)
        first_config, second_config = _split_config(node.config, scheme, int(rank), name)
        node.entry["config"] = second_config
        graph.insert_before(name, node.class_name, first_config)
        weights = dict(zip(weight_names(layer), layer.get_weights()))
        first, second = _factors(weights["kernel"], scheme, int(rank))
        graph.weights[name + SUFFIX] = [first]
        graph.weights[name] = [second] + ([weights["bias"]] if "bias" in weights else [])
    return graph.build()


__all__ = [
    "Factorisation",
    "LowRankRule",
    "SUFFIX",
    "factorise",
    "factorised_macs",
    "full_rank",
    "plan_factorisation",
    "rank_for_energy",
    "scheme_of",
    "singular_values",
]
