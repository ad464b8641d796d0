"""`edgecompress ship RUN_DIR [--target ssh://...]`: (re)build ship/ from the run's verdict and install it on boards.

Without --target the bundle is only made (or checked against its manifest). With --target
each board gets it at --path (default ~/models/<model name>) with verified hashes and a smoke
inference; the installed model changes only once every check passed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from edgecompress.cli.console import console, say, setup_logging, stdout_console
from edgecompress.errors import EdgeCompressError


def ship(
    run_dir: Path = typer.Argument(..., help="A run folder written by `edgecompress deploy`."),
    target: list[str] = typer.Option(
        [],
        "--target",
        "-t",
        help="Board to install on: ssh://user@host[:port] or a target name/file. Repeat for several.",
    ),
    path: Optional[str] = typer.Option(
        None,
        "--path",
        help="Install path on the board, e.g. /opt/models/NAME (a symlink to the current release; default ~/models/<model name>).",
    ),
    strict: bool = typer.Option(
        False,
        "--strict",
        help="Refuse a board whose runtime differs from the one the artifact was measured with (default: warn with both versions).",
    ),
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild ship/ from the run's verdict even when it exists."),
    identity: Optional[Path] = typer.Option(None, help="SSH private key file."),
    known_hosts: Optional[Path] = typer.Option(
        None, help="known_hosts file to verify boards against (default ~/.ssh/known_hosts)."
    ),
    accept_new_host_key: bool = typer.Option(
        False, "--accept-new-host-key", help="Trust and record the host key of a board seen for the first time."
    ),
    password_env: Optional[str] = typer.Option(None, help="Name of an environment variable holding the SSH password."),
    connect_timeout: Optional[float] = typer.Option(None, help="Seconds to wait for a board to answer (default 10)."),
    remote_python: Optional[str] = typer.Option(
        None, help="Python on the board (default: python3, or the target file's)."
    ),
    remote_dir: Optional[str] = typer.Option(
        None, help="Work folder on the board for uploads (default ~/.edgecompress)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a machine-readable JSON result on stdout."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Bundle the recommended artifact of a run (ship/) and install it on boards, verified."""
    setup_logging(debug)
    from edgecompress.ship.install import install

    bundle = ensure_bundle(run_dir, rebuild=rebuild)
    manifest = json.loads((bundle / "manifest.json").read_text())
    options = {
        "identity": identity,
        "known_hosts": known_hosts,
        "accept_new_host_key": accept_new_host_key,
        "password_env": password_env,
        "connect_timeout": connect_timeout,
        "remote_python": remote_python,
        "remote_dir": remote_dir,
        "retries": 0,
    }
    report = say if not as_json else (lambda message: None)
    installed = []
    for spec in target:
        installed.append(install(bundle, spec, path=path, strict=strict, say=report, **options))
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
