"""Where the `edgecompress` command writes, and how: nothing from outside is read as markup.

Paths, class names, layer names and messages from TensorFlow or a board can contain text
such as `[/x]` or `[bold]`; Rich would read it as markup and crash or swallow it. Every
console here therefore has markup off, and edgecompress's own styling is applied with
`Text` objects, never with markup in strings.
"""

from __future__ import annotations

import logging
import os
import sys

from rich.console import Console
from rich.text import Text

from edgecompress._tf import TerminalStream
from edgecompress.errors import EdgeCompressError


def plain_console(*, stderr: bool = False, file: object | None = None, width: int | None = None) -> Console:
    """A console that prints every string literally."""
    stream = file if file is not None else TerminalStream(2 if stderr else 1)
    return Console(file=stream, markup=False, highlight=False, width=width)  # type: ignore[arg-type]


def stdout_console() -> Console:
    """Tables and summaries; piped output is not squeezed into 80 columns.

    Built per call so output goes to whatever stdout is now (test runners swap it)."""
    return plain_console(width=None if sys.stdout.isatty() else 160)


#: edgecompress's own messages; they stay audible while TensorFlow's native chatter is silenced
console = plain_console(stderr=True)


def bullet(message: str) -> Text:
    return Text.assemble(("•", "cyan"), " ", message)


def say(message: str) -> None:
    console.print(bullet(message), soft_wrap=True)


def print_error(error: EdgeCompressError) -> None:
    """One paragraph: what is wrong, then what to do. Soft-wrapped (the terminal folds long
    lines), so a path or a command in it can be copied whole, even from a CI log."""
    console.print(Text.assemble(("Error:", "bold red"), " ", error.problem), soft_wrap=True)
    if error.fix:
        console.print(Text.assemble(("What to do:", "bold"), " ", error.fix), soft_wrap=True)


def setup_logging(debug: bool) -> None:
    """Console shows warnings (everything with --debug); each run's deploy.log gets INFO and up."""
    if debug:
        os.environ["EDGECOMPRESS_DEBUG"] = "1"
    handler = logging.StreamHandler()
    handler.setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.basicConfig(
        handlers=[handler],
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("edgecompress").setLevel(logging.DEBUG if debug else logging.INFO)
