"""`edgecompress deploy`: options -> one DeployRequest -> the pipeline -> a table (or JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from edgecompress.cli import options as opt
from edgecompress.cli import rules as rule_options
from edgecompress.cli.analyze import split_classes
from edgecompress.cli.console import console, print_line, setup_logging, stdout_console, write_stdout
from edgecompress.cli.options import COMPRESSION, MICRO, MODEL_AND_DATA, OUTPUT, TARGET, choice
from edgecompress.compression.baselines import BASELINES
from edgecompress.errors import EdgeCompressError, GateFailed
from edgecompress.pipeline.request import TARGET_OPTIONS, DeployRequest

D = DeployRequest.default  # every default below is DeployRequest's own


#: what --recipe accepts, listed in its help
RECIPE_NAMES = tuple(BASELINES)

if TYPE_CHECKING:  # what mypy sees; typer sees the choices
    ScalingChoice = str
    MethodChoice = str
    RecipeChoice = str
    KernelsChoice = str
else:
    from edgecompress.analysis.significance import ESTIMATORS
    from edgecompress.data.dataset import SCALINGS
    from edgecompress.micro.tflm_make import KERNELS

    ScalingChoice = choice("Scaling", SCALINGS)
    MethodChoice = choice("Method", ESTIMATORS)
    RecipeChoice = choice("Recipe", RECIPE_NAMES)
    KernelsChoice = choice("Kernels", KERNELS)

Profile = Annotated[
    Optional[str],
    typer.Option(
        "--profile",
        "-p",
        help="Device profile name (see `edgecompress profiles list`) or path to your own profile file.",
        show_default=False,
        rich_help_panel=MODEL_AND_DATA,
    ),
]
Scaling = Annotated[
    Optional[ScalingChoice],
    typer.Option(
        help="Input scaling the model expects.",
        show_default="the model's Rescaling layer, else decided by scoring training images at each scaling",
        rich_help_panel=MODEL_AND_DATA,
    ),
]
Resize = Annotated[
    bool,
    typer.Option(
        "--resize",
        help="Resize images to the model's input size instead of refusing mismatched data.",
        rich_help_panel=MODEL_AND_DATA,
    ),
]
Seed = Annotated[
    int, typer.Option(help="Seed for data splits and calibration sampling.", rich_help_panel=MODEL_AND_DATA)
]
Target = Annotated[
    list[str],
    typer.Option(
        "--target",
        "-t",
        help="local, ssh://user@host:port, a target name or file, or qemu / qemu:BOARD (microcontroller firmware on an emulated board). Repeat for a fleet.",
        rich_help_panel=TARGET,
    ),
]
KeepRemote = Annotated[
    bool, typer.Option("--keep-remote", help="Keep the run folder on the board.", rich_help_panel=TARGET)
]
Recipe = Annotated[
    Optional[RecipeChoice],
    typer.Option(
        metavar="NAME",
        help="Use a named recipe instead of the profile's plan, one of: " + ", ".join(RECIPE_NAMES) + ".",
        show_default="the profile's plan",
        rich_help_panel=COMPRESSION,
    ),
]
Delta = Annotated[
    Optional[float],
    typer.Option(
        help="Significance threshold on |ID(l) - ID(l-1)|.", show_default="the profile's", rich_help_panel=COMPRESSION
    ),
]
Method = Annotated[MethodChoice, typer.Option(help="Intrinsic-dimension estimator.", rich_help_panel=COMPRESSION)]
Cache = Annotated[
    bool,
    typer.Option(
        "--cache/--no-cache",
        help="Reuse significance, PTQ models and fine-tuned stages from earlier runs (`edgecompress cache` manages them).",
        rich_help_panel=COMPRESSION,
    ),
]
TflmDir = Annotated[
    Optional[Path],
    typer.Option(
        "--tflm-dir",
        help="A tflite-micro tree to build the firmware from.",
        show_default="$EDGECOMPRESS_TFLM_DIR, then `edgecompress micro setup`'s cache",
        rich_help_panel=MICRO,
    ),
]
Kernels = Annotated[
    KernelsChoice,
    typer.Option("--kernels", help="TFLM kernels to link: cmsis_nn (optimized) or reference.", rich_help_panel=MICRO),
]
Output = Annotated[
    Path, typer.Option("--output", "-o", help="Folder that receives one sub-folder per run.", rich_help_panel=OUTPUT)
]
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Check everything that can be checked without connecting, print the plan and stop: nothing is trained, written or sent.",
        rich_help_panel=OUTPUT,
    ),
]
Resume = Annotated[
    Optional[Path],
    typer.Option(
        "--resume",
        help="Finish a failed or interrupted run folder, repeating only what is missing.",
        show_default=False,
        rich_help_panel=OUTPUT,
    ),
]
Ship = Annotated[
    bool,
    typer.Option(
        "--ship/--no-ship",
        help="Leave ship/ in the run folder: the recommended artifact, labels, input spec, runner and manifest.",
        rich_help_panel=OUTPUT,
    ),
]
Wide = Annotated[
    bool,
    typer.Option(
        "--wide",
        help="Show every column of the results table (report.md and report.html always have them all).",
        rich_help_panel=OUTPUT,
    ),
]


@rule_options.with_rule_options(after="cache")
def deploy(
    model: opt.ModelFile = None,
    profile: Profile = None,
    data: opt.Data = None,
    classes: opt.Classes = None,
    seed: Seed = D("seed"),
    scaling: Scaling = D("scaling"),
    resize: Resize = D("resize"),
    max_eval: opt.MaxEval = D("max_eval"),
    target: Target = D("targets"),
    warmup: opt.Warmup = D("warmup"),
    runs: opt.Runs = D("runs"),
    rounds: opt.Rounds = D("rounds"),
    cooldown: opt.Cooldown = D("cooldown"),
    threads: opt.Threads = D("threads"),
    identity: opt.Identity = None,
    known_hosts: opt.KnownHosts = None,
    ssh_config: opt.SshConfig = None,
    accept_new_host_key: opt.AcceptNewHostKey = False,
    keep_remote: KeepRemote = False,
    password_env: opt.PasswordEnv = None,
    retries: opt.SshRetries = None,
    connect_timeout: opt.ConnectTimeout = None,
    remote_python: opt.RemotePython = None,
    remote_dir: opt.RemoteDir = None,
    recipe: Recipe = D("recipe"),
    finetune_steps: opt.FinetuneSteps = D("finetune_steps"),
    finetune_minutes: opt.FinetuneMinutes = D("finetune_minutes"),
    epochs: opt.Epochs = D("epochs"),
    device: opt.Device = D("device"),
    delta: Delta = D("delta"),
    method: Method = D("method"),
    cache: Cache = D("cache"),
    tflm_dir: TflmDir = None,
    kernels: Kernels = "cmsis_nn",
    output: Output = Path(D("output")),
    dry_run: DryRun = False,
    resume_dir: Resume = None,
    ship: Ship = D("ship"),
    wide: Wide = False,
    quiet: opt.Quiet = False,
    json_output: opt.Json = False,
    debug: opt.Debug = False,
    **rules: Any,
) -> None:
    """Convert MODEL for a device profile, run it on the target, and write a report.

    Example: edgecompress deploy --profile rpi4 model.h5 --data sklearn:digits --target local
    """
    setup_logging(debug)
    _run(opt.plain({**locals(), **rules}))


def _run(options: dict[str, Any]) -> None:
    """The pipeline with progress on stderr; the table and verdict (or JSON) on stdout, even when the gate fails."""
    from edgecompress import pipeline
    from edgecompress.cli.progress import Progress

    quiet, json_output = options["quiet"], options["json_output"]
    bars = Progress(quiet=quiet or json_output, console=console)
    out = stdout_console()
    feedback: dict[str, Any] = {
        "progress": bars.say,
        "task": bars.task,
        "show": None if (quiet or json_output) else out.print,
    }
    try:
        if options["resume_dir"] is not None:
            result = pipeline.resume(options["resume_dir"], **feedback)
        else:
            result = pipeline.run(request_from_options(options), dry_run=options["dry_run"], **feedback)
    except GateFailed as failed:  # the run finished: show what it measured, then exit with the gate's code
        if failed.result is not None and not json_output:  # with --json the error document carries the summary
            print_result(failed.result, wide=options.get("wide", False))
        raise
    if json_output:
        print_json(result)
    else:
        print_result(result, wide=options.get("wide", False))


def request_from_options(options: dict[str, Any]) -> DeployRequest:
    """The DeployRequest the command line describes; the CLI-only options stay behind."""
    options = opt.plain(options)  # a Python caller may pass choices as enums too
    if options["model"] is None or options["profile"] is None or not options.get("data"):
        raise EdgeCompressError(
            "deploy needs a MODEL file, --profile and --data.",
            "Example: edgecompress deploy --profile rpi4 model.h5 --data sklearn:digits",
        )
    own = set(DeployRequest.__dataclass_fields__) - {"model", "profile", "targets", "target_options"}
    fields = {name: options[name] for name in own if name in options}
    fields.update(
        classes=split_classes(options["classes"]),
        output=str(options["output"]),
        acceptance=rule_options.overrides(options),
        micro={k: str(v) for k, v in {"tflm_dir": options["tflm_dir"], "kernels": options["kernels"]}.items() if v},
    )
    return DeployRequest.build(
        options["model"],
        options["profile"],
        target=options["target"],
        **fields,
        **{name: options[name] for name in TARGET_OPTIONS},
    )


def print_json(result: Any) -> None:
    """--json: one document on stdout (a dry run's plan, or the run's summary)."""
    from edgecompress.reporting import to_json_summary

    summary = {"plan": result.report["plan"]} if result.run_dir is None else to_json_summary(result.report)
    document = {"run_dir": str(result.run_dir) if result.run_dir else None, **summary}
    write_stdout(json.dumps(document, default=str) + "\n")


def print_result(result: Any, *, wide: bool = False) -> None:
    """The results table, the verdict under it, and where the run folder is (deploy and quickstart)."""
    from edgecompress.reporting.terminal import render_summary, render_verdict

    out = stdout_console()
    if result.run_dir is None:
        out.print("Dry run: nothing was trained, written or sent.")
        return
    out.print(render_summary(result.report, wide=wide))
    out.print(render_verdict(result.report))
    print_line(f"Run folder: {result.run_dir}", target=out)
