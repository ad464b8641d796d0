"""Several boards in one call: each keeps its own figures, the report adds the spread.

The two "boards" are two target files pointing at the same real sshd with separate work
dirs, which is exactly what two Pis on a bench look like to edgecompress.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from sshd import SshServer, processes_running_in

from edgecompress.errors import TargetError
from edgecompress.targets import MeasureJob, Measurement
from edgecompress.targets.fleet import expand_fleet_specs, fleet_targets, measure_fleet, spread_across

pytestmark = pytest.mark.slow  # deploys, fine-tunes, SSH boards or firmware builds: `pytest -m 'not slow'` skips them


def board_file(folder: Path, name: str, server: SshServer, **fields: str) -> Path:
    values = {
        "host": "127.0.0.1", "port": str(server.port), "user": server.user, "identity": str(server.user_key),
        "remote_dir": str(folder / f"{name}-disk"), "python": sys.executable, **fields,
    }  # fmt: skip
    path = folder / "targets" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(f"{key}: {value}\n" for key, value in values.items()))
    return path


def measured(target: str, median: float, peak: int, accuracy: float) -> Measurement:
    return Measurement(
        target,
        {"latency_ms": {"median": median}, "memory": {"peak_rss_bytes": peak}, "accuracy": {"overall": accuracy}},
    )


def test_spread_gives_min_max_median_std_and_each_board() -> None:
    spread = spread_across(
        [measured("a", 2.0, 100, 0.90), measured("b", 4.0, 300, 0.92), measured("c", 3.0, 200, 0.94)]
    )

    latency = spread["latency_median_ms"]
    assert (latency["n"], latency["min"], latency["max"], latency["median"]) == (3, 2.0, 4.0, 3.0)
    assert latency["std"] == pytest.approx((2 / 3) ** 0.5)
    assert latency["boards"] == {"a": 2.0, "b": 4.0, "c": 3.0}
    assert spread["peak_rss_bytes"]["median"] == 200 and spread["accuracy"]["max"] == 0.94


def test_a_figure_one_board_lacks_leaves_only_that_board_out() -> None:
    no_memory = Measurement(
        "b", {"latency_ms": {"median": 5.0}, "memory": {"peak_rss_bytes": None}, "accuracy": {"overall": 0.9}}
    )

    spread = spread_across([measured("a", 1.0, 100, 0.9), no_memory])

    assert spread["peak_rss_bytes"]["n"] == 1 and spread["latency_median_ms"]["n"] == 2


@pytest.mark.ssh
def test_two_boards_are_measured_in_parallel_with_the_spread(
    sshd: SshServer, tmp_path: Path, tiny_tflite_fp32: Path, eval_npz: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    board_file(tmp_path, "pi-a", sshd)
    board_file(tmp_path, "pi-b", sshd)
    (tmp_path / "targets" / "bench.yaml").write_text("description: two Pis\nfleet: [pi-a, pi-b]\n")
    monkeypatch.chdir(tmp_path)
    seen: dict[str, list[float]] = {}
    lock = threading.Lock()

    def progress(line: str) -> None:
        with lock:
            seen.setdefault(line.split("]")[0].strip("["), []).append(time.monotonic())

    targets = fleet_targets(["bench"], known_hosts=sshd.write_known_hosts(tmp_path / "known_hosts"), progress=progress)
    try:
        result = measure_fleet(targets, MeasureJob(tiny_tflite_fp32, eval_npz, warmup=2, runs=20))
    finally:
        for target in targets:
            target.close()

    assert [b.target for b in result.boards] == ["pi-a", "pi-b"] and result.errors == {}
    for name, measurement in result.measurements.items():
        assert measurement.result["latency_ms"]["runs"] == 20 and measurement.result["accuracy"]["n"] == 360
        assert measurement.device["ssh"]["work_dir"] == str(tmp_path / f"{name}-disk")
    # both boards were busy at the same time
    assert max(times[0] for times in seen.values()) < min(times[-1] for times in seen.values())
    spread = result.spread
    assert spread["accuracy"]["std"] == 0.0  # same model, same data: the boards must agree exactly
    assert (
        spread["latency_median_ms"]["min"]
        <= spread["latency_median_ms"]["median"]
        <= spread["latency_median_ms"]["max"]
    )
    assert set(spread["peak_rss_bytes"]["boards"]) == {"pi-a", "pi-b"}
    json.dumps(result.to_dict())  # goes straight into report.json


@pytest.mark.ssh
def test_a_failing_board_keeps_its_error_and_the_others_their_figures(
    sshd: SshServer, tmp_path: Path, tiny_tflite_fp32: Path, eval_npz: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trusted = sshd.write_known_hosts(tmp_path / "known_hosts")
    board_file(tmp_path, "good", sshd, known_hosts=str(trusted))
    board_file(tmp_path, "stranger", sshd, known_hosts=str(tmp_path / "nobody_known"))
    monkeypatch.chdir(tmp_path)

    targets = fleet_targets(["good", "stranger"])
    try:
        result = measure_fleet(targets, MeasureJob(tiny_tflite_fp32, eval_npz, warmup=1, runs=5))
    finally:
        for target in targets:
            target.close()

    assert list(result.measurements) == ["good"]
    error = result.errors["stranger"]
    assert error.step == "connect" and "SHA256:" in error.problem
    assert result.spread["accuracy"]["n"] == 1
    rows = result.to_dict()["boards"]
    assert rows[1] == {
        "target": "stranger",
        "ok": False,
        "error": {"problem": error.problem, "fix": error.fix, "step": "connect"},
    }


def test_fleet_files_expand_and_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "targets").mkdir()
    (tmp_path / "targets" / "pi-a.yaml").write_text("host: 10.0.0.7\n")
    (tmp_path / "targets" / "lab.yaml").write_text("fleet: [pi-a, pi-a.yaml, 'ssh://pi@10.0.0.9']\n")
    (tmp_path / "targets" / "empty.yaml").write_text("fleet: []\n")
    monkeypatch.chdir(tmp_path)

    assert expand_fleet_specs(["lab", "local"]) == [
        "pi-a",
        str(tmp_path / "targets" / "pi-a.yaml"),
        "ssh://pi@10.0.0.9",
        "local",
    ]
    with pytest.raises(TargetError) as caught:
        expand_fleet_specs(["empty"])
    assert "fleet" in caught.value.problem


def test_two_boards_with_one_name_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TargetError) as caught:
        fleet_targets(["ssh://pi@10.0.0.7", "ssh://pi@10.0.0.7:22"])

    assert "pi@10.0.0.7:22" in caught.value.problem and "name" in caught.value.fix


@pytest.mark.ssh
def test_ctrl_c_stops_every_board(
    sshd: SshServer,
    tmp_path: Path,
    tiny_tflite_fp32: Path,
    eval_npz: Path,
    monkeypatch: pytest.MonkeyPatch,
    ctrl_c: None,
) -> None:
    board_file(tmp_path, "pi-a", sshd)
    board_file(tmp_path, "pi-b", sshd)
    monkeypatch.chdir(tmp_path)
    timing: set[str] = set()
    lock = threading.Lock()

    def press_ctrl_c_once_both_are_timing(line: str) -> None:
        with lock:
            if "timed runs" in line:
                timing.add(line.split("]")[0])
                if len(timing) == 2:
                    os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered while the main thread waits

    targets = fleet_targets(
        ["pi-a", "pi-b"],
        known_hosts=sshd.write_known_hosts(tmp_path / "known_hosts"),
        progress=press_ctrl_c_once_both_are_timing,
    )
    try:
        with pytest.raises(KeyboardInterrupt):
            measure_fleet(targets, MeasureJob(tiny_tflite_fp32, eval_npz, warmup=1, runs=10**7))
    finally:
        for target in targets:
            target.close()

    for name in ("pi-a", "pi-b"):
        board = tmp_path / f"{name}-disk"
        assert processes_running_in(board) == []
        assert list((board / "runs").iterdir()) == []
