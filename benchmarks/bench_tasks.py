"""Every task end to end, over seeds, and CQAT fine-tuned without labels against CQAT with them.

    python benchmarks/bench_tasks.py                 # 4 tasks x 3 seeds, then CIFAR-10 cat/dog x 3 seeds
    python benchmarks/bench_tasks.py --quick         # one seed, short budgets: a smoke run, not the result
    python benchmarks/bench_tasks.py --skip-cifar    # the tasks only

Part 1, per task (a Conv1D gesture classifier, a diabetes regressor, a digits autoencoder, a
two-output model from unlabelled images; benchmarks/task_cases.py): for each seed the model is
trained with that seed and deployed for rpi4 on this machine (`edgecompress.deploy`, the
profile's plan, fine-tuned with the task's loss or by distillation), and the task's figure of
the baseline and of every artifact, its sizes (file, gzip, bit-packed), median latency and SQNR
against the baseline are read from report.json: mean and sample standard deviation over seeds.

Part 2, label-free compression: the reference CNN of bench_compression.py on CIFAR-10 cat/dog,
compressed with CQAT (16 clusters) once fine-tuned on the labels and once by distillation from
the fp32 model's own outputs (no label read), both int8 and measured in the board-side runner on
the whole test split; the aim is a difference within 0.5 points over 3 seeds.

Writes benchmarks/results/tasks.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

TASKS = ("gestures", "diabetes", "autoencoder", "detector")
#: figures read per artifact from each run's comparison rows
FIGURES = (
    "metric",
    "accuracy",
    "sqnr_db",
    "agreement",
    "file_bytes",
    "gzip_bytes",
    "bitpacked_bytes",
    "latency_median_ms",
)
AIM_POINTS = 0.5


def task_run(name: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Build the task's model with `seed`, deploy it, and keep each artifact's figures."""
    import edgecompress
    from benchmarks import task_cases

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"bench-tasks-{name}-") as folder:
        model, data = task_cases.BUILDERS[name](Path(folder), seed=seed)
        result = edgecompress.deploy(
            model,
            "rpi4",
            data=data,
            output=Path(folder) / "runs",
            seed=seed,
            finetune_steps=args.finetune_steps,
            warmup=10,
            runs=args.runs,
            cache=False,
        )
        report = result.report
    rows = {row["artifact"]: {key: row.get(key) for key in FIGURES} for row in report["comparison"]}
    task = report["task"]
    return {
        "task": task["name"],
        "case": name,
        "seed": seed,
        "metric": (task.get("metric") or {}).get("title"),
        "decided": task.get("reason"),
        "trained_with": next((a.get("trained_with") for a in report["artifacts"] if a.get("trained_with")), None),
        "recommended": report["verdict"]["recommended"],
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }


def summarise_tasks(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation over seeds of every artifact's figures, per task."""
    summary: dict[str, Any] = {}
    for case in dict.fromkeys(run["case"] for run in runs):
        of_case = [run for run in runs if run["case"] == case]
        artifacts = dict.fromkeys(name for run in of_case for name in run["rows"])
        table = {}
        for artifact in artifacts:
            entry = {}
            for key in FIGURES:
                values = [
                    run["rows"][artifact][key] for run in of_case if run["rows"].get(artifact, {}).get(key) is not None
                ]
                if values:
                    entry[key] = _spread(values)
            table[artifact] = entry
        summary[case] = {
            "task": of_case[0]["task"],
            "metric": of_case[0]["metric"],
            "seeds": [run["seed"] for run in of_case],
            "recommended": [run["recommended"] for run in of_case],
            "trained_with": of_case[0]["trained_with"],
            "artifacts": table,
        }
    return summary


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
    }


def cifar_run(seed: int, args: argparse.Namespace, cifar: Path) -> dict[str, Any]:
    """CQAT on the reference CNN, fine-tuned with labels and by distillation; both int8, in the runner."""
    from benchmarks.bench_compression import measure, train_base
    from edgecompress._tf import quiet_native_output
    from edgecompress.compression import run_baseline
    from edgecompress.data import load_dataset, write_eval_npz
    from edgecompress.export import to_tflite
    from edgecompress.model_io import describe_model
    from edgecompress.tasks import task_named
    from edgecompress.tasks.objectives import objective_for

    started = time.perf_counter()
    data = load_dataset(str(cifar), input_shape=(32, 32, 3), classes=["cat", "dog"], seed=seed)
    calibration = data.x_train[:200]
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, quiet_native_output():
        work = Path(tmp)
        eval_npz = write_eval_npz(data, work / "eval.npz", output_kind="sigmoid")
        base = train_base(data, seed, args.max_epochs)
        facts = describe_model(base, path=work / "base.h5").facts
        with quiet_native_output((1, 2)):
            rows["base"] = measure(to_tflite(base, mode="float32"), eval_npz, work, "base")
        for mode, distill in (("cqat-labels", False), ("cqat-distilled", True)):
            objective = objective_for(task_named("classification"), base, facts, data, distill=distill)
            compressed = run_baseline("cqat", base, data, epochs=args.finetune_epochs, seed=seed, objective=objective)
            with quiet_native_output((1, 2)):
                blob = to_tflite(compressed.model, mode=compressed.export_mode, representative=calibration)
            rows[mode] = {**measure(blob, eval_npz, work, mode), "trained_with": objective.words}
    return {"seed": seed, "rows": rows, "seconds": round(time.perf_counter() - started, 1)}


def summarise_cifar(runs: list[dict[str, Any]]) -> dict[str, Any]:
    if not runs:
        return {}
    table = {
        mode: {
            key: _spread([run["rows"][mode][key] for run in runs])
            for key in ("accuracy_pct", "file_bytes", "gzip_bytes", "bitpacked_bytes")
        }
        for mode in ("base", "cqat-labels", "cqat-distilled")
    }

    def change(a: str, b: str) -> dict[str, float]:
        return _spread([run["rows"][a]["accuracy_pct"] - run["rows"][b]["accuracy_pct"] for run in runs])

    gap = change("cqat-distilled", "cqat-labels")
    return {
        "table": table,
        "distilled_minus_labels_points": gap,
        "distilled_minus_base_points": change("cqat-distilled", "base"),
        "labels_minus_base_points": change("cqat-labels", "base"),
        "aim": f"|distilled - labels| <= {AIM_POINTS} points, mean over seeds",
        "aim_met": abs(gap["mean"]) <= AIM_POINTS,
    }


def print_summary(tasks: dict[str, Any], cifar: dict[str, Any]) -> None:
    for case, part in tasks.items():
        print(f"\n## {case} ({part['task']}, {part['metric'] or 'fidelity'}; seeds {part['seeds']})")
        print("| artifact | figure | SQNR dB | file B | gzip B | bit-packed B | median ms |")
        print("|---|---|---|---|---|---|---|")
        for artifact, row in part["artifacts"].items():
            print(
                f"| {artifact} | {_shown(row.get('metric'))} | {_shown(row.get('sqnr_db'), 1)} | "
                f"{_shown(row.get('file_bytes'), 0)} | {_shown(row.get('gzip_bytes'), 0)} | "
                f"{_shown(row.get('bitpacked_bytes'), 0)} | {_shown(row.get('latency_median_ms'), 4)} |"
            )
    if cifar:
        print("\n## CIFAR-10 cat/dog, CQAT without labels (distillation) against CQAT with labels")
        for mode, row in cifar["table"].items():
            print(f"{mode}: accuracy {_shown(row['accuracy_pct'], 2)} %, gzip {_shown(row['gzip_bytes'], 0)} B")
        gap = cifar["distilled_minus_labels_points"]
        print(
            f"distilled - labels: {gap['mean']:+.2f} ± {gap['std']:.2f} pt ({'met' if cifar['aim_met'] else 'MISSED'})"
        )
        for key, words in (
            ("distilled_minus_base_points", "distilled - fp32"),
            ("labels_minus_base_points", "labels - fp32"),
        ):
            print(f"{words}: {cifar[key]['mean']:+.2f} ± {cifar[key]['std']:.2f} pt")


def _shown(spread: dict[str, float] | None, digits: int = 4) -> str:
    if not spread:
        return "—"
    return f"{spread['mean']:.{digits}f} ± {spread['std']:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--finetune-steps", type=int, default=300)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--skip-cifar", action="store_true")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--finetune-epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one seed, short budgets: a smoke run, not the result")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "tasks.json")
    parser.add_argument(
        "--from-runs", type=Path, help="summarise the runs recorded in this results file again instead of measuring"
    )
    args = parser.parse_args()
    if args.from_runs:
        recorded = json.loads(args.from_runs.read_text())
        args.quick, args.finetune_steps = recorded["quick"], recorded["settings"]["finetune_steps"]
        args.runs = recorded["settings"]["runs"]
        args.max_epochs = recorded["settings"]["cifar_max_epochs"]
        args.finetune_epochs = recorded["settings"]["cifar_finetune_epochs"]
        write(args, recorded["runs"]["tasks"], recorded["runs"]["cifar"], command=recorded["command"])
        print_summary(summarise_tasks(recorded["runs"]["tasks"]), summarise_cifar(recorded["runs"]["cifar"]))
        return
    if args.quick:
        args.seeds, args.finetune_steps, args.runs, args.max_epochs, args.finetune_epochs = args.seeds[:1], 60, 20, 3, 1
    task_runs, cifar_runs = [], []
    for name in args.tasks:
        for seed in args.seeds:
            run = task_run(name, seed, args)
            task_runs.append(run)
            print(f"{name} seed {seed}: recommended {run['recommended']} ({run['seconds']:.0f} s)", flush=True)
            write(args, task_runs, cifar_runs)
    if not args.skip_cifar:
        from benchmarks.datasets_cache import ensure_cifar10_jpeg

        cifar = ensure_cifar10_jpeg()
        for seed in args.seeds:
            run = cifar_run(seed, args, cifar)
            cifar_runs.append(run)
            print(
                f"cifar cat/dog seed {seed}: "
                + ", ".join(f"{k} {v['accuracy_pct']:.2f}%" for k, v in run["rows"].items())
                + f" ({run['seconds']:.0f} s)",
                flush=True,
            )
            write(args, task_runs, cifar_runs)
    print_summary(summarise_tasks(task_runs), summarise_cifar(cifar_runs))
    print(f"\nwrote {args.out}")


def write(
    args: argparse.Namespace,
    task_runs: list[dict[str, Any]],
    cifar_runs: list[dict[str, Any]],
    *,
    command: str | None = None,
) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "tasks",
        "command": command or " ".join(sys.argv),
        "quick": args.quick,
        "settings": {
            "profile": "rpi4",
            "target": "local",
            "finetune_steps": args.finetune_steps,
            "runs": args.runs,
            "cifar_max_epochs": args.max_epochs,
            "cifar_finetune_epochs": args.finetune_epochs,
        },
        "definitions": {
            "metric": "the task's figure from the device's raw outputs: accuracy share (classification), MAE "
            "(regression), ROC AUC (anomaly); none in fidelity mode",
            "sqnr_db": "10 log10(signal power / error power) of the outputs against the baseline's, worst output",
            "std": "sample standard deviation over seeds (n - 1)",
            "bitpacked_bytes": "weights at ceil(log2(unique values)) bits + codebooks + biases + other constants",
        },
        "tasks": summarise_tasks(task_runs),
        "label_free_cqat": summarise_cifar(cifar_runs),
        "runs": {"tasks": task_runs, "cifar": cifar_runs},
    }
    args.out.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
