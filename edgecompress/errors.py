"""Errors a user can act on.

Every failure caused by input (a file, a profile, a host, the data) is raised as an
`EdgeCompressError` that carries *what* is wrong and *what to do*. The CLI prints these as
one paragraph without a traceback (unless --debug); anything else is a bug in edgecompress
and is shown with its traceback.
"""

from __future__ import annotations

#: every exit code the `edgecompress` command ends with, and what it means (README's table is checked against it)
EXIT_CODES: dict[int, str] = {
    0: "done (with `--gate`: an artifact passes)",
    1: "a bug in edgecompress (the traceback is shown; please report it)",
    2: "bad input: a file, a profile, a rule, the data, an option (the message says which and what to do)",
    3: "a target (board) could not be reached, trusted or used; `ship` refused by a board",
    4: "nothing fits the profile's memory or flash budget",
    5: "a tool a step needs (cross-compiler, emulator, TFLite Micro sources) is missing or broken",
    6: "`tune`: Ray could not be started, or the cluster at `--ray-address` could not be reached",
    10: "`--gate`: no artifact passes the acceptance rules (the run itself is complete)",
    130: "interrupted (Ctrl-C; the run is kept and the message names the resume command)",
}


class EdgeCompressError(Exception):
    """A problem the user can fix; `fix` tells them how."""

    exit_code = 2

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.problem} {self.fix}".strip()


class ProfileError(EdgeCompressError):
    """A device profile is missing, malformed or contradicts itself."""


class ModelError(EdgeCompressError):
    """The model file is unreadable, not Keras, or uses layers we will not load."""


class DataError(EdgeCompressError):
    """The data cannot be read or does not fit the model."""


class TargetError(EdgeCompressError):
    """The device cannot be reached, trusted, or cannot run the artifact."""

    exit_code = 3


class BudgetError(EdgeCompressError):
    """No compression option fits the profile's memory or flash budget."""

    exit_code = 4


class GateFailed(EdgeCompressError):
    """`--gate`: no artifact passes the acceptance rules. The run itself is complete and kept;
    CI tells this exit code apart from a run that could not be done at all."""

    exit_code = 10
    result: object = None  # the finished DeployResult, so the command line still shows what was measured


class ToolError(EdgeCompressError):
    """A tool a step needs (cross-compiler, emulator, TFLM sources) is missing or broken."""

    exit_code = 5
