"""`deploy --target ssh://...` against a real OpenSSH server on 127.0.0.1 (the board is this machine)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from board_pythons import repair, tampering_python
from sshd import SshServer, start_sshd

import edgecompress
from edgecompress.cli import main
from edgecompress.errors import TargetError
from edgecompress.pipeline import resume

pytestmark = [pytest.mark.slow, pytest.mark.ssh]
FAST = {"warmup": 2, "runs": 5, "max_eval": 150, "epochs": 1}
#: the fp32 baseline and the profile's int8 model only: for tests about the board, not about training
NO_TRAINING = {**FAST, "recipe": "ptq-int8"}


def board(server: SshServer, tmp_path: Path) -> str:
    return server.url(python=sys.executable, remote_dir=str(tmp_path / "board"))


def test_deploy_pushes_runs_and_reports_from_the_board(sshd: SshServer, tiny_h5: Path, tmp_path: Path) -> None:
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")
    result = edgecompress.deploy(
        tiny_h5,
        "rpi4",
        target=board(sshd, tmp_path),
        output=tmp_path / "runs",
        identity=sshd.user_key,
        known_hosts=known_hosts,
        **FAST,
    )
    report = result.report
    (target,) = report["targets"]
    assert target["probe"]["runtimes"]["ai_edge_litert"]
    names = {m["target"] for m in report["measurements"]}
    assert names == {target["name"]} and target["name"] != "local"
    assert len(report["measurements"]) == len(report["artifacts"])
    assert not (tmp_path / "board" / "runs").exists() or not any((tmp_path / "board" / "runs").iterdir())


def test_deploy_to_a_board_without_sftp_completes(sshd_without_sftp: SshServer, tiny_h5: Path, tmp_path: Path) -> None:
    known_hosts = sshd_without_sftp.write_known_hosts(tmp_path / "known_hosts")
    result = edgecompress.deploy(
        tiny_h5,
        "rpi4",
        target=board(sshd_without_sftp, tmp_path),
        output=tmp_path / "runs",
        identity=sshd_without_sftp.user_key,
        known_hosts=known_hosts,
        **NO_TRAINING,
    )

    (target,) = result.report["targets"]
    assert target["probe"]["ssh"]["file_transfer"] == "exec"
    assert (result.run_dir / "report.json").exists()
    assert {m["artifact"] for m in result.report["measurements"]} == {a["name"] for a in result.report["artifacts"]}
    cached = {p.name for p in (tmp_path / "board" / "cache").iterdir()}
    assert {f"{a['sha256']}.{a['format']}" for a in result.report["artifacts"]} <= cached
    assert not [name for name in cached if name.endswith(".part")]


def test_a_fleet_of_local_and_a_board_reports_the_spread(sshd: SshServer, tiny_h5: Path, tmp_path: Path) -> None:
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")
    result = edgecompress.deploy(
        tiny_h5,
        "rpi4",
        target=["local", board(sshd, tmp_path)],
        output=tmp_path / "runs",
        identity=sshd.user_key,
        known_hosts=known_hosts,
        **FAST,
    )
    spread = result.report["fleet_spread"]["baseline-fp32"]
    assert len(spread["targets"]) == 2
    assert spread["accuracy"]["min"] == spread["accuracy"]["max"]  # same model, same data, same runtime


def test_an_unknown_board_is_refused_with_its_fingerprint_and_no_run_folder(
    sshd: SshServer, tiny_h5: Path, tmp_path: Path, capsys
) -> None:
    code = main(
        [
            "deploy",
            "--data",
            "sklearn:digits",
            "--profile",
            "rpi4",
            str(tiny_h5),
            "--target",
            board(sshd, tmp_path),
            "--identity",
            str(sshd.user_key),
            "--known-hosts",
            str(tmp_path / "empty_known_hosts"),
            "--output",
            str(tmp_path / "runs"),
        ]
    )
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "SHA256:" in err and "--accept-new-host-key" in err
    assert not (tmp_path / "runs").exists()


def test_a_run_cut_off_by_the_board_resumes_without_redoing_finished_work(tiny_h5: Path, tmp_path: Path) -> None:
    server = start_sshd(tmp_path / "sshd")
    known_hosts = server.write_known_hosts(tmp_path / "known_hosts")

    def board_dies_before_the_second_artifact(message: str) -> None:
        if message.startswith("Measuring ptq-int8"):
            server.kill()

    try:
        with pytest.raises(TargetError) as caught:
            edgecompress.deploy(
                tiny_h5,
                "rpi4",
                target=board(server, tmp_path),
                output=tmp_path / "runs",
                identity=server.user_key,
                known_hosts=known_hosts,
                retries=0,
                progress=board_dies_before_the_second_artifact,
                **FAST,
            )
        (failed,) = list((tmp_path / "runs").iterdir())
        assert failed.name.endswith(".failed") and not (failed / "report.json").exists()
        assert "--resume" in caught.value.fix
        kept = sorted(p.name for p in (failed / "measurements").glob("baseline-fp32@*.json"))
        assert kept, "the measurement finished before the board died is kept"
        stamp = {p: p.stat().st_mtime_ns for p in (failed / "measurements").glob("baseline-fp32@*.json")}

        server.start()
        result = resume(failed)
        assert result.run_dir.name == failed.name.removesuffix(".failed")
        assert (result.run_dir / "report.json").exists()
        for path, mtime in stamp.items():
            assert (result.run_dir / "measurements" / path.name).stat().st_mtime_ns == mtime  # not measured again
        assert {m["artifact"] for m in result.report["measurements"]} == {a["name"] for a in result.report["artifacts"]}
    finally:
        server.kill()


def test_a_board_sending_impossible_figures_fails_the_run_and_resumes_once_fixed(
    sshd: SshServer, tiny_h5: Path, tmp_path: Path
) -> None:
    """The board's python runs the real runner, then claims a peak memory larger than any board has."""
    python = tampering_python(tmp_path / "board-python", 'doc["memory"]["peak_rss_bytes"] = 2 ** 50')
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")
    url = sshd.url(python=str(python), remote_dir=str(tmp_path / "board"))

    with pytest.raises(TargetError) as caught:
        edgecompress.deploy(
            tiny_h5,
            "rpi4",
            target=url,
            output=tmp_path / "runs",
            identity=sshd.user_key,
            known_hosts=known_hosts,
            **NO_TRAINING,
        )

    board_name = f"{sshd.user}@127.0.0.1:{sshd.port}"
    problem = caught.value.problem
    assert f"[{board_name}] check failed" in problem
    assert "memory.peak_rss_bytes is 1024.0 TiB, more than the board's RAM" in problem
    (failed,) = list((tmp_path / "runs").iterdir())
    assert failed.name.endswith(".failed") and "--resume" in caught.value.fix
    assert not (failed / "report.json").exists()
    assert not (failed / "measurements").exists() or not list((failed / "measurements").iterdir())  # nothing kept

    repair(python)
    result = resume(failed)

    assert (result.run_dir / "report.json").exists()
    ram = result.report["targets"][0]["probe"]["memory"]["total_bytes"]
    assert {m["artifact"] for m in result.report["measurements"]} == {a["name"] for a in result.report["artifacts"]}
    assert all(0 < m["memory"]["peak_rss_bytes"] <= ram for m in result.report["measurements"])
