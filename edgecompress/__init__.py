"""edgecompress: ship a smaller, faster Keras model to an edge device, with measured proof.

Where things happen:
- device profiles ............ edgecompress/profiles.py (data in profiles/*.yaml)
- the deploy pipeline ........ edgecompress/pipeline/ (steps in pipeline/steps/)
- TwoNN / PCA significance ... edgecompress/analysis/
- compression recipes, plan .. edgecompress/compression/
- TFLite / ONNX export, sizes  edgecompress/export/
- targets (local, SSH push) .. edgecompress/targets/ (runner in firmware/runner/)
- reports .................... edgecompress/reporting/ (report.json: reporting/schema.py)
- the command line ........... edgecompress/cli/
"""

from __future__ import annotations

__version__ = "0.1.0"


def deploy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - thin lazy re-export
    """See edgecompress.pipeline.deploy; imported lazily so `import edgecompress` stays light."""
    from edgecompress.pipeline import deploy as _deploy

    return _deploy(*args, **kwargs)


def load_profile(name_or_path):  # noqa: ANN001, ANN201
    """See edgecompress.profiles.load_profile."""
    from edgecompress.profiles import load_profile as _load

    return _load(name_or_path)


__all__ = ["__version__", "deploy", "load_profile"]
