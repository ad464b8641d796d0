"""The same artifacts in a browser and in the host's runner: Chromium (headless) as the phone.

    python benchmarks/bench_phone.py                 # digits example model, ptq-int8 recipe
    python benchmarks/bench_phone.py --runs 200 --max-eval 400

Trains the README's digits example model, then runs `edgecompress deploy --profile android-phone
--recipe ptq-int8 --target phone --target local` with Debian's Chromium opening the printed link
(Playwright; --listen 127.0.0.1, so the page is cross-origin isolated and gets WebAssembly
threads). For each .tflite it prints the page's latency (LiteRT.js in the browser) beside the
host runner's (LiteRT with XNNPACK, natively), both accuracies and whether every prediction is
the same, and writes benchmarks/results/phone_browser.json. The "phone" here is this machine's
browser: the figures say how a browser's runtime compares with a native one on one CPU, not how
fast any phone is. Needs `edgecompress phone setup` and `chromium`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def run_deploy(model: Path, out: Path, runs: int, max_eval: int) -> Path:
    """The deploy, with Chromium as the phone; returns the run folder."""
    from playwright.sync_api import sync_playwright

    command = [
        sys.executable, "-m", "edgecompress", "deploy", str(model), "--profile", "android-phone",
        "--data", "sklearn:digits", "--recipe", "ptq-int8", "--max-eval", str(max_eval), "--runs", str(runs),
        "--target", "phone", "--target", "local", "--listen", "127.0.0.1:0", "--wait", "120", "-o", str(out),
    ]  # fmt: skip
    env = {**os.environ, "COLUMNS": "200"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert process.stdout is not None
    lines: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for line in process.stdout:
            lines.append(line)
            found = re.search(r"(http://127\.0\.0\.1:\d+/\S+/)", line)
            if found:
                browser.new_page().goto(found.group(1))
                break
        lines += list(process.stdout)
        process.wait()
        browser.close()
    if process.returncode != 0:
        raise SystemExit("".join(lines))
    return Path(re.findall(r"Run folder: (\S+)", "".join(lines))[-1])


def figures(run_dir: Path) -> dict:
    report = json.loads((run_dir / "report.json").read_text())
    by_key = {(m["artifact"], m["target"]): m for m in report["measurements"]}
    rows = []
    for artifact in (a["name"] for a in report["artifacts"] if a["path"].endswith(".tflite")):
        page, host = by_key[(artifact, "phone")], by_key[(artifact, "local")]

        def predictions(target: str, name: str = artifact) -> list[int]:
            saved = json.loads((run_dir / "measurements" / f"{name}@{target}.json").read_text())
            return saved["result"]["accuracy"]["predictions"]

        rows.append(
            {
                "artifact": artifact,
                "browser_label": page["execution"]["note"],
                "browser_median_ms": page["latency_ms"]["median"],
                "browser_inferences_per_sample": page["execution"]["inferences_per_sample"],
                "host_median_ms": host["latency_ms"]["median"],
                "host_runtime": f"{host['runtime']['name']} {host['runtime']['version']}",
                "threads": {"browser": page["threads"], "host": host["threads"]},
                "browser_slower_x": round(page["latency_ms"]["median"] / host["latency_ms"]["median"], 2),
                "accuracy": {"browser": page["accuracy"]["overall"], "host": host["accuracy"]["overall"]},
                "identical_predictions": predictions("phone") == predictions("local"),
                "eval_n": page["accuracy"]["n"],
            }
        )
    browser = next(t for t in report["targets"] if t["name"] == "phone")["probe"]["browser"]
    return {"browser": browser, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--max-eval", type=int, default=360)
    args = parser.parse_args()
    from edgecompress.example_model import train_example_model

    with tempfile.TemporaryDirectory(prefix="bench-phone-") as scratch:
        model = Path(scratch) / "digits_cnn.h5"
        train_example_model(model, epochs=8)
        result = figures(run_deploy(model, Path(scratch) / "runs", args.runs, args.max_eval))
    result["settings"] = {
        "runs": args.runs,
        "max_eval": args.max_eval,
        "profile": "android-phone",
        "recipe": "ptq-int8",
    }
    for row in result["rows"]:
        print(
            f"{row['artifact']:>14}: browser {row['browser_median_ms']:.4f} ms ({row['browser_label']}), "
            f"host {row['host_median_ms']:.4f} ms ({row['host_runtime']}), {row['browser_slower_x']}x; "
            f"accuracy {row['accuracy']['browser']:.4f} vs {row['accuracy']['host']:.4f}, "
            f"identical predictions: {row['identical_predictions']} (n={row['eval_n']})"
        )
    out = ROOT / "results" / "phone_browser.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
