"""The contract every deploy step follows."""

from __future__ import annotations

import abc
from typing import ClassVar

from edgecompress.pipeline.context import RunContext


class Step(abc.ABC):
    """One stage of a deploy run.

    `run` does its work through `ctx.folder.remember` (or `ctx.remember_artifact`), so a
    resumed run skips whatever a step already recorded; the loop in pipeline/run.py names the
    step that failed. A new step is a new subclass added to `STEPS` in steps/__init__.py.
    """

    #: recorded in state.json as the failed step, and shown in errors
    name: ClassVar[str]

    def applies(self, ctx: RunContext) -> bool:
        """False when this run has nothing for the step to do (e.g. no training in a PTQ-only plan)."""
        return True

    @abc.abstractmethod
    def run(self, ctx: RunContext) -> None:
        """Do the step's work, leaving its results on `ctx`."""
