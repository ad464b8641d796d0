"""The issue-11 acceptance run: `deploy --gate --max-accuracy-drop 1` on a CIFAR-10 model trained outside
edgecompress, its verdict, the gate's exit code, and `ship` of its bundle to an SSH board.
Long: `pytest -m e2e tests/test_e2e_decision.py`. The verdict it printed is kept in the test log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from sshd import SshServer
from test_e2e_cifar import cifar_root, foreign_model  # noqa: F401 - fixtures: the CIFAR data and a cat/dog CNN

from edgecompress.cli import main
from edgecompress.errors import GateFailed
from edgecompress.ship import load_manifest

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.ssh]


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
    assert code in (0, GateFailed.exit_code)
    (run_dir,) = list(runs.iterdir())
    verdict = json.loads((run_dir / "report.json").read_text())["verdict"]
    assert (code == 0) == bool(verdict["recommended"])
    assert "Verdict:" in captured.out and verdict["reason"][:60] in captured.out.replace("\n", " ") or code == 10
    if code == GateFailed.exit_code:
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
