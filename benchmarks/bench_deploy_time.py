"""How long a 50,000-image CIFAR-10 deploy takes with the fine-tuning rule of issue 23, per kind of plan.

The 0-255 CIFAR-10 ResNet of benchmarks/resnet_0_255.py (78,714 parameters, trained on all
50,000 training images, kept in the data cache) is deployed with the CIFAR-10 image folders
(50,000 training images) for rpi4 on the local target, each from an empty stage cache: once with the profile's own plan (`strategy: auto`, an int8/CQAT plan for
this model) and once with binarised layers (`--recipe twonn-mixed`: 2-bit significant layers,
binarised insignificant ones, whose step cap is 4x). Fine-tuning trains while it improves and
stops on a plateau (the first one cuts the learning rate, the second stops the stage), so the
phases and the reasons each stage stopped are recorded beside the wall time.

Aim (issue 23, a figure, not an assert): the int8/CQAT deploy within 10 minutes on 2 cores; the
binarised plan's time is reported.

    python benchmarks/bench_deploy_time.py      # writes benchmarks/results/deploy_time.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

PLANS = {"profile's plan (strategy auto)": {}, "binarised (--recipe twonn-mixed)": {"recipe": "twonn-mixed"}}


def main() -> None:
    import edgecompress
    from benchmarks.datasets_cache import ensure_cifar10_jpeg
    from benchmarks.resnet_0_255 import trained_resnet_0_255

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-eval", type=int, default=2000, help="test images measured per artifact")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "deploy_time.json")
    args = parser.parse_args()

    model, cifar = trained_resnet_0_255(seed=args.seed), ensure_cifar10_jpeg()
    results: dict = {
        "benchmark": "wall time of a 50,000-image CIFAR-10 deploy (rpi4 profile, local target) per kind of plan",
        "command": "python benchmarks/bench_deploy_time.py",
        "machine": f"{os.cpu_count()} CPUs, shared; load average at start {os.getloadavg()[0]:.1f}",
        "model": model.name,
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        for index, (label, options) in enumerate(PLANS.items()):
            os.environ["EDGECOMPRESS_CACHE"] = str(Path(scratch) / f"cache-{index}")
            started = time.perf_counter()
            result = edgecompress.deploy(
                model, "rpi4", data=str(cifar), output=Path(scratch) / "runs", max_eval=args.max_eval, **options
            )
            report = result.report
            run = {
                "minutes": round((time.perf_counter() - started) / 60, 2),
                "plan": report["plan"]["strategy"],
                "timings_s": report.get("timings_s"),
                "training": [
                    {k: stage.get(k) for k in ("stage", "steps", "budget_steps", "stopped_by", "wall_seconds")}
                    for stage in (report.get("training") or {}).get("stages", [])
                ],
                "accuracy_pct": {row["artifact"]: round(100 * row["accuracy"], 2) for row in report["comparison"]},
                "recommended": report["verdict"].get("recommended"),
            }
            results["runs"][label] = run
            print(f"{label}: {run['minutes']} min, plan {run['plan']}, training {run['training']}", flush=True)
    first = results["runs"]["profile's plan (strategy auto)"]
    results["aims"] = {
        "int8_cqat_deploy_minutes": {"measured": first["minutes"], "aim": "<= 10", "met": first["minutes"] <= 10},
        "binarised_deploy_minutes": {"measured": results["runs"]["binarised (--recipe twonn-mixed)"]["minutes"]},
    }
    results["load_average_at_end"] = round(os.getloadavg()[0], 1)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(json.dumps(results["aims"], indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
