"""`edgecompress tune`: options -> one TuneRequest (around one DeployRequest) -> the search -> the Pareto table and verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from edgecompress.cli import options as opt
from edgecompress.cli import rules as rule_options
from edgecompress.cli.analyze import split_classes
from edgecompress.cli.console import console, setup_logging, stdout_console, write_stdout
from edgecompress.errors import EdgeCompressError, GateFailed
from edgecompress.pipeline.request import TARGET_OPTIONS, DeployRequest
from edgecompress.tune.request import TuneRequest

D = DeployRequest.default
T = TuneRequest.default


Profile = Annotated[
    Optional[str],
    typer.Option(
        "--profile", "-p", help="Device profile name or file: its budgets and acceptance rules constrain the search."
    ),
]
Target = Annotated[
    list[str],
    typer.Option(
        "--target",
        "-t",
        help="Board(s) every trial is measured on: local, ssh://user@host, a target or fleet file. Repeat for a fleet.",
    ),
]
Output = Annotated[Path, typer.Option("--output", "-o", help="Folder that receives one sub-folder per tune.")]
Trials = Annotated[
    int, typer.Option(help="Candidates to build and measure (refused and duplicate candidates do not count).")
]
TimeBudget = Annotated[
    Optional[str],
    typer.Option(
        "--time-budget", help="No new trial starts after this much searching, e.g. 45m or 2h (running ones finish)."
    ),
]
Objectives = Annotated[
    str, typer.Option(help="What to optimise, comma-separated: accuracy, size, latency, memory, gzip.")
]
Seeds = Annotated[
    int, typer.Option(help="Seeds the Pareto set is run with in all (figures shown as mean ± std; 1: no re-runs).")
]
RayAddress = Annotated[
    Optional[str],
    typer.Option(
        "--ray-address",
        help="A Ray cluster (e.g. 10.0.0.5:6379; default $RAY_ADDRESS); without one, tune starts a local Ray itself.",
    ),
]
Parallel = Annotated[
    Optional[int], typer.Option(help="Trials building at once (default: the cluster's CPUs / --cpus-per-trial).")
]
CpusPerTrial = Annotated[
    float, typer.Option(help="CPUs Ray gives each trial's fine-tuning (TensorFlow uses that many threads).")
]
GpusPerTrial = Annotated[
    float,
    typer.Option(
        help="GPUs Ray gives each trial's fine-tuning (a fraction shares one GPU); 0: trials train on CPUs. Use with --device auto or gpu."
    ),
]
MaxReruns = Annotated[int, typer.Option(help="Pareto trials re-run with other seeds, at most.")]
SearchSeed = Annotated[int, typer.Option(help="Seed of the searcher (Optuna's sampler).")]
Prior = Annotated[
    bool,
    typer.Option("--prior/--no-prior", help="Start from the TwoNN plan and its neighbours (--no-prior: random start)."),
]
Seed = Annotated[int, typer.Option(help="Seed of the first run of every trial (data split, calibration, fine-tuning).")]
Scaling = Annotated[
    Optional[str],
    typer.Option(help="Input scaling the model expects: 0-1, 0-255 or -1-1 (default: decided as deploy does)."),
]
Onnx = Annotated[
    bool,
    typer.Option(
        "--onnx/--no-onnx",
        help="Also export and measure each trial's ONNX file (off: ONNX files are float, not candidates).",
    ),
]
Cache = Annotated[
    bool,
    typer.Option(
        "--cache/--no-cache", help="Share significance, PTQ models and fine-tuned stages across trials and runs."
    ),
]
Resume = Annotated[
    Optional[Path],
    typer.Option(
        "--resume",
        help="Continue an interrupted tune folder; finished trials are not repeated (--ray-address moves it to another cluster).",
    ),
]
ResumeTrials = Annotated[
    Optional[int],
    typer.Option("--resume-trials", help="With --resume: a new trial budget (more than before searches on)."),
]


@rule_options.with_rule_options(after="cache")
def tune(
    ctx: typer.Context,
    model: opt.ModelFile = None,
    profile: Profile = None,
    data: opt.Data = None,
    classes: opt.Classes = None,
    target: Target = D("targets"),
    output: Output = Path(T("output")),
    trials: Trials = T("trials"),
    time_budget: TimeBudget = None,
    objectives: Objectives = ",".join(T("objectives")),
    seeds: Seeds = T("seeds"),
    ray_address: RayAddress = None,
    parallel: Parallel = T("parallel"),
    cpus_per_trial: CpusPerTrial = T("cpus_per_trial"),
    gpus_per_trial: GpusPerTrial = T("gpus_per_trial"),
    max_reruns: MaxReruns = T("max_reruns"),
    search_seed: SearchSeed = T("search_seed"),
    prior: Prior = T("prior"),
    seed: Seed = D("seed"),
    scaling: Scaling = D("scaling"),
    max_eval: opt.MaxEval = D("max_eval"),
    warmup: opt.Warmup = D("warmup"),
    runs: opt.Runs = D("runs"),
    rounds: opt.Rounds = D("rounds"),
    cooldown: opt.Cooldown = D("cooldown"),
    threads: opt.Threads = D("threads"),
    finetune_steps: opt.FinetuneSteps = D("finetune_steps"),
    finetune_minutes: opt.FinetuneMinutes = D("finetune_minutes"),
    epochs: opt.Epochs = D("epochs"),
    device: opt.Device = D("device"),
    onnx: Onnx = False,
    cache: Cache = D("cache"),
    resume_dir: Resume = None,
    more_trials: ResumeTrials = None,
    identity: opt.Identity = None,
    known_hosts: opt.KnownHosts = None,
    ssh_config: opt.SshConfig = None,
    accept_new_host_key: opt.AcceptNewHostKey = False,
    password_env: opt.PasswordEnv = None,
    retries_ssh: opt.SshRetries = None,
    connect_timeout: opt.ConnectTimeout = None,
    remote_python: opt.RemotePython = None,
    remote_dir: opt.RemoteDir = None,
    quiet: opt.Quiet = False,
    json_output: opt.Json = False,
    debug: opt.Debug = False,
    **rules: Any,
) -> None:
    """Search compression plans for MODEL on a device by measurement: a Pareto front of accuracy, size and latency, and a shippable pick."""
    _run(opt.plain({**locals(), **rules}))


def _run(options: dict[str, Any]) -> None:
    """The search (or its resume) with progress on stderr; the Pareto table and verdict (or JSON) on stdout."""
    from edgecompress import tune as tuning
    from edgecompress.cli.progress import Progress

    setup_logging(options["debug"])
    bars = Progress(quiet=options["quiet"] or options["json_output"], console=console)
    _check_resume_options(options)
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


#: what `--resume` may be given: the rest of the search comes from the tune folder's tune.json
_RESUME_OPTIONS = {"resume_dir", "more_trials", "ray_address", "gate", "quiet", "json_output", "debug"}


def _check_resume_options(options: dict[str, Any]) -> None:
    """Refuse options `--resume` would silently ignore (a resumed tune keeps its own settings), and the reverse."""
    if options["resume_dir"] is None:
        if options["more_trials"] is not None:
            raise EdgeCompressError(
                "--resume-trials only applies to a resumed tune.",
                "Use --trials for a new tune, or add --resume TUNE_DIR.",
            )
        return
    context = options.get("ctx")
    if context is None:  # called from Python, not the command line: nothing was typed
        return
    typed = [
        "/".join([max(param.opts, key=len), *getattr(param, "secondary_opts", [])])
        if param.param_type_name == "option"
        else str(param.name).upper()
        for param in context.command.params
        if param.name not in _RESUME_OPTIONS
        and (source := context.get_parameter_source(str(param.name))) is not None
        and source.name == "COMMANDLINE"
    ]
    if typed:
        raise EdgeCompressError(
            f"--resume continues a tune with the settings it was started with; it cannot take {', '.join(typed)}.",
            "Leave them out (--resume-trials N raises the trial budget, --ray-address moves the search), "
            "or start a new tune with them.",
        )


def request_from_options(options: dict[str, Any]) -> TuneRequest:
    from edgecompress.tune.request import parse_duration

    options = opt.plain(options)  # a Python caller may pass choices as enums too
    if options["model"] is None or options["profile"] is None or not options.get("data"):
        raise EdgeCompressError(
            "tune needs a MODEL file, --profile and --data.",
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
            "rounds",
            "cooldown",
            "threads",
            "finetune_steps",
            "finetune_minutes",
            "epochs",
            "device",
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
        gpus_per_trial=options["gpus_per_trial"],
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
        write_stdout(json.dumps(summary, default=str) + "\n")
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
