"""Where the `edgecompress` command writes, and how: one console owns the terminal, nothing from
outside is read as markup, and nothing is wider than the terminal.

Paths, class names, layer names and messages from TensorFlow or a board can contain text
such as `[/x]` or `[bold]`; Rich would read it as markup and crash or swallow it. Every
console here therefore has markup off, and edgecompress's own styling is applied with
`Text` objects, never with markup in strings.

Width: a terminal's own width; piped or redirected, $COLUMNS when set, else 100 columns (a CI
log is read in a browser, not squeezed into 80). In a terminal long messages wrap at word
boundaries under their bullet; in a log they stay one line each, so grep finds them whole.

Logging goes through the same console as the progress bars (a log line printed beside a live
bar would tear it): edgecompress's own warnings are shown, other libraries' records (TensorFlow,
Keras, Python warnings) only with --debug; every run's deploy.log has them all.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from edgecompress._tf import TerminalStream
from edgecompress.errors import EdgeCompressError

#: the width of a console that is not a terminal, unless $COLUMNS says otherwise
PIPED_WIDTH = 100


def output_width(stream: Any) -> int | None:
    """None (the terminal decides, and follows resizes) for a terminal; else $COLUMNS or PIPED_WIDTH."""
    try:
        if stream.isatty():
            return None
    except (AttributeError, OSError, ValueError):
        pass
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) >= 20 else PIPED_WIDTH


def plain_console(*, stderr: bool = False, file: object | None = None, width: int | None = None) -> Console:
    """A console that prints every string literally, as wide as `output_width` allows."""
    stream = file if file is not None else TerminalStream(2 if stderr else 1)
    if width is None and file is None:
        width = output_width(stream)
    return Console(file=stream, markup=False, highlight=False, width=width)  # type: ignore[arg-type]


def stdout_console() -> Console:
    """Tables and summaries on stdout. Built per call so output goes to whatever stdout is now
    (test runners swap it)."""
    return plain_console()


#: edgecompress's own messages and progress; they stay audible while TensorFlow's native chatter is silenced
console = plain_console(stderr=True)


def is_terminal(target: Console | None = None) -> bool:
    return (target or console).is_terminal


def bullet(message: str, *, mark: str = "•", style: str = "cyan", wrap: bool = True) -> RenderableType:
    """'• message': in a terminal the message wraps under itself, never under the bullet."""
    if not wrap:
        return Text.assemble((mark, style), " ", message)
    grid = Table.grid(padding=(0, 1, 0, 0))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(Text(mark, style=style), Text(message))
    return grid


def say(message: str, *, target: Console | None = None) -> None:
    """One status line on stderr (wrapped to a terminal, whole in a log)."""
    out = target or console
    wrap = out.is_terminal
    out.print(bullet(message, wrap=wrap), soft_wrap=not wrap)


def print_line(text: str | Text, *, target: Console | None = None) -> None:
    """A line that may hold a path: wrapped to a terminal, whole in a log (so it can be copied)."""
    out = target or stdout_console()
    out.print(text, soft_wrap=not out.is_terminal)


def print_error(error: EdgeCompressError) -> None:
    """One paragraph: what is wrong, then what to do. In a terminal it wraps at words (a path or a
    command shorter than the line stays whole); in a log each part is one line, so it can be copied."""
    wrap = console.is_terminal
    console.print(Text.assemble(("Error:", "bold red"), " ", error.problem), soft_wrap=not wrap)
    if error.fix:
        console.print(Text.assemble(("What to do:", "bold"), " ", error.fix), soft_wrap=not wrap)


class ConsoleLogHandler(logging.Handler):
    """Log records printed through the console that owns the terminal (above any live progress bar).

    edgecompress's own records at WARNING and above are shown; records of other libraries only with
    --debug (the run's deploy.log has them all)."""

    def __init__(self, debug: bool) -> None:
        super().__init__(logging.DEBUG if debug else logging.WARNING)
        self.debug = debug

    def emit(self, record: logging.LogRecord) -> None:
        if not self.debug and not record.name.startswith("edgecompress"):
            return
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record must not stop a run
            message = str(record.msg)
        style = (
            "bold red"
            if record.levelno >= logging.ERROR
            else ("yellow" if record.levelno >= logging.WARNING else "dim")
        )
        label = record.levelname.capitalize() + ":"
        shown = f"{message} ({record.name})" if self.debug else message
        wrap = console.is_terminal
        console.print(bullet(shown, mark=label, style=style, wrap=wrap), soft_wrap=not wrap)


def setup_logging(debug: bool) -> None:
    """Console shows edgecompress's warnings (everything with --debug); each run's deploy.log gets
    INFO and up, TensorFlow's and Python's warnings included (`logging.captureWarnings`)."""
    if debug:
        os.environ["EDGECOMPRESS_DEBUG"] = "1"
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, ConsoleLogHandler)]:
        root.removeHandler(handler)
    root.addHandler(ConsoleLogHandler(debug))
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.captureWarnings(True)
    logging.getLogger("edgecompress").setLevel(logging.DEBUG if debug else logging.INFO)


def write_stdout(text: str) -> None:
    """Machine-readable output (--json) on the real stdout, even while native output is silenced."""
    stream = TerminalStream(1)
    stream.write(text)
    stream.flush()


__all__ = [
    "PIPED_WIDTH",
    "ConsoleLogHandler",
    "bullet",
    "console",
    "is_terminal",
    "output_width",
    "plain_console",
    "print_error",
    "print_line",
    "say",
    "setup_logging",
    "stdout_console",
    "write_stdout",
]
