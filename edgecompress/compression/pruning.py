"""Unstructured magnitude pruning (tfmot) with a polynomial-decay sparsity schedule.

Sparsity ramps from 0 to the target over the first `ramp_steps` training steps and then
holds, so the epochs after the ramp fine-tune a network that already has its final zeros
(fine-tuning picks its best epoch among those).
"""

from __future__ import annotations

from typing import Any

from edgecompress._tf import tfmot
from edgecompress.compression.graph import rebuild, selected


def _tfmot() -> Any:
    return tfmot()


def ramp_schedule(ramp_steps: int) -> tuple[int, int]:
    """(end_step, frequency): masks update ~20 times over the ramp and the last update lands on end_step."""
    frequency = max(1, ramp_steps // 20)
    end_step = max(frequency, (ramp_steps // frequency) * frequency)
    return end_step, frequency


def prune_layers(model: Any, sparsity: dict[str, float], *, end_step: int, frequency: int) -> Any:
    """Wrap the layers named in `sparsity` (name -> final fraction of zero weights) for pruning."""
    sparsity_api = _tfmot().sparsity.keras

    def wrap(layer: Any) -> Any:
        schedule = sparsity_api.PolynomialDecay(
            initial_sparsity=0.0,
            final_sparsity=float(sparsity[layer.name]),
            begin_step=0,
            end_step=end_step,
            frequency=frequency,
        )
        return sparsity_api.prune_low_magnitude(layer, pruning_schedule=schedule)

    return rebuild(model, selected(sparsity, wrap))


def pruning_callbacks() -> list[Any]:
    """Advances the pruning step and applies the masks at each epoch end (before any snapshot)."""
    return [_tfmot().sparsity.keras.UpdatePruningStep()]


def strip_pruning(model: Any) -> Any:
    return _tfmot().sparsity.keras.strip_pruning(model)
