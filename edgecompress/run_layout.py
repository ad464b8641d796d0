"""The names of everything in a run folder, declared once.

The deploy steps that write a run folder and the report code that reads it both go through
`LAYOUT`, so a renamed file cannot leave one side looking in the wrong place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: a run in progress, and one that stopped on an error (finish it with `deploy --resume`)
PARTIAL, FAILED = ".partial", ".failed"


@dataclass(frozen=True)
class RunLayout:
    """File and folder names inside one run folder (see docs/report-schema.md)."""

    state: str = "state.json"  # which steps are done, and how the run ended
    request: str = "request.json"  # the DeployRequest, replayed by --resume
    log: str = "deploy.log"
    eval: str = "eval.npz"  # the evaluation set exactly as every device sees it
    plan: str = "plan.json"
    significance: str = "significance.json"
    id_profile: str = "id_profile.png"
    training: str = "training.json"
    reference: str = "reference.json"  # the Keras model's own predictions on the eval set
    report: str = "report.json"
    markdown: str = "report.md"
    html: str = "report.html"
    artifacts: str = "artifacts"
    measurements: str = "measurements"
    figures: str = "figures"
    micro: str = "micro"
    ship: str = "ship"  # the recommended artifact's bundle (edgecompress/ship)

    def measurement_stem(self, artifact: str, target: str) -> str:
        """measurements/<stem>.json, .samples.json and .log for one (artifact, target)."""
        return f"{self.measurements}/{artifact}@{safe_name(target)}"

    def rounds_stem(self, target: str) -> str:
        """measurements/rounds@<target>.json and .log: every artifact of one board timed in interleaved rounds."""
        return f"{self.measurements}/rounds@{safe_name(target)}"


LAYOUT = RunLayout()


def safe_name(name: str) -> str:
    """A file-name-safe form of a target or artifact name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:48] or "run"


def final_name(name: str) -> str:
    """A run folder's name without its .partial / .failed state suffix."""
    for suffix in (PARTIAL, FAILED):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
