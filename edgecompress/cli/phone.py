"""`edgecompress phone setup`: fetch the phone page's runtimes (LiteRT.js, ONNX Runtime Web) once.

Mounted by the main CLI as `edgecompress phone`. Errors are EdgeCompressError (ToolError),
printed by the main CLI as one paragraph with the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgecompress.cli.console import print_line, stdout_console

app = typer.Typer(
    help="Prepare what `--target phone` serves to the browser: LiteRT.js and ONNX Runtime Web from npm.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.command()
def setup(
    source: Optional[Path] = typer.Option(
        None,
        "--from",
        help="A folder holding the packages' npm tarballs (as `npm pack` writes them) instead of fetching with npm.",
        show_default=False,
    ),
    force: bool = typer.Option(False, "--force", help="Prepare again even if these versions are already cached."),
) -> None:
    """Fetch the pinned npm packages into edgecompress's cache; deploys with --target phone are offline afterwards."""
    from edgecompress.targets.phone_assets import PACKAGES
    from edgecompress.targets.phone_assets import setup as prepare

    folder = prepare(source, force=force)
    out = stdout_console()
    for package in PACKAGES:
        print_line(f"{package.spec} ready", target=out)
    print_line(f"Phone page assets: {folder}", target=out)
