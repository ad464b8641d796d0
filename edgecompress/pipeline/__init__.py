"""`edgecompress deploy`: profile -> model -> data -> plan -> artifacts -> device -> report.

Where each part is:
- request.py   what a run depends on (`DeployRequest`, one declaration of every default)
- prepare.py   every check on user input, before a run folder exists (profile, model, data,
               input scaling, significance, the per-layer plan, the targets)
- steps/       one module per step, in run order (the list is in steps/__init__.py)
- run.py       the loop: run folder, memoized steps, failure and --resume
"""

from __future__ import annotations

from edgecompress.pipeline.artifacts import BASELINE, Artifact
from edgecompress.pipeline.request import DeployRequest
from edgecompress.pipeline.run import DeployResult, deploy, resume, run

__all__ = ["BASELINE", "Artifact", "DeployRequest", "DeployResult", "deploy", "resume", "run"]
