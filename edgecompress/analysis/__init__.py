"""Layer significance: how much each Conv/Dense layer changes the data's intrinsic dimension.

    from edgecompress.analysis import analyze_model, render_table
    profile = analyze_model(model, x_train, delta=20)   # x scaled as the model expects
    rich.print(render_table(profile)); profile.write(run_dir)

Modules: twonn (the TwoNN estimator), neighbours (exact r1/r2 in bounded memory), pca
(the 99%-variance baseline), activations (flattened Conv/Dense outputs of a tf-keras model),
significance (ID profile -> per-layer verdicts, JSON), plot (PNG), render (rich table).
TensorFlow, matplotlib and rich load only when the functions that need them run.
"""

from __future__ import annotations

import importlib
from typing import Any

from edgecompress.analysis.pca import pca_dimension
from edgecompress.analysis.significance import LayerSignificance, SignificanceProfile, analyze_model
from edgecompress.analysis.twonn import TwoNNResult, twonn

__all__ = [
    "LayerSignificance",
    "SignificanceProfile",
    "TwoNNResult",
    "analyze_model",
    "pca_dimension",
    "plot_id_profile",
    "render_table",
    "twonn",
]


#: Public names whose modules import rich / matplotlib: loaded on first use.
_LAZY = {"render_table": "edgecompress.analysis.render", "plot_id_profile": "edgecompress.analysis.plot"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgecompress.analysis' has no attribute {name!r}")
