"""`edgecompress deploy`: options -> one DeployRequest -> the pipeline -> a table (or JSON)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from edgecompress.cli import options as opt
from edgecompress.cli import rules as rule_options
from edgecompress.cli.analyze import split_classes
from edgecompress.cli.console import console, setup_logging, stdout_console
from edgecompress.errors import EdgeCompressError, GateFailed
from edgecompress.pipeline.request import TARGET_OPTIONS, DeployRequest

D = DeployRequest.default  # every default below is DeployRequest's own


Profile = Annotated[
    Optional[str],
    typer.Option(
        "--profile",
        "-p",
        help="Device profile name (see `edgecompress profiles list`) or path to your own profile file.",
    ),
]
Target = Annotated[
    list[str],
    typer.Option(
        "--target",
        "-t",
        help="local, ssh://user@host[:port], a target name/file, or qemu[:BOARD] (microcontroller firmware on an emulated board). Repeat for a fleet.",
    ),
]
Output = Annotated[Path, typer.Option("--output", "-o", help="Folder that receives one sub-folder per run.")]
Seed = Annotated[int, typer.Option(help="Seed for data splits and calibration sampling.")]
Scaling = Annotated[
    Optional[str],
    typer.Option(
        help="Input scaling the model expects: 0-1, 0-255 or -1-1 (default: the model's Rescaling layer, else decided by scoring training images at each scaling)."
    ),
]
Resize = Annotated[
    bool, typer.Option("--resize", help="Resize images to the model's input size instead of refusing mismatched data.")
]
Recipe = Annotated[
    Optional[str],
    typer.Option(
        help="Use a named recipe instead of the profile's plan (see the README for the list), e.g. ptq-int8 or cqat."
    ),
]
Delta = Annotated[
    Optional[float], typer.Option(help="Significance threshold on |ID(l) - ID(l-1)| (default: the profile's).")
]
Method = Annotated[str, typer.Option(help="Intrinsic-dimension estimator: twonn or pca.")]
Cache = Annotated[
    bool,
    typer.Option(
        "--cache/--no-cache",
        help="Reuse significance, PTQ models and fine-tuned stages from earlier runs (`edgecompress cache` manages them).",
    ),
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Print the per-layer plan and stop: nothing is trained, written or sent.")
]
Resume = Annotated[
    Optional[Path], typer.Option("--resume", help="Finish a failed run folder, repeating only what is missing.")
]
KeepRemote = Annotated[bool, typer.Option("--keep-remote", help="Keep the run folder on the board.")]
Ship = Annotated[
    bool,
    typer.Option(
        "--ship/--no-ship",
        help="Leave ship/ in the run folder: the recommended artifact, labels, input spec, runner and manifest.",
    ),
]
TflmDir = Annotated[
    Optional[Path],
    typer.Option(
        "--tflm-dir",
        help="Microcontrollers: a tflite-micro tree to build the firmware from (default: $EDGECOMPRESS_TFLM_DIR, then `edgecompress micro setup`'s cache).",
    ),
]
Kernels = Annotated[
    str, typer.Option("--kernels", help="Microcontrollers: TFLM kernels to link, cmsis_nn (optimized) or reference.")
]


def deploy(
    model: opt.ModelFile = None,
    profile: Profile = None,
    data: opt.Data = D("data"),
    classes: opt.Classes = None,
    target: Target = D("targets"),
    output: Output = Path(D("output")),
    seed: Seed = D("seed"),
    scaling: Scaling = D("scaling"),
    resize: Resize = D("resize"),
    max_eval: opt.MaxEval = D("max_eval"),
    warmup: opt.Warmup = D("warmup"),
    runs: opt.Runs = D("runs"),
    rounds: opt.Rounds = D("rounds"),
    cooldown: opt.Cooldown = D("cooldown"),
    threads: opt.Threads = D("threads"),
    recipe: Recipe = D("recipe"),
    finetune_steps: opt.FinetuneSteps = D("finetune_steps"),
    finetune_minutes: opt.FinetuneMinutes = D("finetune_minutes"),
    epochs: opt.Epochs = D("epochs"),
    delta: Delta = D("delta"),
    method: Method = D("method"),
    cache: Cache = D("cache"),
    dry_run: DryRun = False,
    resume_dir: Resume = None,
    identity: opt.Identity = None,
    known_hosts: opt.KnownHosts = None,
    accept_new_host_key: opt.AcceptNewHostKey = False,
    keep_remote: KeepRemote = False,
    password_env: opt.PasswordEnv = None,
    retries: opt.SshRetries = None,
    connect_timeout: opt.ConnectTimeout = None,
    remote_python: opt.RemotePython = None,
    remote_dir: opt.RemoteDir = None,
    max_accuracy_drop: Optional[float] = rule_options.MAX_ACCURACY_DROP,
    max_class_drop: Optional[float] = rule_options.MAX_CLASS_DROP,
    max_impacted_classes: Optional[int] = rule_options.MAX_IMPACTED,
    max_latency_ms: Optional[float] = rule_options.MAX_LATENCY,
    latency_statistic: Optional[str] = rule_options.LATENCY_STATISTIC,
    max_peak_memory: Optional[str] = rule_options.MAX_MEMORY,
    prefer: Optional[str] = rule_options.PREFER,
    size_tolerance: Optional[float] = rule_options.SIZE_TOLERANCE,
    latency_tolerance: Optional[float] = rule_options.LATENCY_TOLERANCE,
    allow_baseline: bool = rule_options.ALLOW_BASELINE,
    alpha: Optional[float] = rule_options.ALPHA,
    gate: bool = rule_options.GATE,
    ship: Ship = D("ship"),
    tflm_dir: TflmDir = None,
    kernels: Kernels = "cmsis_nn",
    quiet: opt.Quiet = False,
    json_output: opt.Json = False,
    debug: opt.Debug = False,
) -> None:
    """Convert MODEL for a device profile, run it on the target, and write a report."""
    setup_logging(debug)
    _run(dict(locals()))


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
        if failed.result is not None:
            _print_result(failed.result, json_output)
        raise
    _print_result(result, json_output)


def request_from_options(options: dict[str, Any]) -> DeployRequest:
    """The DeployRequest the command line describes; the CLI-only options stay behind."""
    if options["model"] is None or options["profile"] is None:
        raise EdgeCompressError(
            "deploy needs a MODEL file and --profile.",
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


def _print_result(result: Any, json_output: bool) -> None:
    from edgecompress.reporting import to_json_summary
    from edgecompress.reporting.terminal import render_summary, render_verdict

    if json_output:
        summary = {"plan": result.report["plan"]} if result.run_dir is None else to_json_summary(result.report)
        sys.stdout.write(
            json.dumps({"run_dir": str(result.run_dir) if result.run_dir else None, **summary}, default=str) + "\n"
        )
        return
    out = stdout_console()
    if result.run_dir is None:
        out.print("Dry run: nothing was trained, written or sent.")
        return
    out.print(render_summary(result.report))
    out.print(render_verdict(result.report))
    out.print(f"Run folder: {result.run_dir}")
