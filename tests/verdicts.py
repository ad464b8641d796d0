"""Hand-written layer verdicts for plan and compression tests.

The plan reads only `.layers[i].name / .significant / .kept_high_precision` (and `.id` for the
speed recipes that size layers from it) of a TwoNN
`SignificanceProfile`; these rows let a test say exactly which layer is significant
instead of depending on what TwoNN measures on a toy model.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LayerVerdict:
    """One row of a SignificanceProfile, as the plan reads it."""

    name: str
    significant: bool
    kept_high_precision: bool = False
    id: float | None = None  # the layer's intrinsic dimension (speed recipes size layers from it)


@dataclass(frozen=True)
class Significance:
    layers: list[LayerVerdict]
