"""The issue-11 acceptance run: `deploy --gate --max-accuracy-drop 1` on a CIFAR-10 model trained outside
edgecompress, its verdict, the gate's exit code, and `ship` of its bundle to an SSH board.
Long: `pytest -m e2e tests/test_e2e_decision.py`. The verdict it printed is kept in the test log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from sshd import SshServer
from test_e2e_cifar import cifar_root, foreign_model  # noqa: F401 - fixtures: the CIFAR data and a cat/dog CNN

from edgecompress.cli import main
from edgecompress.errors import GateFailed
from edgecompress.ship import load_manifest

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.ssh]


def passing_by_the_data(run_dir: Path, report: dict, *, max_drop: float, max_class_drop: float) -> set[str]:
    """The candidates the rules let through, worked out here from the raw figures: each artifact's per-image
    predictions against the labels in eval.npz, and the budget. No verdict code is used."""
    labels = np.load(run_dir / "eval.npz")["y"]

    def recalls(name: str) -> tuple[float, np.ndarray]:
        result = json.loads((run_dir / "measurements" / f"{name}@local.json").read_text())["result"]
        right = np.asarray(result["accuracy"]["predictions"]) == labels
        return 100 * right.mean(), np.array([100 * right[labels == c].mean() for c in np.unique(labels)])

    base_accuracy, base_recalls = recalls(report["baseline"])
    passing = set()
    for artifact in report["artifacts"]:
        if artifact["name"] == report["baseline"]:
            continue
        accuracy, per_class = recalls(artifact["name"])
        if (
            base_accuracy - accuracy <= max_drop
            and (base_recalls - per_class).max() <= max_class_drop
            and artifact["fits_budget"] is not False
        ):
            passing.add(artifact["name"])
    return passing


def test_cifar_deploy_gate_verdict_and_ship(
    cifar_root: Path, foreign_model: Path, sshd: SshServer, tmp_path: Path, capsys
) -> None:
    runs = tmp_path / "runs"
    code = main(
        [
            "deploy",
            "--profile",
            "rpi4",
            str(foreign_model),
            "--data",
            str(cifar_root),
            "--classes",
            "cat,dog",
            "--gate",
            "--max-accuracy-drop",
            "1",
            "--output",
            str(runs),
        ]
    )
    captured = capsys.readouterr()
    print(captured.out[-3000:], captured.err[-3000:], sep="\n")  # the verdict as printed, for the record
    (run_dir,) = list(runs.iterdir())
    report = json.loads((run_dir / "report.json").read_text())
    verdict = report["verdict"]
    passing = passing_by_the_data(run_dir, report, max_drop=1.0, max_class_drop=5.0)
    (target,) = verdict["targets"]
    assert {e["artifact"] for e in target["artifacts"] if e["passed"] and e["role"] == "candidate"} == passing
    assert code == (0 if passing else GateFailed.exit_code)
    assert (verdict["recommended"] in passing) if passing else (verdict["recommended"] is None)
    if code == 0:
        assert "Verdict:" in captured.out and verdict["reason"][:60] in captured.out.replace("\n", " ")
    else:
        assert "Gate failed" in captured.err and verdict["closest"]["title"] in captured.err
        assert (
            main(["report", str(run_dir), "-q", "--gate", "--max-accuracy-drop", "100", "--max-class-drop", "100"]) == 0
        )
        assert main(["ship", str(run_dir), "--rebuild"]) == 0
    assert main(["report", str(run_dir), "-q", "--gate", "--max-latency-ms", "0.000001"]) == GateFailed.exit_code
    assert main(["report", str(run_dir), "-q", "--gate", "--max-accuracy-drop", "100", "--max-class-drop", "100"]) == 0

    manifest = load_manifest(run_dir / "ship")
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")
    install_path = tmp_path / "opt" / "models" / "cifar"
    assert (
        main(
            [
                "ship",
                str(run_dir),
                "--target",
                sshd.url(python=sys.executable, remote_dir=str(tmp_path / "work")),
                "--path",
                str(install_path),
                "--identity",
                str(sshd.user_key),
                "--known-hosts",
                str(known_hosts),
            ]
        )
        == 0
    )
    print(capsys.readouterr().out)
    assert (install_path / manifest["artifact"]["file"]).is_file() and install_path.is_symlink()
