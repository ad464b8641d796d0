"""`edgecompress micro setup|doctor`: get the TFLite Micro sources the firmware is built from, offline.

Mounted by the main CLI as `edgecompress micro`. Errors are EdgeCompressError (ToolError),
printed by the main CLI as one paragraph with the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.text import Text

from edgecompress.cli.console import stdout_console

app = typer.Typer(
    help="Prepare and check what microcontroller firmware builds need: TFLM sources, Arm toolchain, QEMU.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.command()
def setup(
    tflm_source: Optional[Path] = typer.Option(
        None,
        "--tflm-source",
        help="Your tflite-micro checkout, or a `git archive` .tar.gz of one (default: the archive among --third-party).",
    ),
    third_party: Optional[Path] = typer.Option(
        None,
        "--third-party",
        help="Folder with the pinned third-party archives (default: $EDGECOMPRESS_THIRD_PARTY_DIR, else ../shared/third-party next to the repository).",
    ),
    force: bool = typer.Option(False, "--force", help="Prepare again even if this revision is already in the cache."),
) -> None:
    """Prepare a TFLM tree for offline firmware builds, cached by revision (nothing is downloaded)."""
    from edgecompress.micro.tflm_tree import prepare_tree

    tree = prepare_tree(tflm_source, third_party, force=force)
    out = stdout_console()
    out.print(f"TFLM {tree.revision} ready in {tree.root}")
    for library, revision in tree.pins.items():
        out.print(f"  {library} {revision}")
    doctor(tflm_dir=None)


@app.command()
def doctor(
    tflm_dir: Optional[Path] = typer.Option(None, "--tflm-dir", help="A prepared tflite-micro tree to check."),
) -> None:
    """Say which of the firmware's tools are there, and how to get the missing ones."""
    from edgecompress.errors import ToolError
    from edgecompress.micro import tflm_tree, toolchain

    checks = []
    try:
        tree = tflm_tree.find_tree(tflm_dir)
        checks.append(("TFLM sources", True, f"{tree.revision} at {tree.root} ({tree.origin})"))
    except ToolError as error:
        checks.append(("TFLM sources", False, f"{error.problem} {error.fix}"))
    try:
        toolchain.arm_tool("g++")
        checks.append(("Arm toolchain", True, toolchain.gcc_version()))
    except ToolError as error:
        checks.append(("Arm toolchain", False, f"{error.problem} {error.fix}"))
    try:
        toolchain.qemu_system()
        checks.append(("qemu-system-arm", True, toolchain.qemu_version_text()))
    except ToolError as error:
        checks.append(("qemu-system-arm", False, f"{error.problem} {error.fix}"))
    out = stdout_console()
    for name, ok, detail in checks:
        out.print(Text.assemble(("ok", "green") if ok else ("missing", "red"), f" {name}: {detail}"))
    if not all(ok for _, ok, _ in checks):
        raise typer.Exit(code=ToolError.exit_code)
