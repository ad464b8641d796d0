"""Progress for long steps (training, conversion, uploads, timed runs), quiet when asked.

One `Progress` object is handed down a command: it draws rich bars on stderr (so stdout
stays clean for tables and --json), falls back to one line per finished step when stderr
is not a terminal (CI logs), and prints nothing at all with `quiet=True`. Steps may nest:
they share one live display, which rich requires. Text is never read as console markup:
a path or a board's message is shown exactly as written.

    progress = Progress(quiet=args.quiet)
    with progress.task("Converting ptq-int8"):            # spinner: length unknown
        ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

from edgecompress.cli.console import console as shared_console
from edgecompress.cli.console import say as say_line

Advance = Callable[..., None]


class Progress:
    """Bars and status lines for one command; every method is a no-op when quiet."""

    def __init__(self, *, quiet: bool = False, console: Console | None = None) -> None:
        self.quiet = quiet
        # the one console that owns the terminal: log records and library prints go through it too
        self.console = console or shared_console
        self._live: RichProgress | None = None
        self._depth = 0

    def say(self, message: str) -> None:
        """A status line ('• Measuring ptq-int8 on rpi'), printed above any live bars."""
        if not self.quiet:
            say_line(message, target=self.console)

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[Advance]:
        """One long step; yields advance(steps=1, *, detail=None, total=None, completed=None).

        With `total` None it shows a spinner and elapsed time until the step ends.
        """
        if self.quiet:
            yield _ignore
            return
        live = self._enter()
        task_id = live.add_task(description, total=total, counted=total is not None)

        def advance(
            steps: float = 1, *, detail: str | None = None, total: float | None = None, completed: float | None = None
        ) -> None:
            changes: dict[str, Any] = {"advance": steps} if completed is None else {"completed": completed}
            if detail is not None:
                changes["description"] = f"{description} · {detail}"
            if total is not None:
                changes.update(total=total, counted=True)
            live.update(task_id, **changes)

        try:
            yield advance
            task = live.tasks[task_id]
            if task.total is None:
                live.update(task_id, total=1, completed=1)
        finally:
            self._exit()

    # ------------------------------------------------------------------ shared live display

    def _enter(self) -> RichProgress:
        if self._live is None:
            self._live = RichProgress(
                SpinnerColumn(finished_text="✓"),
                TextColumn("{task.description}", markup=False),
                _WhenCounted(BarColumn(bar_width=24)),
                _WhenCounted(MofNCompleteColumn()),
                _WhenCounted(TaskProgressColumn()),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self._live.start()
        self._depth += 1
        return self._live

    def _exit(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._live is not None:
            self._live.stop()
            self._live = None


class _WhenCounted(ProgressColumn):
    """A column shown only for a step whose length is known: a spinner step has no bar or '0/?'."""

    def __init__(self, column: ProgressColumn) -> None:
        super().__init__()
        self.column = column

    def render(self, task: Task) -> RenderableType:
        return self.column(task) if task.fields.get("counted") else Text("")


def _ignore(*_: Any, **__: Any) -> None:
    return None
