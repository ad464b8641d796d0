"""`deploy --gate` on the tiny model, end to end through the command line: exit 0 when an artifact
passes, the gate's own code (10) when none does, and the finished run kept either way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgecompress.cli import main
from edgecompress.errors import GateFailed

pytestmark = pytest.mark.slow  # deploys, fine-tunes, SSH boards or firmware builds: `pytest -m 'not slow'` skips them

FAST = [
    "--profile",
    "rpi4",
    "--data",
    "sklearn:digits",
    "--recipe",
    "ptq-int8",
    "--max-eval",
    "200",
    "--warmup",
    "2",
    "--runs",
    "5",
]


def _run_folder(output: Path) -> Path:
    (folder,) = [p for p in output.iterdir() if p.is_dir()]
    return folder


def test_deploy_gate_passes_and_prints_the_verdict(tiny_h5: Path, tmp_path: Path, capsys) -> None:
    code = main(
        [
            "deploy",
            str(tiny_h5),
            *FAST,
            "--gate",
            "--max-accuracy-drop",
            "1",
            "--max-class-drop",
            "10",
            "--output",
            str(tmp_path / "runs"),
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    run = _run_folder(tmp_path / "runs")
    verdict = json.loads((run / "report.json").read_text())["verdict"]
    assert verdict["recommended"] == "ptq-int8" and f"Recommended: {verdict['recommended']}" in out
    assert verdict["rules_source"] == "profile rpi4, with --max-accuracy-drop 1.0 --max-class-drop 10.0"
    assert (run / "ship" / "manifest.json").is_file()


def test_deploy_gate_fails_with_its_own_exit_code_and_names_the_rule(tiny_h5: Path, tmp_path: Path, capsys) -> None:
    code = main(
        [
            "deploy",
            str(tiny_h5),
            *FAST,
            "--gate",
            "--max-latency-ms",
            "0.000001",
            "--max-class-drop",
            "10",
            "--output",
            str(tmp_path / "runs"),
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == GateFailed.exit_code == 10
    assert "Gate failed" in captured.err and "latency ceiling" in captured.err and "--max-latency-ms" in captured.err
    summary = json.loads(captured.out)  # the JSON summary is still printed for CI to read
    assert (
        summary["verdict"]["passed"] is False and summary["verdict"]["first_failures"]["ptq-int8"]["rule"] == "latency"
    )
    run = _run_folder(tmp_path / "runs")
    assert (
        not run.name.endswith((".failed", ".partial")) and (run / "report.md").is_file()
    )  # the run itself is complete
    assert not (run / "ship").exists()


def test_impossible_rules_stop_deploy_before_any_work(tiny_h5: Path, tmp_path: Path, capsys) -> None:
    code = main(["deploy", str(tiny_h5), *FAST, "--max-class-drop", "-5", "--output", str(tmp_path / "runs")])
    assert code == 2 and "--max-class-drop -5" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
