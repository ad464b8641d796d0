"""The command-line options several commands share (deploy, tune, ship), declared once.

Each is a typed `Annotated` alias, so a command's signature stays one line per option and a
help text is written in one place. Options only one command has live in that command's module.

House style of `--help` (tests/test_cli_help.py checks it):
- options are grouped in the panels below (`rich_help_panel`);
- an option with a fixed set of values is a choice (`choice(...)`), listed as `[a|b|c]`;
- a default is shown one way, typer's `[default: ...]`; an option whose default comes from the
  profile or the runtime says so there (`show_default="the profile's"`), never in its help text;
- help texts are plain text: no Rich markup, no brackets a markup parser could take for a tag.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, get_args, get_origin

import typer
from typer.core import TyperCommand

from edgecompress.pipeline.request import DeployRequest
from edgecompress.training_device import DEVICES

D = DeployRequest.default  # every default the aliases name is DeployRequest's own

# ------------------------------------------------------------------------------ help panels

MODEL_AND_DATA = "Model and data"
TARGET = "Target, timing and SSH"
COMPRESSION = "Compression and fine-tuning"
RULES = "Acceptance rules"
MICRO = "Microcontroller"
OUTPUT = "Output"
HELP_NAMES = ["--help", "-h"]


def choice(name: str, values: Iterable[str]) -> type[enum.Enum]:
    """A str Enum whose values are `values`: typer lists them as `[a|b|c]` and refuses others.
    Declared from the data that defines the values, so the choices cannot drift from them."""
    return enum.Enum(name, {value: value for value in values}, type=str)  # type: ignore[return-value]


def plain(options: dict[str, Any]) -> dict[str, Any]:
    """The options with every choice turned back into its string (what the rest of edgecompress takes)."""
    return {name: value.value if isinstance(value, enum.Enum) else value for name, value in options.items()}


if TYPE_CHECKING:  # what mypy sees; typer sees the choices
    DeviceChoice = str
else:
    DeviceChoice = choice("Device", DEVICES)


class RequiredUnlessResuming(TyperCommand):
    """A command whose MODEL, --profile and --data are required, except with --resume (the run
    folder remembers them). --help marks them required; the check is skipped for a resume."""

    NEEDED = ("model", "profile", "data")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.name in self.NEEDED:
                param.required = True

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # --resume-trials without --resume is told apart by the command itself, with its own advice
        resuming = any(arg.startswith("--resume") for arg in args)
        needed = [param for param in self.params if param.name in self.NEEDED]
        for param in needed:
            param.required = not resuming
        try:
            return super().parse_args(ctx, args)
        finally:
            for param in needed:
                param.required = True


# ------------------------------------------------------------------------------ model and data

ModelFile = Annotated[
    Optional[Path],
    typer.Argument(
        metavar="MODEL",
        help="Keras model file (.h5 or .keras). Not needed with --resume.",
        show_default=False,
    ),
]
Data = Annotated[
    Optional[str],
    typer.Option(
        "--data",
        "-d",
        help="Training and evaluation data: a folder of class folders, an .npz file, or sklearn:digits.",
        show_default=False,
        rich_help_panel=MODEL_AND_DATA,
    ),
]
Classes = Annotated[
    Optional[str],
    typer.Option(
        help="Comma-separated class subset in the model's output order, e.g. cat,dog.",
        show_default="every class",
        rich_help_panel=MODEL_AND_DATA,
    ),
]
MaxEval = Annotated[
    int,
    typer.Option(
        help="Evaluation images measured on the board (stratified subset of the test split).",
        rich_help_panel=MODEL_AND_DATA,
    ),
]

# ------------------------------------------------------------------------------ target and timing

Warmup = Annotated[
    int, typer.Option(help="Warm-up inferences per artifact, spread over the timing rounds.", rich_help_panel=TARGET)
]
Runs = Annotated[
    int, typer.Option(help="Timed inferences per artifact, spread over the timing rounds.", rich_help_panel=TARGET)
]
Rounds = Annotated[
    int,
    typer.Option(
        help="Interleaved timing rounds per board: every artifact once per round, the order rotated, the baseline "
        "twice (its timing noise).",
        rich_help_panel=TARGET,
    ),
]
Cooldown = Annotated[float, typer.Option(help="Seconds the board rests between timing rounds.", rich_help_panel=TARGET)]
Threads = Annotated[
    Optional[int],
    typer.Option(help="Interpreter threads on the board.", show_default="the runtime's choice", rich_help_panel=TARGET),
]
# SSH boards: how to reach and trust them (targets/ssh_config.py reads the same names from target files)
Identity = Annotated[
    Optional[Path],
    typer.Option(help="SSH private key file (stays on this machine).", show_default="ssh's", rich_help_panel=TARGET),
]
KnownHosts = Annotated[
    Optional[Path],
    typer.Option(
        help="known_hosts file to verify boards against.",
        show_default="~/.ssh/known_hosts",
        rich_help_panel=TARGET,
    ),
]
SshConfig = Annotated[
    Optional[Path],
    typer.Option(
        "--ssh-config",
        help="OpenSSH client config to look board names up in: HostName, User, Port, IdentityFile, ProxyJump.",
        show_default="~/.ssh/config when it exists",
        rich_help_panel=TARGET,
    ),
]
AcceptNewHostKey = Annotated[
    bool,
    typer.Option(
        "--accept-new-host-key",
        help="Trust and record the host key of a board seen for the first time.",
        rich_help_panel=TARGET,
    ),
]
PasswordEnv = Annotated[
    Optional[str],
    typer.Option(
        help="Name of an environment variable holding the SSH password.", show_default="none", rich_help_panel=TARGET
    ),
]
SshRetries = Annotated[
    Optional[int],
    typer.Option(
        "--ssh-retries",
        help="Retries (with back-off) when a connection drops.",
        show_default="2",
        rich_help_panel=TARGET,
    ),
]
ConnectTimeout = Annotated[
    Optional[float],
    typer.Option(help="Seconds to wait for a board to answer.", show_default="10", rich_help_panel=TARGET),
]
RemotePython = Annotated[
    Optional[str],
    typer.Option(help="Python on the board.", show_default="python3, or the target file's", rich_help_panel=TARGET),
]
RemoteDir = Annotated[
    Optional[str],
    typer.Option(help="Work folder on the board.", show_default="~/.edgecompress", rich_help_panel=TARGET),
]

# ------------------------------------------------------------------------------ fine-tuning

FinetuneSteps = Annotated[
    Optional[int],
    typer.Option(
        help="Optimizer steps per fine-tuning stage at most.",
        show_default="the profile's, 1000",
        rich_help_panel=COMPRESSION,
    ),
]
FinetuneMinutes = Annotated[
    Optional[float],
    typer.Option(
        help="Wall-clock budget for all fine-tuning of one run, in minutes.",
        show_default="the profile's, none",
        rich_help_panel=COMPRESSION,
    ),
]
Epochs = Annotated[
    Optional[int],
    typer.Option(
        help="Epochs-equivalent per fine-tuning stage at most, for small data sets.",
        show_default="10",
        rich_help_panel=COMPRESSION,
    ),
]

Device = Annotated[
    DeviceChoice,
    typer.Option(
        help="Where fine-tuning runs: auto (a GPU when TensorFlow sees one, else the CPU), cpu, or gpu (stops when there is none).",
        rich_help_panel=COMPRESSION,
    ),
]

# ------------------------------------------------------------------------------ what is printed

Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print only the final table (and errors).", rich_help_panel=OUTPUT)
]
Json = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one machine-readable JSON document on stdout instead of tables (an error too).",
        rich_help_panel=OUTPUT,
    ),
]
Debug = Annotated[
    bool,
    typer.Option(
        "--debug",
        help="Show tracebacks, and TensorFlow's, Keras' and LiteRT's own messages (otherwise in deploy.log).",
        rich_help_panel=OUTPUT,
    ),
]


# ------------------------------------------------------------------------------ how --help shows values

#: what --help shows for a value of a plain type (typer would print Python's type names, `<list[str]>`)
_METAVARS: dict[Any, str] = {int: "N", float: "NUMBER", str: "TEXT", Path: "PATH"}


def tidy_help(command: Any) -> Any:
    """Give every option of `command` (and its sub-commands) a value name a person reads: `N`, `PATH`,
    `[a|b|c]` for a choice, nothing for a flag; an explicit metavar stays. Returns `command`."""
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)
    for param in getattr(command, "params", []):
        if getattr(param, "param_type_name", "") == "argument":
            # typer shows an argument's Python type ('<list[Path]>') beside its name: its help says what it is
            param.display_type_rich = _no_type
            continue
        if param.metavar is None:
            param.metavar = _metavar(param)
    helper = command.get_help_option(typer.Context(command, info_name=command.name, help_option_names=HELP_NAMES))
    if helper is not None:
        helper.metavar = ""
        if any(getattr(param, "rich_help_panel", None) == OUTPUT for param in command.params):
            helper.rich_help_panel = OUTPUT  # beside the other output options, not a panel of its own
    return command


def _no_type(ctx: Any) -> None:
    return None


def _metavar(param: Any) -> str:
    if getattr(param, "is_flag", False):
        return ""
    desc = getattr(param, "type_descriptor", None)
    if desc is None:
        return "VALUE"
    if desc.is_choice:
        return "[" + "|".join(str(c.value if isinstance(c, enum.Enum) else c) for c in desc.choices or ()) + "]"
    annotation = desc.annotation
    if get_origin(annotation) is list:
        annotation = get_args(annotation)[0]
    return _METAVARS.get(annotation, "PATH" if desc.is_path else "VALUE")
