"""`edgecompress tune`: options -> one TuneRequest (around one DeployRequest) -> the search -> the Pareto table and verdict."""

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
from edgecompress.tune.request import TuneRequest

D = DeployRequest.default
T = TuneRequest.default


def tune(
    model: Optional[Path] = typer.Argument(None, help="Keras model file (.h5 or .keras). Not needed with --resume."),
    profile: Optional[str] = typer.Option(
        None,
        "--profile",
        "-p",
        help="Device profile name or file: its budgets and acceptance rules constrain the search.",
    ),
    data: str = typer.Option(D("data"), "--data", "-d", help="Class-folder directory, .npz file, or sklearn:digits."),
    classes: Optional[str] = typer.Option(None, help="Comma-separated class subset in the model's output order."),
    target: list[str] = typer.Option(
        D("targets"),
        "--target",
        "-t",
        help="Board(s) every trial is measured on: local, ssh://user@host, a target or fleet file. Repeat for a fleet.",
    ),
    output: Path = typer.Option(
        Path(T("output")), "--output", "-o", help="Folder that receives one sub-folder per tune."
    ),
    trials: int = typer.Option(
        T("trials"), help="Candidates to build and measure (refused and duplicate candidates do not count)."
    ),
    time_budget: Optional[str] = typer.Option(
        None,
        "--time-budget",
        help="No new trial starts after this much searching, e.g. 45m or 2h (running ones finish).",
    ),
    objectives: str = typer.Option(
        ",".join(T("objectives")), help="What to optimise, comma-separated: accuracy, size, latency, memory, gzip."
    ),
    seeds: int = typer.Option(
        T("seeds"), help="Seeds the Pareto set is run with in all (figures shown as mean ± std; 1: no re-runs)."
    ),
    ray_address: Optional[str] = typer.Option(
        None,
        "--ray-address",
        help="A Ray cluster (e.g. 10.0.0.5:6379; default $RAY_ADDRESS); without one, tune starts a local Ray itself.",
    ),
    parallel: Optional[int] = typer.Option(
        T("parallel"), help="Trials building at once (default: the cluster's CPUs / --cpus-per-trial)."
    ),
    cpus_per_trial: float = typer.Option(
        T("cpus_per_trial"), help="CPUs Ray gives each trial's fine-tuning (TensorFlow uses that many threads)."
    ),
    max_reruns: int = typer.Option(T("max_reruns"), help="Pareto trials re-run with other seeds, at most."),
    search_seed: int = typer.Option(T("search_seed"), help="Seed of the searcher (Optuna's sampler)."),
    prior: bool = typer.Option(
        T("prior"),
        "--prior/--no-prior",
        help="Start from the TwoNN plan and its neighbours (--no-prior: random start).",
    ),
    seed: int = typer.Option(
        D("seed"), help="Seed of the first run of every trial (data split, calibration, fine-tuning)."
    ),
    scaling: Optional[str] = typer.Option(
        D("scaling"), help="Input scaling the model expects: 0-1, 0-255 or -1-1 (default: decided as deploy does)."
    ),
    max_eval: int = typer.Option(D("max_eval"), help="Evaluation images measured on the board."),
    warmup: int = typer.Option(D("warmup"), help="Warm-up inferences before timing."),
    runs: int = typer.Option(D("runs"), help="Timed inferences."),
    threads: Optional[int] = typer.Option(D("threads"), help="Interpreter threads on the board."),
    finetune_steps: Optional[int] = typer.Option(
        D("finetune_steps"), help="Optimizer steps per fine-tuning stage at most, per trial (default: the profile's)."
    ),
    finetune_minutes: Optional[float] = typer.Option(
        D("finetune_minutes"), help="Wall-clock budget for one trial's fine-tuning, in minutes."
    ),
    epochs: Optional[int] = typer.Option(D("epochs"), help="Epochs-equivalent per fine-tuning stage at most."),
    onnx: bool = typer.Option(
        False,
        "--onnx/--no-onnx",
        help="Also export and measure each trial's ONNX file (off: ONNX files are float, not candidates).",
    ),
    cache: bool = typer.Option(
        D("cache"),
        "--cache/--no-cache",
        help="Share significance, PTQ models and fine-tuned stages across trials and runs.",
    ),
    resume_dir: Optional[Path] = typer.Option(
        None,
        "--resume",
        help="Continue an interrupted tune folder; finished trials are not repeated (--ray-address moves it to another cluster).",
    ),
    more_trials: Optional[int] = typer.Option(
        None, "--resume-trials", help="With --resume: a new trial budget (more than before searches on)."
    ),
    identity: Optional[Path] = typer.Option(None, help="SSH private key file (stays on this machine)."),
    known_hosts: Optional[Path] = typer.Option(None, help="known_hosts file to verify boards against."),
    accept_new_host_key: bool = typer.Option(
        False, "--accept-new-host-key", help="Trust and record the host key of a board seen for the first time."
    ),
    password_env: Optional[str] = typer.Option(None, help="Name of an environment variable holding the SSH password."),
    retries_ssh: Optional[int] = typer.Option(
        None, "--ssh-retries", help="Retries when an SSH connection drops (default 2)."
    ),
    connect_timeout: Optional[float] = typer.Option(None, help="Seconds to wait for a board to answer (default 10)."),
    remote_python: Optional[str] = typer.Option(None, help="Python on the board."),
    remote_dir: Optional[str] = typer.Option(None, help="Work folder on the board."),
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the final table (and errors)."),
    json_output: bool = typer.Option(False, "--json", help="Print a machine-readable JSON summary on stdout."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and TensorFlow's own messages."),
) -> None:
    """Search compression plans for MODEL on a device by measurement: a Pareto front of accuracy, size and latency, and a shippable pick."""
    setup_logging(debug)
    _run(dict(locals()))


def _run(options: dict[str, Any]) -> None:
    """The search (or its resume) with progress on stderr; the Pareto table and verdict (or JSON) on stdout."""
    from edgecompress import tune as tuning
    from edgecompress.cli.progress import Progress

    bars = Progress(quiet=options["quiet"] or options["json_output"], console=console)
    if options["resume_dir"] is not None:
        result = tuning.resume(
            options["resume_dir"], trials=options["more_trials"], ray_address=options["ray_address"], progress=bars.say
        )
    else:
        result = tuning.tune(request_from_options(options), progress=bars.say)
    _print(result, options["json_output"])
    if options["gate"] and not result.verdict.get("recommended_trial"):
        raise GateFailed(
            f"Gate failed: {result.verdict.get('reason')}", " ".join(result.verdict.get("next_steps") or [])
        )


def request_from_options(options: dict[str, Any]) -> TuneRequest:
    from edgecompress.tune.request import parse_duration

    if options["model"] is None or options["profile"] is None:
        raise EdgeCompressError(
            "tune needs a MODEL file and --profile.",
            "Example: edgecompress tune --profile rpi4 model.h5 --data DIR --target local --trials 24",
        )
    fields = {
        name: options[name]
        for name in (
            "data",
            "seed",
            "scaling",
            "max_eval",
            "warmup",
            "runs",
            "threads",
            "finetune_steps",
            "finetune_minutes",
            "epochs",
            "onnx",
            "cache",
        )
    }
    ssh = {name: options[name] for name in TARGET_OPTIONS if name in options}
    ssh["retries"] = options["retries_ssh"]
    deploy = DeployRequest.build(
        options["model"],
        options["profile"],
        target=options["target"],
        output=str(options["output"]),
        classes=split_classes(options["classes"]),
        acceptance=rule_options.overrides(options),
        ship=True,
        **fields,
        **ssh,
    )
    return TuneRequest(
        deploy=deploy,
        output=str(options["output"]),
        trials=options["trials"],
        time_budget_s=parse_duration(options["time_budget"]),
        objectives=[o.strip() for o in options["objectives"].split(",") if o.strip()],
        seeds=options["seeds"],
        ray_address=options["ray_address"],
        parallel=options["parallel"],
        cpus_per_trial=options["cpus_per_trial"],
        search_seed=options["search_seed"],
        prior=options["prior"],
        max_reruns=options["max_reruns"],
    )


def _print(result: Any, json_output: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    report = result.report
    if json_output:
        summary = {
            "tune_dir": str(result.tune_dir),
            "verdict": report["verdict"],
            "pareto": report["pareto"],
            "hypervolume": report["hypervolume"],
            "counts": report["counts"],
            "trials": [
                {
                    k: row.get(k)
                    for k in ("trial", "state", "candidate", "figures", "passes", "pareto", "run_dir", "reason")
                }
                for row in report["trials"]
            ],
        }
        sys.stdout.write(json.dumps(summary, default=str) + "\n")
        return
    out = stdout_console()
    names = [o["name"] for o in report["objectives"]]
    table = Table(title=f"Pareto set ({len(report['pareto'])} of {report['counts']['complete']} measured trials)")
    for column in ["trial", "candidate", *names, "passes"]:
        table.add_column(column)
    for row in report["trials"]:
        if not row["pareto"]:
            continue
        seeds = row.get("over_seeds") or {}
        cells = []
        for name in names:
            stat = seeds.get(name) or {}
            mean, std = stat.get("mean", row["figures"].get(name)), stat.get("std")
            cells.append(Text(_number(mean) + (f" ± {_number(std)}" if std else "")))
        passing = seeds.get("passes") or {"n": 1, "passing": int(bool(row["passes"]))}
        table.add_row(
            Text(row["trial"]),
            Text(", ".join(f"{k} {v}" for k, v in row["candidate"].items())),
            *cells,
            Text(f"{passing['passing']}/{passing['n']} seeds"),
        )
    out.print(table)
    verdict = report["verdict"]
    out.print(
        Text(("Recommended: " if verdict.get("passed") else "No recommendation: ") + str(verdict.get("reason", "")))
    )
    out.print(Text(f"Tune folder: {result.tune_dir}  (report: {result.tune_dir / 'tune-report.html'})"))


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"
