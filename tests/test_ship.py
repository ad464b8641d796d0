"""`ship/` and `edgecompress ship`: the recommended artifact bundled, then installed on a real SSH board.

The board is this machine behind the test suite's own OpenSSH server (tests/sshd.py), so each
test can look at what landed on the board's disk, and tamper with it between two steps.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from sshd import SshServer

from edgecompress.cli import main
from edgecompress.ship import build_bundle, load_manifest
from edgecompress.ship.bundle import BundleError, sha256_file
from edgecompress.ship.install import Installer, ShipError

pytestmark = pytest.mark.slow  # deploys, fine-tunes, SSH boards or firmware builds: `pytest -m 'not slow'` skips them


@pytest.fixture
def run_copy(run_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the shared deploy run (its folder is read-only for the tests)."""
    return Path(shutil.copytree(run_dir, tmp_path / run_dir.name, symlinks=True))


def test_deploy_leaves_a_bundle_of_the_recommended_artifact(rpi4_run) -> None:
    verdict = rpi4_run.report["verdict"]
    assert verdict["recommended"], verdict["reason"]
    bundle = rpi4_run.run_dir / "ship"
    manifest = load_manifest(bundle)  # every file matches its hash
    assert manifest["artifact"]["name"] == verdict["recommended"]
    artifact = next(a for a in rpi4_run.report["artifacts"] if a["name"] == verdict["recommended"])
    assert sha256_file(bundle / manifest["artifact"]["file"]) == artifact["sha256"]
    assert (bundle / "labels.txt").read_text().split() == [str(d) for d in range(10)]
    spec = json.loads((bundle / "input.json").read_text())
    assert spec["shape"] == [1, 8, 8, 1] and spec["scaling"] == "0-1" and spec["class_order"][0] == "0"
    assert spec["dtype"] in ("float32", "int8")
    expected = manifest["expected"][0]
    row = next(r for r in rpi4_run.report["comparison"] if r["artifact"] == verdict["recommended"])
    assert expected["target"] == "local" and expected["accuracy"] == row["accuracy"]
    assert (
        expected["latency_ms"]["median"] == row["latency_median_ms"] and expected["runtime"]["name"] == "ai_edge_litert"
    )
    assert manifest["versions"]["edgecompress"] and manifest["versions"]["tensorflow"]
    assert manifest["data"]["eval_sha256"] == sha256_file(rpi4_run.run_dir / "eval.npz")
    smoke = manifest["smoke"]
    assert np.load(bundle / smoke["input"]).shape[0] == len(smoke["reference_scores"]) == 8
    assert smoke["tolerance"]["atol"] > 0


def test_a_changed_bundle_is_refused_before_anything_is_sent(run_copy: Path, capsys) -> None:
    with (run_copy / "ship" / "model.tflite").open("r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BundleError, match="model.tflite changed"):
        load_manifest(run_copy / "ship")
    code = main(["ship", str(run_copy), "--target", "ssh://nobody@127.0.0.1:1"])
    assert code == 2 and "does not match its manifest" in capsys.readouterr().err
    assert main(["ship", str(run_copy), "--rebuild"]) == 0  # the run itself still has the measured file
    load_manifest(run_copy / "ship")


def test_no_recommendation_means_no_bundle(run_copy: Path, capsys) -> None:
    assert (
        main(
            [
                "report",
                str(run_copy),
                "-q",
                "--max-accuracy-drop",
                "0",
                "--max-class-drop",
                "0",
                "--max-latency-ms",
                "0.000001",
            ]
        )
        == 0
    )
    report = json.loads((run_copy / "report.json").read_text())
    assert report["verdict"]["recommended"] is None
    assert build_bundle(run_copy, report) is None and not (run_copy / "ship").exists()
    assert main(["ship", str(run_copy)]) == 2
    assert "no recommended artifact" in capsys.readouterr().err


# --------------------------------------------------------------------------- on a board


def _installer(sshd: SshServer, tmp_path: Path, bundle: Path, **kwargs) -> Installer:
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")
    url = sshd.url(python=sys.executable, remote_dir=str(tmp_path / "work"))
    return Installer(
        bundle,
        url,
        path=str(tmp_path / "opt" / "models" / "digits"),
        identity=sshd.user_key,
        known_hosts=known_hosts,
        retries=0,
        **kwargs,
    )


@pytest.mark.ssh
def test_ship_installs_verifies_and_smoke_tests_on_the_board(
    sshd: SshServer, run_copy: Path, tmp_path: Path, capsys
) -> None:
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")
    install_path = tmp_path / "opt" / "models" / "digits"
    args = [
        "ship",
        str(run_copy),
        "--target",
        sshd.url(python=sys.executable, remote_dir=str(tmp_path / "work")),
        "--path",
        str(install_path),
        "--identity",
        str(sshd.user_key),
        "--known-hosts",
        str(known_hosts),
    ]
    assert main(args + ["--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    (done,) = result["installed"]
    manifest = load_manifest(run_copy / "ship")
    assert install_path.is_symlink() and Path(done["release"]) == install_path.resolve()
    for name, entry in manifest["files"].items():  # the files on the board are the manifest's, byte for byte
        assert sha256_file(install_path / name) == entry["sha256"]
    assert (
        done["runtime"]["name"] == "ai_edge_litert"
        and done["max_abs_difference"] <= manifest["smoke"]["tolerance"]["atol"]
    )
    first = install_path.resolve()

    assert main(args) == 0  # again: a new release swapped in atomically, the previous one kept
    assert install_path.resolve() != first and first.is_dir()
    assert "Installed on" in capsys.readouterr().out


@pytest.mark.ssh
def test_a_corrupted_upload_is_detected_and_the_installed_model_is_unchanged(
    sshd: SshServer, run_copy: Path, tmp_path: Path
) -> None:
    installer = _installer(sshd, tmp_path, run_copy / "ship")
    installer.install()
    installed = (tmp_path / "opt" / "models" / "digits").resolve()

    installer = _installer(sshd, tmp_path, run_copy / "ship")
    installer.connect()
    try:
        installer.upload()
        release = installer.stage()
        staged = Path(release) / "model.tflite"
        data = bytearray(staged.read_bytes())
        data[len(data) // 2] ^= 0x01  # one bit flipped on the board's disk after the copy
        staged.write_bytes(bytes(data))
        with pytest.raises(ShipError, match=r"do not match the manifest: model\.tflite"):
            installer.verify(release)
    finally:
        installer.close()
    assert not Path(release).exists()  # the damaged release is gone
    assert (tmp_path / "opt" / "models" / "digits").resolve() == installed  # and the installed one untouched


@pytest.mark.ssh
def test_a_smoke_output_that_differs_from_the_manifest_is_refused(
    sshd: SshServer, run_copy: Path, tmp_path: Path
) -> None:
    manifest_file = run_copy / "ship" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["smoke"]["reference_scores"][0] = [1.0 - v for v in manifest["smoke"]["reference_scores"][0]]
    manifest_file.write_text(json.dumps(manifest))  # the manifest now promises other outputs
    with pytest.raises(ShipError, match="does not reproduce the manifest"):
        _installer(sshd, tmp_path, run_copy / "ship").install()
    assert not (tmp_path / "opt" / "models" / "digits").exists()


@pytest.mark.ssh
def test_a_board_with_another_runtime_is_warned_about_or_refused_with_strict(
    sshd: SshServer, run_copy: Path, tmp_path: Path
) -> None:
    manifest_file = run_copy / "ship" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["expected"][0]["runtime"]["version"] = "0.0.1"  # as if measured on another runtime version
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(ShipError, match=r"measured with ai_edge_litert 0\.0\.1"):
        _installer(sshd, tmp_path, run_copy / "ship", strict=True).install()
    assert not (tmp_path / "opt" / "models" / "digits").exists()
    done = _installer(sshd, tmp_path, run_copy / "ship").install()
    assert any("0.0.1" in warning and "ai_edge_litert" in warning for warning in done.warnings)


@pytest.mark.ssh
def test_an_install_path_that_is_not_ours_is_left_alone(sshd: SshServer, run_copy: Path, tmp_path: Path) -> None:
    path = tmp_path / "opt" / "models" / "digits"
    path.mkdir(parents=True)
    (path / "keep.txt").write_text("the user's own files")
    with pytest.raises(ShipError, match="not an edgecompress install"):
        _installer(sshd, tmp_path, run_copy / "ship").install()
    assert (path / "keep.txt").read_text() == "the user's own files"
    assert list((path.parent / ".digits.releases").iterdir()) == []  # the release it staged was not left behind
    assert os.listdir(path) == ["keep.txt"]
