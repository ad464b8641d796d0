"""The command-line options several commands share (deploy, tune, ship), declared once.

Each is a typed `Annotated` alias, so a command's signature stays one line per option and a
help text is written in one place. Options only one command has live in that command's module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgecompress.pipeline.request import DeployRequest

D = DeployRequest.default  # every default the aliases name is DeployRequest's own

ModelFile = Annotated[
    Optional[Path], typer.Argument(help="Keras model file (.h5 or .keras). Not needed with --resume.")
]
Data = Annotated[str, typer.Option("--data", "-d", help="Class-folder directory, .npz file, or sklearn:digits.")]
Classes = Annotated[
    Optional[str], typer.Option(help="Comma-separated class subset in the model's output order, e.g. cat,dog.")
]
MaxEval = Annotated[
    int, typer.Option(help="Evaluation images measured on the board (stratified subset of the test split).")
]
Warmup = Annotated[int, typer.Option(help="Warm-up inferences per artifact, spread over the timing rounds.")]
Runs = Annotated[int, typer.Option(help="Timed inferences per artifact, spread over the timing rounds.")]
Rounds = Annotated[
    int,
    typer.Option(
        help="Interleaved timing rounds per board: every artifact once per round, the order rotated, the baseline twice (its timing noise)."
    ),
]
Cooldown = Annotated[float, typer.Option(help="Seconds the board rests between timing rounds.")]
Threads = Annotated[
    Optional[int], typer.Option(help="Interpreter threads on the board (default: the runtime's choice).")
]
FinetuneSteps = Annotated[
    Optional[int],
    typer.Option(help="Optimizer steps per fine-tuning stage at most (default: the profile's, 1000)."),
]
FinetuneMinutes = Annotated[
    Optional[float],
    typer.Option(help="Wall-clock budget for all fine-tuning of one run, in minutes (default: the profile's, none)."),
]
Epochs = Annotated[
    Optional[int],
    typer.Option(help="Epochs-equivalent per fine-tuning stage at most, for small data sets (default 10)."),
]

# SSH boards: how to reach and trust them (targets/ssh_config.py reads the same names from target files)
Identity = Annotated[Optional[Path], typer.Option(help="SSH private key file (stays on this machine).")]
KnownHosts = Annotated[
    Optional[Path], typer.Option(help="known_hosts file to verify boards against (default ~/.ssh/known_hosts).")
]
AcceptNewHostKey = Annotated[
    bool,
    typer.Option("--accept-new-host-key", help="Trust and record the host key of a board seen for the first time."),
]
PasswordEnv = Annotated[Optional[str], typer.Option(help="Name of an environment variable holding the SSH password.")]
SshRetries = Annotated[
    Optional[int],
    typer.Option("--ssh-retries", help="Retries (with back-off) when a connection drops (default 2)."),
]
ConnectTimeout = Annotated[Optional[float], typer.Option(help="Seconds to wait for a board to answer (default 10).")]
RemotePython = Annotated[
    Optional[str], typer.Option(help="Python on the board (default: python3, or the target file's).")
]
RemoteDir = Annotated[Optional[str], typer.Option(help="Work folder on the board (default ~/.edgecompress).")]

# what is printed
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final table (and errors).")]
Json = Annotated[
    bool, typer.Option("--json", help="Print a machine-readable JSON summary on stdout instead of tables.")
]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks and TensorFlow's own messages.")]
