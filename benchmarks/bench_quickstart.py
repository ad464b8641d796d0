"""The README's quickstart table, measured: `edgecompress quickstart` as a new user runs it.

    python benchmarks/bench_quickstart.py        # writes benchmarks/results/quickstart.json

Trains the example model (`edgecompress example-model`), deploys it with `--profile rpi4 --data
sklearn:digits --target local` in a fresh stage cache, exactly as `quickstart` does, and keeps
the wall time of each step and the headline row of every artifact (sizes, median latency,
peak memory, accuracy) with the board's timing noise.
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

ROW_FIELDS = (
    "file_bytes",
    "gzip_bytes",
    "bitpacked_bytes",
    "smaller_x_bitpacked",
    "latency_median_ms",
    "peak_rss_bytes",
    "accuracy",
    "accuracy_delta_points",
)


def kib(n: float | None) -> str:
    return "—" if n is None else f"{n / 1024:.1f} KiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="rpi4")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "quickstart.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgecompress-quickstart-") as scratch:
        os.environ["EDGECOMPRESS_CACHE"] = str(Path(scratch) / "cache")  # a fresh machine: nothing cached
        import edgecompress
        from edgecompress.example_model import train_example_model

        started = time.perf_counter()
        model = Path(scratch) / "digits_cnn.h5"
        figures = train_example_model(model)
        trained_s = time.perf_counter() - started
        result = edgecompress.deploy(
            model, args.profile, data="sklearn:digits", target="local", output=Path(scratch) / "runs"
        )
        total_s = time.perf_counter() - started
    report = result.report
    rows = [{"artifact": r["artifact"], **{k: r.get(k) for k in ROW_FIELDS}} for r in report["comparison"]]
    document = {
        "benchmark": "quickstart",
        "command": " ".join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0]},
        "edgecompress": edgecompress.__version__,
        "example_model": {"test_accuracy": figures["test_accuracy"], "parameters": figures["parameters"]},
        "seconds": {
            "example_model": round(trained_s, 1),
            "deploy": round(total_s - trained_s, 1),
            "total": round(total_s, 1),
        },
        "eval_n": report["comparison"][0]["eval_n"],
        "timing_noise": (report.get("timing") or [{}])[0].get("noise"),
        "rows": rows,
        "verdict": report["verdict"]["reason"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"example model {trained_s:.0f} s, deploy {total_s - trained_s:.0f} s, total {total_s:.0f} s")
    print(
        "artifact        file       gzip       bit-packed  smaller(bit-packed)  median ms  peak RSS  accuracy  Δ accuracy"
    )
    for row in rows:
        smaller = row["smaller_x_bitpacked"]
        print(
            f"{row['artifact']:<15} {kib(row['file_bytes']):>9}  {kib(row['gzip_bytes']):>9}  {kib(row['bitpacked_bytes']):>10}  "
            f"{f'{smaller:.2f}x' if smaller else '—':<19}  {row['latency_median_ms']:<9.4f}  "
            f"{row['peak_rss_bytes'] / 2**20:.1f} MiB  {100 * row['accuracy']:.2f}%    {row['accuracy_delta_points']:+.2f} pt"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
