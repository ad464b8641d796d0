"""`edgecompress deploy`: options -> one DeployRequest -> the pipeline -> a table (or JSON)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from edgecompress.cli import rules as rule_options
from edgecompress.cli.analyze import split_classes
from edgecompress.cli.console import console, setup_logging, stdout_console
from edgecompress.errors import EdgeCompressError, GateFailed
from edgecompress.pipeline.request import TARGET_OPTIONS, DeployRequest

D = DeployRequest.default  # every default below is DeployRequest's own


def deploy(
    model: Optional[Path] = typer.Argument(None, help="Keras model file (.h5 or .keras). Not needed with --resume."),
    profile: Optional[str] = typer.Option(
        None,
        "--profile",
        "-p",
        help="Device profile name (see `edgecompress profiles list`) or path to your own profile file.",
    ),
    data: str = typer.Option(D("data"), "--data", "-d", help="Class-folder directory, .npz file, or sklearn:digits."),
    classes: Optional[str] = typer.Option(
        None, help="Comma-separated class subset in the model's output order, e.g. cat,dog."
    ),
    target: list[str] = typer.Option(
        D("targets"),
        "--target",
        "-t",
        help="local, ssh://user@host[:port], a target name/file, or qemu[:BOARD] (microcontroller firmware on an emulated board). Repeat for a fleet.",
    ),
    output: Path = typer.Option(
        Path(D("output")), "--output", "-o", help="Folder that receives one sub-folder per run."
    ),
    seed: int = typer.Option(D("seed"), help="Seed for data splits and calibration sampling."),
    scaling: Optional[str] = typer.Option(
        D("scaling"),
        help="Input scaling the model expects: 0-1, 0-255 or -1-1 (default: the model's Rescaling layer, else decided by scoring training images at each scaling).",
    ),
    resize: bool = typer.Option(
        D("resize"), "--resize", help="Resize images to the model's input size instead of refusing mismatched data."
    ),
    max_eval: int = typer.Option(
        D("max_eval"), help="Evaluation images measured on the device (stratified subset of the test split)."
    ),
    warmup: int = typer.Option(D("warmup"), help="Warm-up inferences before timing."),
    runs: int = typer.Option(D("runs"), help="Timed inferences."),
    threads: Optional[int] = typer.Option(
        D("threads"), help="Interpreter threads on the device (default: the runtime's choice)."
    ),
    recipe: Optional[str] = typer.Option(
        D("recipe"),
        help="Use a named recipe instead of the profile's plan (see the README for the list), e.g. ptq-int8 or cqat.",
    ),
    finetune_steps: Optional[int] = typer.Option(
        D("finetune_steps"), help="Optimizer steps per fine-tuning stage at most (default: the profile's, 1000)."
    ),
    finetune_minutes: Optional[float] = typer.Option(
        D("finetune_minutes"), help="Wall-clock budget for all fine-tuning, in minutes (default: the profile's, none)."
    ),
    epochs: Optional[int] = typer.Option(
        D("epochs"), help="Epochs-equivalent per fine-tuning stage at most, for small data sets (default 10)."
    ),
    delta: Optional[float] = typer.Option(
        D("delta"), help="Significance threshold on |ID(l) - ID(l-1)| (default: the profile's)."
    ),
    method: str = typer.Option(D("method"), help="Intrinsic-dimension estimator: twonn or pca."),
    cache: bool = typer.Option(
        D("cache"),
        "--cache/--no-cache",
        help="Reuse significance, PTQ models and fine-tuned stages from earlier runs (`edgecompress cache` manages them).",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the per-layer plan and stop: nothing is trained, written or sent."
    ),
    resume_dir: Optional[Path] = typer.Option(
        None, "--resume", help="Finish a failed run folder, repeating only what is missing."
    ),
    identity: Optional[Path] = typer.Option(None, help="SSH private key file."),
    known_hosts: Optional[Path] = typer.Option(
        None, help="known_hosts file to verify boards against (default ~/.ssh/known_hosts)."
    ),
    accept_new_host_key: bool = typer.Option(
        False, "--accept-new-host-key", help="Trust and record the host key of a board seen for the first time."
    ),
    keep_remote: bool = typer.Option(False, "--keep-remote", help="Keep the run folder on the board."),
    password_env: Optional[str] = typer.Option(None, help="Name of an environment variable holding the SSH password."),
    retries: Optional[int] = typer.Option(
        None, "--ssh-retries", help="Retries (with back-off) when a connection drops (default 2)."
    ),
    connect_timeout: Optional[float] = typer.Option(None, help="Seconds to wait for a board to answer (default 10)."),
    remote_python: Optional[str] = typer.Option(
        None, help="Python on the board (default: python3, or the target file's)."
    ),
    remote_dir: Optional[str] = typer.Option(None, help="Work folder on the board (default ~/.edgecompress)."),
    max_accuracy_drop: Optional[float] = rule_options.MAX_ACCURACY_DROP,
    max_class_drop: Optional[float] = rule_options.MAX_CLASS_DROP,
    max_impacted_classes: Optional[int] = rule_options.MAX_IMPACTED,
    max_latency_ms: Optional[float] = rule_options.MAX_LATENCY,
    latency_statistic: Optional[str] = rule_options.LATENCY_STATISTIC,
    max_peak_memory: Optional[str] = rule_options.MAX_MEMORY,
    prefer: Optional[str] = rule_options.PREFER,
    allow_baseline: bool = rule_options.ALLOW_BASELINE,
    alpha: Optional[float] = rule_options.ALPHA,
    gate: bool = rule_options.GATE,
    ship: bool = typer.Option(
        D("ship"),
        "--ship/--no-ship",
        help="Leave ship/ in the run folder: the recommended artifact, labels, input spec, runner and manifest.",
    ),
    tflm_dir: Optional[Path] = typer.Option(
        None,
        "--tflm-dir",
        help="Microcontrollers: a tflite-micro tree to build the firmware from (default: $EDGECOMPRESS_TFLM_DIR, then `edgecompress micro setup`'s cache).",
    ),
    kernels: str = typer.Option(
        "cmsis_nn", "--kernels", help="Microcontrollers: TFLM kernels to link, cmsis_nn (optimized) or reference."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the final table (and errors)."),
    json_output: bool = typer.Option(
        False, "--json", help="Print a machine-readable JSON summary on stdout instead of tables."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and TensorFlow's own messages."),
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
