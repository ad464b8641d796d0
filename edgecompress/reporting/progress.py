"""Progress for long steps (training, conversion, uploads, timed runs), quiet when asked.

One `Progress` object is handed down a command: it draws rich bars on stderr (so stdout
stays clean for tables and --json), falls back to one line per finished step when stderr
is not a terminal (CI logs), and prints nothing at all with `quiet=True`. Steps may nest:
they share one live display, which rich requires.

    progress = Progress(quiet=args.quiet)
    with progress.task("Converting ptq-int8"):            # spinner: length unknown
        ...
    for batch in progress.track(batches, "Uploading"):    # bar
        ...
    model.fit(..., callbacks=[progress.keras_callback("Fine-tuning", epochs)])
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

T = TypeVar("T")

#: The runner's stderr progress lines that carry a count ("accuracy 500/2000").
RUNNER_COUNT = re.compile(r"(?P<what>[a-z][a-z -]*?) (?P<done>\d+)/(?P<total>\d+)\s*$")

Advance = Callable[..., None]


class Progress:
    """Bars and status lines for one command; every method is a no-op when quiet."""

    def __init__(self, *, quiet: bool = False, console: Console | None = None) -> None:
        self.quiet = quiet
        self.console = console or Console(stderr=True)
        self._live: RichProgress | None = None
        self._depth = 0

    def say(self, message: str) -> None:
        """A status line ('• Measuring ptq-int8 on rpi'), printed above any live bars."""
        if not self.quiet:
            self.console.print(f"[cyan]•[/cyan] {message}", highlight=False)

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[Advance]:
        """One long step; yields advance(steps=1, *, detail=None, total=None, completed=None).

        With `total` None it shows a spinner and elapsed time until the step ends.
        """
        if self.quiet:
            yield _ignore
            return
        live = self._enter()
        task_id = live.add_task(description, total=total)

        def advance(steps: float = 1, *, detail: str | None = None, total: float | None = None,
                    completed: float | None = None) -> None:
            changes: dict[str, Any] = {"advance": steps} if completed is None else {"completed": completed}
            if detail is not None:
                changes["description"] = f"{description} [dim]{detail}[/dim]"
            if total is not None:
                changes["total"] = total
            live.update(task_id, **changes)

        try:
            yield advance
            task = live.tasks[task_id]
            if task.total is None:
                live.update(task_id, total=1, completed=1)
        finally:
            self._exit()

    def track(self, iterable: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        """Iterate with a bar; `total` defaults to len(iterable) when it has one."""
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        with self.task(description, total=total) as advance:
            for item in iterable:
                yield item
                advance()

    @contextmanager
    def runner_lines(self, description: str) -> Iterator[Callable[[str], None]]:
        """Turn the board runner's stderr lines ('accuracy 500/2000') into a bar; yields feed(line)."""
        with self.task(description) as advance:
            def feed(line: str) -> None:
                text = line.strip().removeprefix("edgecompress-runner:").strip()
                match = RUNNER_COUNT.search(text)
                if match:
                    done, total = int(match["done"]), int(match["total"])
                    advance(detail=match["what"], total=total, completed=done)
                elif text:
                    advance(0, detail=text)

            yield feed

    def keras_callback(self, description: str, epochs: int) -> Any:
        """A tf-keras Callback drawing one bar over the epochs, with loss / accuracy as detail."""
        from edgecompress._tf import keras as _keras

        progress = self

        class _EpochBar(_keras().callbacks.Callback):
            def on_train_begin(self, logs: dict | None = None) -> None:
                self._step = progress.task(description, total=epochs)
                self._advance = self._step.__enter__()

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                shown = ", ".join(f"{k} {v:.4g}" for k, v in (logs or {}).items() if isinstance(v, (int, float)))
                self._advance(1, detail=f"epoch {epoch + 1}/{epochs}" + (f": {shown}" if shown else ""))

            def on_train_end(self, logs: dict | None = None) -> None:
                self._step.__exit__(None, None, None)

        return _EpochBar()

    # ------------------------------------------------------------------ shared live display

    def _enter(self) -> RichProgress:
        if self._live is None:
            self._live = RichProgress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TaskProgressColumn(), TimeElapsedColumn(), console=self.console, transient=False,
            )
            self._live.start()
        self._depth += 1
        return self._live

    def _exit(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._live is not None:
            self._live.stop()
            self._live = None


def _ignore(*_: Any, **__: Any) -> None:
    return None
