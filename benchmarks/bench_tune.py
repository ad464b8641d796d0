"""Benchmark `edgecompress tune` on the reference CIFAR cat-vs-dog CNN with the local target.

    python benchmarks/bench_tune.py                    # the full figures: hours on a 2-core machine
    python benchmarks/bench_tune.py --quick            # a reduced run that exercises every part

Three figures, written to benchmarks/results/tune.json (tune_quick.json with --quick):

1. The Pareto front found in N trials, and the hypervolume of a TwoNN-seeded search against an
   unseeded one of the same budget (the same space, sampler and budget; only the start differs),
   each with several search seeds. Hypervolumes share one scale: the best and worst value of each
   objective over every trial of every search.
2. Measured trials per hour with 1 and 2 trials building at once on a local Ray of 2 CPUs (the
   same searches, a fresh stage cache each, so nothing is reused between them).
3. Ray's overhead per trial: the same trial build (no cache) as a Ray task on a warm worker
   against the same call in this process, median of a few repeats.

The reference CNN (545,889 parameters) is trained once by benchmarks/bench_compression.py's
recipe and kept in the benchmark cache. Timing figures measured while other work loads the
machine are noisy; the ratios come from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def reference_model(cifar: Path, work: Path, max_epochs: int) -> Path:
    """The cat-vs-dog reference CNN as .h5, trained once (seed 0) and kept."""
    from bench_compression import train_base

    from edgecompress.data import load_dataset

    path = work / f"cat_dog_cnn_e{max_epochs}.h5"
    if not path.is_file():
        data = load_dataset(str(cifar), input_shape=(32, 32, 3), classes=["cat", "dog"], seed=0)
        model = train_base(data, 0, max_epochs)
        work.mkdir(parents=True, exist_ok=True)
        model.save(path)
    return path


def deploy_request(model: Path, cifar: Path, args: argparse.Namespace, output: Path, *, cache: bool = True) -> Any:
    from edgecompress.pipeline import DeployRequest

    return DeployRequest.build(
        model,
        "rpi4",
        data=str(cifar),
        classes=["cat", "dog"],
        target="local",
        output=output,
        finetune_steps=args.finetune_steps,
        max_eval=args.max_eval,
        warmup=args.warmup,
        runs=args.runs,
        onnx=False,
        cache=cache,
    )


def search(
    model: Path,
    cifar: Path,
    args: argparse.Namespace,
    out: Path,
    *,
    seed: int,
    prior: bool,
    trials: int,
    parallel: int,
    seeds: int = 1,
) -> dict[str, Any]:
    from edgecompress.tune import TuneRequest, tune

    request = TuneRequest(
        deploy_request(model, cifar, args, out / "trials"),
        output=str(out),
        trials=trials,
        seeds=seeds,
        search_seed=seed,
        prior=prior,
        parallel=parallel,
        max_reruns=args.max_reruns,
    )
    started = time.monotonic()
    result = tune(request, progress=lambda line: print(f"  {line}", flush=True))
    report = result.report
    objectives = [o["name"] for o in report["objectives"]]
    measured = [row for row in report["trials"] if row["state"] == "complete"]
    return {
        "tune_dir": str(result.tune_dir),
        "search_seed": seed,
        "prior": prior,
        "parallel": parallel,
        "seconds": round(time.monotonic() - started, 1),
        "searched_s": report["engine"]["searched_s"],
        "trials_per_hour": report["engine"]["trials_per_hour"],
        "counts": report["counts"],
        "points": [[row["figures"][o] for o in objectives] for row in measured],
        "trials": [
            {
                "trial": row["trial"],
                "candidate": row["candidate"],
                "figures": row["figures"],
                "pareto": row["pareto"],
                "passes": row["passes"],
                "over_seeds": row.get("over_seeds"),
            }
            for row in measured
        ],
        "verdict": {k: report["verdict"].get(k) for k in ("recommended_trial", "artifact", "reason")},
        "objectives": objectives,
        "directions": [o["direction"] for o in report["objectives"]],
    }


def hypervolumes(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every search's hypervolume after each trial, on one common scale."""
    from edgecompress.tune.pareto import bounds, hypervolume

    directions = runs[0]["directions"]
    low, high = bounds([run["points"] for run in runs], directions)
    found: dict[str, Any] = {"seeded": [], "unseeded": []}
    for run in runs:
        trace = [hypervolume(run["points"][: i + 1], directions, low, high) for i in range(len(run["points"]))]
        run["hypervolume_trace"] = [round(v, 4) for v in trace]
        found["seeded" if run["prior"] else "unseeded"].append(trace[-1] if trace else 0.0)
    for key in ("seeded", "unseeded"):
        values = found[key]
        found[f"{key}_mean"] = statistics.fmean(values) if values else None
        found[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    found["scale"] = {"low": low.tolist(), "high": high.tolist(), "reference": 1.1}
    return found


def ray_overhead(model: Path, cifar: Path, args: argparse.Namespace, out: Path, repeats: int) -> dict[str, Any]:
    """The same trial build (no cache) in this process and as a Ray task on a warm worker."""
    import dataclasses

    import ray

    from edgecompress.tune import engine
    from edgecompress.tune.worker import build_trial

    base = deploy_request(model, cifar, args, out / "trials", cache=False).with_absolute_paths()
    overrides = {"compression": {"strategy": "cqat", "clusters": 16}}

    def payload(name: str) -> dict[str, Any]:
        request = dataclasses.replace(base, profile_overrides=overrides, run_name=name)
        return {"request": request.to_json(), "tune_dir": str(out)}

    build_trial(payload("warm-in-process"))  # TensorFlow imported, model and data loaded once, as in a warm worker
    local = []
    for i in range(repeats):
        started = time.monotonic()
        outcome = build_trial(payload(f"in-process-{i}"))
        assert "error" not in outcome, outcome
        local.append(time.monotonic() - started)
    started = time.monotonic()
    cluster = engine.start(None, cpus_per_trial=1, local_cpus=1)
    ray_start = time.monotonic() - started
    try:
        ray.get(cluster.submit(payload("warm-ray")))
        remote = []
        for i in range(repeats):
            started = time.monotonic()
            outcome = ray.get(cluster.submit(payload(f"ray-{i}")))
            assert "error" not in outcome, outcome
            remote.append(time.monotonic() - started)
    finally:
        cluster.shutdown()
    median_local, median_ray = statistics.median(local), statistics.median(remote)
    return {
        "in_process_s": [round(v, 2) for v in local],
        "ray_task_s": [round(v, 2) for v in remote],
        "median_in_process_s": round(median_local, 2),
        "median_ray_task_s": round(median_ray, 2),
        "overhead_per_trial_s": round(median_ray - median_local, 2),
        "ray_start_s": round(ray_start, 1),
        "note": "the build only (fine-tune and export, cache off); measuring is the same driver-side code either way",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--search-seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--throughput-trials", type=int, default=8, help="trials of each throughput search (1 and 2 workers)"
    )
    parser.add_argument("--finetune-steps", type=int, default=300)
    parser.add_argument("--max-eval", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument(
        "--seeds", type=int, default=3, help="seeds the Pareto set of the first seeded search is re-run with"
    )
    parser.add_argument("--max-reruns", type=int, default=4)
    parser.add_argument("--max-epochs", type=int, default=20, help="epochs of the reference CNN's own training")
    parser.add_argument("--overhead-repeats", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="a reduced run: 4 trials, 1 search seed, 20 steps, 300 images"
    )
    parser.add_argument(
        "--parts", nargs="+", default=["front", "throughput", "overhead"], choices=["front", "throughput", "overhead"]
    )
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.trials, args.search_seeds, args.throughput_trials = 4, [0], 3
        args.finetune_steps, args.max_eval, args.warmup, args.runs, args.seeds, args.max_reruns = 20, 300, 3, 20, 2, 2
        args.max_epochs, args.overhead_repeats = 3, 2
    output = args.output or ROOT / "results" / ("tune_quick.json" if args.quick else "tune.json")

    from datasets_cache import CACHE_DIR, ensure_cifar10_jpeg

    cifar = ensure_cifar10_jpeg()
    model = reference_model(cifar, CACHE_DIR / "bench-tune", args.max_epochs)
    figures: dict[str, Any] = json.loads(output.read_text()) if output.is_file() and len(args.parts) < 3 else {}
    figures.update(
        settings={k: v for k, v in vars(args).items() if k != "output"},
        model=model.name,
        machine={"cpus": os.cpu_count()},
    )

    def save() -> None:  # after every part: a later part failing keeps the figures measured so far
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(figures, indent=2, default=str) + "\n")

    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        work = Path(tmp)
        os.environ["EDGECOMPRESS_CACHE"] = str(
            work / "cache-searches"
        )  # shared by the searches, fresh for this benchmark
        if "front" in args.parts:
            runs = []
            for seed in args.search_seeds:
                for prior in (True, False):
                    print(
                        f"search seed {seed}, {'TwoNN-seeded' if prior else 'unseeded'}: {args.trials} trials",
                        flush=True,
                    )
                    reruns = args.seeds if (prior and seed == args.search_seeds[0]) else 1
                    runs.append(
                        search(
                            model,
                            cifar,
                            args,
                            work / f"front-{seed}-{int(prior)}",
                            seed=seed,
                            prior=prior,
                            trials=args.trials,
                            parallel=2,
                            seeds=reruns,
                        )
                    )
            figures["hypervolume"] = hypervolumes(runs)
            figures["searches"] = runs
            first = runs[0]
            figures["pareto_front"] = [t for t in first["trials"] if t["pareto"]]
            figures["verdict"] = first["verdict"]
            save()
        if "throughput" in args.parts:
            figures["throughput"] = {}
            for parallel in (1, 2):
                os.environ["EDGECOMPRESS_CACHE"] = str(
                    work / f"cache-throughput-{parallel}"
                )  # nothing reused between them
                print(f"throughput: {parallel} worker(s), {args.throughput_trials} trials", flush=True)
                run = search(
                    model,
                    cifar,
                    args,
                    work / f"throughput-{parallel}",
                    seed=0,
                    prior=True,
                    trials=args.throughput_trials,
                    parallel=parallel,
                )
                figures["throughput"][f"{parallel}_workers"] = {
                    k: run[k] for k in ("searched_s", "trials_per_hour", "counts", "seconds")
                }
            one, two = (figures["throughput"][f"{n}_workers"]["trials_per_hour"] for n in (1, 2))
            figures["throughput"]["speedup_2_over_1"] = round(two / one, 2) if one and two else None
            save()
        if "overhead" in args.parts:
            os.environ["EDGECOMPRESS_CACHE"] = str(work / "cache-overhead")
            print("Ray overhead per trial", flush=True)
            figures["ray_overhead"] = ray_overhead(model, cifar, args, work / "overhead", args.overhead_repeats)
    save()
    print_summary(figures)
    print(f"\nwritten: {output}")


def print_summary(figures: dict[str, Any]) -> None:
    hv = figures.get("hypervolume")
    if hv:
        print(
            f"\nhypervolume after {figures['settings']['trials']} trials ({len(hv['seeded'])} search seeds): "
            f"TwoNN-seeded {hv['seeded_mean']:.3f} ± {hv['seeded_std']:.3f}, unseeded {hv['unseeded_mean']:.3f} ± {hv['unseeded_std']:.3f}"
        )
        print("Pareto front of the first seeded search (mean ± std over seeds where re-run):")
        for trial in figures["pareto_front"]:
            seeds = trial.get("over_seeds") or {}
            shown = ", ".join(
                f"{k} {seeds[k]['mean']:.4g} ± {seeds[k]['std']:.2g}" if k in seeds else f"{k} {v:.4g}"
                for k, v in trial["figures"].items()
                if k in ("accuracy", "size", "latency") and v is not None
            )
            print(f"  {trial['trial']}: {trial['candidate']}: {shown}")
        print(f"verdict: {figures['verdict']['reason']}")
    throughput = figures.get("throughput")
    if throughput:
        for n in (1, 2):
            entry = throughput[f"{n}_workers"]
            print(
                f"{n} worker(s): {entry['trials_per_hour']} measured trials per hour ({entry['counts']['complete']} trials in {entry['searched_s']:.0f} s)"
            )
        print(f"2 workers / 1 worker: {throughput['speedup_2_over_1']}x")
    overhead = figures.get("ray_overhead")
    if overhead:
        print(
            f"Ray overhead per trial build: {overhead['overhead_per_trial_s']:+.2f} s (Ray task {overhead['median_ray_task_s']:.2f} s, "
            f"in-process {overhead['median_in_process_s']:.2f} s); starting a local Ray: {overhead['ray_start_s']:.1f} s"
        )


if __name__ == "__main__":
    main()
