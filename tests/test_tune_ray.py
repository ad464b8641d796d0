"""`edgecompress tune` against a real two-node Ray cluster on 127.0.0.1, as the README runs it.

One search of 4 trials on the tiny digits model (20 fine-tuning steps each): a Ray worker is
killed mid-trial, the driver is interrupted once two trials are measured, and `tune --resume`
finishes the search. The tests then read what that left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ctrl_c import default_sigint
from raycluster import RayCluster, start_cluster

REPO = Path(__file__).resolve().parent.parent
TRIALS = 4
SCENARIO_TIMEOUT_S = 420

# a two-node Ray cluster and four fine-tuned trials, about two minutes: opt-in (pytest -m e2e); the default run
# covers tune on one machine (tests/test_tune.py)
pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    started = start_cluster(tmp_path_factory.mktemp("ray"), REPO)
    yield started
    started.stop()


@dataclass
class Scenario:
    tune_dir: Path
    driver_pids: list[int]
    killed: tuple[str, int] | None
    interrupted_code: int
    before_resume: dict[str, Any]
    resumed: subprocess.CompletedProcess
    log: str
    timings: dict[str, float] = field(default_factory=dict)

    def records(self) -> dict[str, dict[str, Any]]:
        return {r["name"]: r for r in json.loads((self.tune_dir / "trials.json").read_text())["trials"]}

    def report(self) -> dict[str, Any]:
        return json.loads((self.tune_dir / "tune-report.json").read_text())


def _tune_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("edgecompress")), "tune", *args]


def _records(tune_dir: Path) -> dict[str, dict[str, Any]]:
    try:
        return {r["name"]: r for r in json.loads((tune_dir / "trials.json").read_text())["trials"]}
    except (OSError, ValueError, KeyError):
        return {}


def _measured(run_dir: Path) -> dict[str, int]:
    """Each file a measurement writes (the evaluation set, every board's results), with its modification time."""
    files = [run_dir / "eval.npz", *sorted((run_dir / "measurements").glob("*"))]
    return {f.name: f.stat().st_mtime_ns for f in files if f.is_file()}


def _attempts(tune_dir: Path) -> dict[str, list[dict[str, Any]]]:
    found = {}
    for folder in sorted((tune_dir / "workers").glob("*")):
        found[folder.name] = [json.loads(f.read_text()) for f in sorted(folder.glob("attempt-*.json"))]
    return found


@pytest.fixture(scope="module")
def scenario(cluster: RayCluster, tiny_h5: Path, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    output = tmp_path_factory.mktemp("tunes")
    log_file = output / "driver.log"
    command = _tune_command(
        "--profile",
        "rpi4",
        str(tiny_h5),
        "--data",
        "sklearn:digits",
        "--target",
        "local",
        "--trials",
        str(TRIALS),
        "--finetune-steps",
        "20",
        "--max-eval",
        "120",
        "--warmup",
        "2",
        "--runs",
        "5",
        "--seeds",
        "2",
        "--max-reruns",
        "1",
        "--ray-address",
        cluster.address,
        "--output",
        str(output),
    )
    started = time.monotonic()
    with log_file.open("w") as log:
        driver = subprocess.Popen(
            command, env=cluster.env, stdout=log, stderr=subprocess.STDOUT, cwd=output, preexec_fn=default_sigint
        )
    tune_dir: Path | None = None
    killed: tuple[str, int] | None = None
    try:
        while time.monotonic() - started < SCENARIO_TIMEOUT_S and driver.poll() is None:
            found = [p for p in output.glob("*-tune") if p.is_dir()]
            tune_dir = found[0] if found else None
            if tune_dir is not None and killed is None:
                for trial, attempts in _attempts(tune_dir).items():
                    running = [a for a in attempts if "seconds" not in a]
                    if running and time.time() - running[0]["started"] > 2.0:  # mid-trial: its deploy is under way
                        os.kill(running[0]["pid"], signal.SIGKILL)
                        killed = (trial, running[0]["pid"])
                        break
            complete = [r for r in _records(tune_dir).values() if r["state"] == "complete"] if tune_dir else []
            if killed and len(complete) >= 2:
                driver.send_signal(signal.SIGINT)
                break
            time.sleep(0.2)
        code = driver.wait(120)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert tune_dir is not None, log_file.read_text()[-4000:]
    interrupted = time.monotonic()
    records = _records(tune_dir)
    before = {
        "complete": {
            name: _measured(tune_dir / "trials" / name)
            for name, r in records.items()
            if r["state"] == "complete" and (tune_dir / "trials" / name / "report.json").is_file()
        },
        "attempts": {name: len(a) for name, a in _attempts(tune_dir).items()},
    }
    resumed = subprocess.run(
        _tune_command("--resume", str(tune_dir)),
        env=cluster.env,
        capture_output=True,
        text=True,
        cwd=output,
        timeout=SCENARIO_TIMEOUT_S,
    )
    return Scenario(
        tune_dir,
        [driver.pid],
        killed,
        code,
        before,
        resumed,
        log_file.read_text(),
        {"first_s": interrupted - started, "resume_s": time.monotonic() - interrupted},
    )


def _explain(scenario: Scenario) -> str:
    return f"driver:\n{scenario.log[-3000:]}\nresume:\n{scenario.resumed.stdout[-2000:]}\n{scenario.resumed.stderr[-3000:]}"


def test_the_interrupted_tune_stops_with_a_resume_command_and_resume_finishes_it(scenario: Scenario) -> None:
    assert scenario.interrupted_code == 130, _explain(scenario)
    assert f"edgecompress tune --resume {scenario.tune_dir}" in scenario.log.replace("'", "")
    assert scenario.resumed.returncode == 0, _explain(scenario)
    assert json.loads((scenario.tune_dir / "tune.json").read_text())["status"] == "complete"
    searched = [
        r
        for r in scenario.records().values()
        if r["rerun_of"] is None and r["state"] in ("complete", "failed") and not r["same_as"]
    ]
    assert len(searched) == TRIALS, _explain(scenario)


def test_trials_ran_in_ray_worker_processes_on_both_nodes(scenario: Scenario) -> None:
    attempts = [a for trial in _attempts(scenario.tune_dir).values() for a in trial]
    assert attempts, _explain(scenario)
    pids = {a["pid"] for a in attempts}
    assert not pids & {os.getpid(), *scenario.driver_pids}
    nodes = {a["node_id"] for a in attempts}
    assert None not in nodes and len(nodes) == 2, f"trials ran on {nodes}"
    for record in scenario.records().values():
        if record["state"] == "complete" and not record["same_as"]:
            assert record["workers"], record["name"]
            assert all(w["threads"]["intra_op"] == 1 for w in record["workers"])  # 1 CPU per trial: 1 TensorFlow thread
            # no --gpus-per-trial: Ray reserved no GPU and the trial sees none (its --device auto trains on the CPU)
            assert all(w["gpus"] == 0 and w["cuda_visible_devices"] == "" for w in record["workers"])


def test_a_worker_killed_mid_trial_is_retried_or_recorded_failed_and_the_search_goes_on(scenario: Scenario) -> None:
    assert scenario.killed is not None, _explain(scenario)
    trial, pid = scenario.killed
    record = scenario.records()[trial]
    attempts = _attempts(scenario.tune_dir)[trial]
    assert attempts[0]["pid"] == pid and "seconds" not in attempts[0]  # the killed attempt never finished
    if record["state"] == "complete":
        assert len(attempts) >= 2 and attempts[-1]["pid"] != pid  # Ray retried it in another worker process
    else:
        assert record["state"] == "failed" and "worker died" in record["reason"]
    others = [r for r in scenario.records().values() if r["name"] != trial and r["state"] == "complete"]
    assert others  # the other trials were measured all the same


def test_resume_repeats_no_finished_trial(scenario: Scenario) -> None:
    finished = scenario.before_resume["complete"]
    assert finished, _explain(scenario)
    after = _attempts(scenario.tune_dir)
    for name, measured in finished.items():
        # its measurements stay as they were; its report may be re-judged with a seed re-run's reports
        assert measured and _measured(scenario.tune_dir / "trials" / name) == measured, f"{name} was measured again"
        assert len(after[name]) == scenario.before_resume["attempts"][name], f"{name} was built again"
        assert not list((scenario.tune_dir / "trials").glob(f"{name}.*")), f"{name} has a second run folder"


def test_every_trial_is_a_normal_run_folder_and_the_report_ends_in_a_verdict(
    scenario: Scenario, tmp_path: Path
) -> None:
    from edgecompress.cli import main

    report = scenario.report()
    assert report["pareto"] and report["verdict"]["reason"]
    for row in report["trials"]:
        if row["pareto"] and row["state"] == "complete":
            assert "over_seeds" in row and row["over_seeds"]["accuracy"]["n"] >= 1
    rerun = [r for r in scenario.records().values() if r["rerun_of"]]
    assert rerun and all(r["seed"] == 1 for r in rerun)
    markdown = (scenario.tune_dir / "tune-report.md").read_text()
    assert "Pareto front" in markdown and "Dominated trials" in markdown and markdown.rstrip().splitlines()[-1]
    assert markdown.index("## Verdict") > markdown.index("## Pareto front")
    assert (scenario.tune_dir / "figures" / "front-accuracy-size.png").is_file()
    assert (scenario.tune_dir / "figures" / "front-accuracy-latency.png").is_file()
    if report["verdict"]["passed"]:
        manifest = json.loads((scenario.tune_dir / "ship" / "manifest.json").read_text())
        assert manifest["artifact"]["name"] == report["verdict"]["artifact"]
    for row in report[
        "trials"
    ]:  # the driver checks the next candidates while it measures: its lines stay out of this log
        if row["state"] == "complete":
            lines = [
                line
                for line in (Path(row["run_dir"]) / "deploy.log").read_text().splitlines()
                if "Profile rpi4 with" in line
            ]
            assert len(lines) >= 2 and all(
                f"strategy = {row['candidate']['strategy']}," in line + "," for line in lines
            ), row["trial"]
    runs = [row["run_dir"] for row in report["trials"] if row["state"] == "complete"][:2]
    assert main(["report", runs[0], "--json"]) == 0
    assert main(["compare", *runs, "--output", str(tmp_path / "cmp")]) == 0
