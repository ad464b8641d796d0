"""Hand-written layer verdicts for plan and compression tests.

The plan reads only `.layers[i].name / .significant / .kept_high_precision` of a TwoNN
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


@dataclass(frozen=True)
class Significance:
    layers: list[LayerVerdict]
