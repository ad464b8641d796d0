"""Benchmark: the verdict of a finished run under several rule sets, and what judging costs.

    python benchmarks/bench_decision.py RUN_DIR [--output benchmarks/results/decision.json]

RUN_DIR is any finished `edgecompress deploy` folder (the issue-11 acceptance run is
`edgecompress deploy --profile rpi4 cat_dog_cnn.h5 --data CIFAR --classes cat,dog --gate
--max-accuracy-drop 1`, see tests/test_e2e_decision.py). For each rule set the script prints
the recommended artifact (or the closest failure), the McNemar p-value and latency interval
behind it, and the seconds a re-judge takes (statistics included, nothing re-measured).
Timing figures measured while other work loads the machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgecompress.decision.judging import Judging, judge_report  # noqa: E402
from edgecompress.reporting.run_files import RunFiles  # noqa: E402
from edgecompress.reporting.schema import complete_report, load_report  # noqa: E402

RULE_SETS: dict[str, dict[str, Any]] = {
    "run's own rules": {},
    "strict accuracy (0.1 pt)": {"max_accuracy_drop_points": 0.1},
    "prefer latency": {"prefer": "latency"},
    "prefer accuracy": {"prefer": "accuracy"},
    "impossible latency (1 ns)": {"max_latency_ms": 0.000001},
}


def judge(run_dir: Path) -> dict[str, Any]:
    report = complete_report(load_report(run_dir), run_dir)
    found = {}
    for title, overrides in RULE_SETS.items():
        start = time.perf_counter()
        verdict = judge_report(report, RunFiles(run_dir), Judging(overrides))
        seconds = time.perf_counter() - start
        winner = verdict["recommended"]
        scope = (verdict.get("targets") or [{}])[0]
        entry = next((e for e in scope.get("artifacts", []) if e["artifact"] == winner), None)
        evidence = (entry or {}).get("evidence") or {}
        found[title] = {
            "rules": overrides,
            "recommended": winner,
            "reason": verdict["reason"],
            "closest": verdict.get("closest"),
            "mcnemar_p": (evidence.get("accuracy_test") or {}).get("p_value"),
            "latency_interval_ms": evidence.get("latency_interval"),
            "judge_seconds": round(seconds, 3),
        }
        print(f"{title}: {winner or 'nothing passes'} ({seconds:.2f} s)\n  {verdict['reason']}")
    return {
        "run": run_dir.name,
        "model": Path(report["model"]["path"]).name,
        "profile": report["profile"]["name"],
        "eval_n": next((r.get("eval_n") for r in report["comparison"] if r.get("eval_n")), None),
        "verdicts": found,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "decision.json")
    args = parser.parse_args()
    result = judge(args.run_dir)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
