"""`edgecompress ship RUN_DIR [--target ssh://...]`: (re)build ship/ from the run's verdict and install it on boards.

Without --target the bundle is only made (or checked against its manifest). With --target
each board gets it at --path (default ~/models/<model name>) with verified hashes and a smoke
inference; the installed model changes only once every check passed.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from edgecompress.cli import options as opt
from edgecompress.cli.console import console, say, setup_logging, stdout_console
from edgecompress.errors import EdgeCompressError

RunDir = Annotated[Path, typer.Argument(help="A run folder written by `edgecompress deploy`.")]
Target = Annotated[
    list[str],
    typer.Option(
        "--target", "-t", help="Board to install on: ssh://user@host[:port] or a target name/file. Repeat for several."
    ),
]
InstallPath = Annotated[
    Optional[str],
    typer.Option(
        "--path",
        help="Install path on the board, e.g. /opt/models/NAME (a symlink to the current release; default ~/models/<model name>).",
    ),
]
Strict = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Refuse a board whose runtime differs from the one the artifact was measured with (default: warn with both versions).",
    ),
]
Rebuild = Annotated[bool, typer.Option("--rebuild", help="Rebuild ship/ from the run's verdict even when it exists.")]


def ship(
    run_dir: RunDir,
    target: Target = [],  # noqa: B006 - typer copies the default; a list option's default must be a list
    path: InstallPath = None,
    strict: Strict = False,
    rebuild: Rebuild = False,
    identity: opt.Identity = None,
    known_hosts: opt.KnownHosts = None,
    ssh_config: opt.SshConfig = None,
    accept_new_host_key: opt.AcceptNewHostKey = False,
    password_env: opt.PasswordEnv = None,
    connect_timeout: opt.ConnectTimeout = None,
    remote_python: opt.RemotePython = None,
    remote_dir: opt.RemoteDir = None,
    as_json: opt.Json = False,
    debug: opt.Debug = False,
) -> None:
    """Bundle the recommended artifact of a run (ship/) and install it on boards, verified."""
    setup_logging(debug)
    from edgecompress.ship.install import install

    bundle = ensure_bundle(run_dir, rebuild=rebuild)
    manifest = json.loads((bundle / "manifest.json").read_text())
    if manifest.get("kind") == "firmware":
        _firmware(bundle, manifest, target, as_json)
        return
    given = locals()  # the SSH options, passed on by name
    ssh = ("identity", "known_hosts", "ssh_config", "accept_new_host_key", "password_env", "connect_timeout")
    options = {**{name: given[name] for name in ssh}, "remote_python": remote_python, "remote_dir": remote_dir}
    options["retries"] = 0
    report = say if not as_json else (lambda message: None)
    installed = []
    for spec in target:
        installed.append(install(bundle, spec, path=path, strict=strict, say=report, **options))
    _show_installed(bundle, manifest, installed, as_json)


def _show_installed(bundle: Path, manifest: dict[str, Any], installed: list[Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "bundle": str(bundle),
                    "artifact": manifest["artifact"],
                    "installed": [i.to_dict() for i in installed],
                },
                default=str,
            )
            + "\n"
        )
        return
    out = stdout_console()
    out.print(f"Bundle: {bundle} ({manifest['artifact']['name']}, {len(manifest['files'])} files, manifest verified)")
    for done in installed:
        out.print(
            f"Installed on {done.target}: {done.path} -> {done.release} (runtime "
            f"{done.runtime.get('name')} {done.runtime.get('version')}; smoke difference {done.max_abs_difference:.2g})"
        )
        for warning in done.warnings:
            console.print(f"Warning: {warning}", soft_wrap=True)


def _firmware(bundle: Path, manifest: dict[str, Any], target: list[str], as_json: bool) -> None:
    """A microcontroller bundle: relinked and checked here; flashing is the board's own tool's job."""
    from edgecompress.ship.firmware import check_firmware

    if target:
        from edgecompress.errors import TargetError

        raise TargetError(
            f"{bundle} is TFLite Micro firmware: a microcontroller is flashed, not installed over SSH "
            f"(--target {target[0]}).",
            "Run `edgecompress ship RUN_DIR` without --target: it checks the firmware and prints the command that "
            "flashes it with the board's own tool.",
        )
    check = check_firmware(bundle)
    if as_json:
        sys.stdout.write(
            json.dumps({"bundle": str(bundle), "artifact": manifest["artifact"], "firmware": check.to_dict()}) + "\n"
        )
        return
    out = stdout_console()
    out.print(f"Bundle: {bundle} ({manifest['artifact']['name']}, {len(manifest['files'])} files, manifest verified)")
    out.print(
        f"Firmware relinked from the bundle's sources: {check.rebuilt_bytes:,} bytes, "
        + ("identical to the measured firmware.bin" if check.identical else "not identical (see below)")
    )
    for warning in check.warnings:
        console.print(f"Warning: {warning}", soft_wrap=True)
    programmer = check.programmer or {}
    if check.flash_command:
        out.print(f"Flash it with {programmer.get('tool')} ({programmer.get('note')}):")
        out.print(f"  cd {shlex.quote(str(check.flash_directory))}", soft_wrap=True)  # lines to copy, never wrapped
        out.print(f"  {check.flash_command}", soft_wrap=True)
    else:
        out.print("Flash firmware/firmware.elf with your board's programmer (the profile names none).")
    out.print(
        "firmware.ld links for the emulated board's memory map: use your board's linker script (firmware/README.md)."
    )


def ensure_bundle(run_dir: Path, *, rebuild: bool = False) -> Path:
    """ship/ for the verdict report.json holds now (the last `deploy` or `report` judged it): built when
    missing, stale or asked for; checked against its manifest. A report from before verdicts is judged first."""
    from edgecompress.reporting.schema import complete_report, load_report
    from edgecompress.ship import SHIP_DIR, build_bundle, load_manifest

    report: dict[str, Any] = load_report(run_dir)
    if not report.get("verdict"):
        report = complete_report(report, run_dir)
    verdict = report.get("verdict") or {}
    if not verdict.get("recommended"):
        raise EdgeCompressError(
            f"{run_dir} has no recommended artifact to ship: {verdict.get('reason', 'no verdict')}",
            "Re-judge it under other rules (edgecompress report RUN_DIR --max-accuracy-drop ...), then run ship again.",
        )
    bundle = run_dir / SHIP_DIR
    manifest_file = bundle / "manifest.json"
    stale = not manifest_file.is_file()
    if not stale:
        try:
            stale = json.loads(manifest_file.read_text()).get("artifact", {}).get("name") != verdict["recommended"]
        except (OSError, ValueError):
            stale = False  # load_manifest explains what is wrong with it
    if rebuild or stale:
        build_bundle(run_dir, report)
    load_manifest(bundle)
    return bundle
