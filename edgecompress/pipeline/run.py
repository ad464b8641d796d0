"""The loop: prepare (no folder yet), then run every step inside a run folder.

A failure names its step in state.json and the folder becomes NAME.failed, resumable with
`edgecompress deploy --resume`; the message says so, with the exact command.
"""

from __future__ import annotations

import contextvars
import json
import logging
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecompress.errors import EdgeCompressError
from edgecompress.pipeline.context import RunContext
from edgecompress.pipeline.prepare import Say, TaskFactory, no_task, prepare
from edgecompress.pipeline.request import DeployRequest
from edgecompress.pipeline.steps import STEPS
from edgecompress.run_folder import RunFolder
from edgecompress.run_layout import FAILED, LAYOUT, PARTIAL

if TYPE_CHECKING:
    from edgecompress.targets import Target

log = logging.getLogger("edgecompress.pipeline")
#: the steps' names in run order (what `stop_before` may name)
STEP_NAMES = tuple(step.name for step in STEPS)


@dataclass
class DeployResult:
    run_dir: Path | None  # None for a dry run
    report: dict[str, Any]


class RunInterrupted(EdgeCompressError):
    """Ctrl-C (or another interruption) stopped a run; it is kept and can be resumed."""

    exit_code = 130


def deploy(
    model: str | Path,
    profile: str | Path,
    *,
    dry_run: bool = False,
    progress: Say | None = None,
    show: Callable[[Any], None] | None = None,
    task: TaskFactory | None = None,
    **fields: Any,
) -> DeployResult:
    """Python twin of `edgecompress deploy`: keyword arguments are DeployRequest's fields
    (`target=` may be one spec or a list; SSH options such as identity= may be given directly)."""
    request = DeployRequest.build(model, profile, **fields)
    return run(request, progress=progress, show=show, task=task, dry_run=dry_run)


def resume(
    run_dir: str | Path,
    *,
    progress: Say | None = None,
    show: Callable[[Any], None] | None = None,
    task: TaskFactory | None = None,
    stop_before: str | None = None,
    boards: Sequence[Target] | None = None,
) -> DeployResult:
    """Finish a failed or interrupted run, repeating only the steps it has no record of.

    The folder is renamed back to .partial only once the request has been re-checked, so a
    resume that cannot start leaves the folder exactly as it was. `stop_before` and `boards`
    are as for `run`: `edgecompress tune` builds a trial in a worker and measures it here.
    """
    run_dir = Path(run_dir)
    request_file = run_dir / LAYOUT.request
    if not request_file.exists():
        raise EdgeCompressError(
            f"'{run_dir}' is not a resumable run folder (no {LAYOUT.request}).",
            "Pass a folder that `edgecompress deploy` created, e.g. runs/20261122-101500-model-rpi4.failed.",
        )
    if (run_dir / LAYOUT.report).exists() and not run_dir.name.endswith((FAILED, PARTIAL)):
        raise EdgeCompressError(
            f"'{run_dir}' already finished; its report is {run_dir / LAYOUT.report}.", "Nothing to resume."
        )
    try:
        document = json.loads(request_file.read_text())
    except (OSError, ValueError):
        document = None
    request = DeployRequest.from_json(document, where=request_file)
    return run(request, progress=progress, show=show, task=task, reopen=run_dir, stop_before=stop_before, boards=boards)


def run(
    request: DeployRequest,
    *,
    progress: Say | None = None,
    show: Callable[[Any], None] | None = None,
    task: TaskFactory | None = None,
    reopen: Path | None = None,
    dry_run: bool = False,
    stop_before: str | None = None,
    boards: Sequence[Target] | None = None,
) -> DeployResult:
    """Validate everything and plan, then run the steps inside a run folder.

    `stop_before` (a step name, e.g. "measure") ends the run before that step and leaves the
    folder .partial for a later `resume`, which does the rest; a run that stops before
    measuring contacts no board. `boards` are targets connected and probed by the caller (a
    tune's board pool), used instead of connecting to the request's targets.
    """
    if stop_before is not None and stop_before not in STEP_NAMES:
        raise ValueError(f"unknown step {stop_before!r}; steps: {', '.join(STEP_NAMES)}")
    # in a context of its own: the run's log records are told apart from those of runs in other threads
    return contextvars.copy_context().run(_run, request, progress, show, task, reopen, dry_run, stop_before, boards)


def _run(
    request: DeployRequest,
    progress: Say | None,
    show: Callable[[Any], None] | None,
    task: TaskFactory | None,
    reopen: Path | None,
    dry_run: bool,
    stop_before: str | None,
    boards: Sequence[Target] | None,
) -> DeployResult:
    connect = stop_before is None or STEP_NAMES.index(stop_before) > STEP_NAMES.index("measure")

    def say(message: str) -> None:
        log.info(message)  # deploy.log keeps every step, whatever the console shows
        if progress is not None:
            progress(message)

    if reopen is None:
        request = request.with_absolute_paths()
    _CURRENT_RUN.set(object())
    early = _EarlyLines()  # what preparation says, written to deploy.log once the run folder exists
    early.addFilter(_ThisRun())
    if logging.getLogger("edgecompress").getEffectiveLevel() > logging.INFO:
        logging.getLogger("edgecompress").setLevel(logging.INFO)  # the run's record, however quiet the console
    logging.getLogger().addHandler(early)
    try:  # raises before any folder changes
        prepared = prepare(request, say, task or no_task, dry_run=dry_run, connect=connect, boards=boards)
    finally:
        logging.getLogger().removeHandler(early)
    if show is not None:
        _show_plan(prepared, show)
    if dry_run:
        prepared.close()
        return DeployResult(
            run_dir=None,
            report={
                "plan": prepared.plan.to_dict(),
                "significance": prepared.significance.to_dict(),
                "scaling": prepared.scaling.to_dict(),
                "task": prepared.dataset.task_decision,
            },
        )
    if reopen is not None:
        folder = RunFolder.reopen(reopen)
    else:
        folder = RunFolder.create(
            Path(request.output), Path(request.model).stem, prepared.profile.name, request.run_name
        )
        request.model_sha256 = prepared.loaded.sha256
        folder.write_json(LAYOUT.request, request.to_json())
    result = _run_steps(RunContext(prepared=prepared, folder=folder, say=say), early.records, stop_before)
    if request.gate and stop_before is None:
        from edgecompress.decision.gate import enforce

        enforce(
            result.report.get("verdict") or {}, result.run_dir, result=result
        )  # the run stays; only the exit code changes
    return result


def _show_plan(prepared: Any, show: Callable[[Any], None]) -> None:
    """The plan, the input scaling and the task, each with how it was decided, before anything is built."""
    show(prepared.plan.table())
    show(f"Input scaling: {prepared.scaling.scaling} ({prepared.scaling.reason})")
    decision = prepared.dataset.task_decision or {}
    show(f"Task: {prepared.dataset.task} ({decision.get('reason', '')})")


#: which run the current thread (and the board threads it starts) works for; see _ThisRun
_CURRENT_RUN: contextvars.ContextVar[object | None] = contextvars.ContextVar("edgecompress_run", default=None)


def own_log_context() -> None:
    """Mark the current context as no run's: a caller that runs several runs in threads (tune's driver)
    calls it so its own log records stay out of those runs' deploy.log files."""
    _CURRENT_RUN.set(object())


class _ThisRun(logging.Filter):
    """Keeps a run's handlers to its own records when several runs share the process (tune's driver
    measures trials in threads): a record logged for another run is left out."""

    def __init__(self) -> None:
        super().__init__()
        self.run = _CURRENT_RUN.get()

    def filter(self, record: logging.LogRecord) -> bool:
        current = _CURRENT_RUN.get()
        return current is None or current is self.run


class _EarlyLines(logging.Handler):
    """Keeps log records until there is a deploy.log to write them to."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _run_steps(ctx: RunContext, earlier: list[logging.LogRecord], stop_before: str | None = None) -> DeployResult:
    handler = ctx.folder.attach_log()  # steps, board progress, and what libraries said
    handler.addFilter(_ThisRun())
    for record in earlier:  # profile, model, data, scaling, significance, plan, budget, targets
        handler.handle(record)
    step = "start"
    try:
        ctx.say(
            f"Run folder: {ctx.folder.path.with_name(ctx.folder.final_name)} ({ctx.folder.path.name} until it ends)"
        )
        for current in STEPS:
            if current.name == stop_before:
                ctx.say(
                    f"Stopping before step '{stop_before}'; the run folder stays {ctx.folder.path.name} to be resumed"
                )
                return DeployResult(run_dir=ctx.folder.path, report={})
            if current.applies(ctx):
                step = current.name
                started = time.monotonic()
                current.run(ctx)
                ctx.timings[current.name] = round(time.monotonic() - started, 2)
        run_dir = ctx.folder.finish()
        for line in finished_paths(run_dir):
            ctx.say(line)
        return DeployResult(run_dir=run_dir, report=ctx.report)
    except BaseException as error:
        replacement = _kept_for_resume(ctx.folder, step, error)
        if replacement is error:
            raise
        raise replacement from error
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        ctx.prepared.close()


def finished_paths(run_dir: Path) -> list[str]:
    """Where a finished run's results are, under the folder's final name: the page people open first."""
    lines = [
        f"Report: {run_dir / LAYOUT.html}" if (run_dir / LAYOUT.html).exists() else f"Report: {run_dir / LAYOUT.report}"
    ]
    others = [name for name in (LAYOUT.markdown, LAYOUT.report, LAYOUT.log) if (run_dir / name).exists()]
    if others and (run_dir / LAYOUT.html).exists():
        lines[0] += f" (beside it: {', '.join(others)})"
    if (run_dir / LAYOUT.ship).is_dir():
        lines.append(
            f"Bundle: {run_dir / LAYOUT.ship} (install it with `edgecompress ship {run_dir} --target ssh://...`)"
        )
    return lines


def _kept_for_resume(folder: RunFolder, step: str, error: BaseException) -> BaseException:
    """Mark the folder failed and return the error to raise, carrying the exact resume command."""
    described = str(error) or type(error).__name__
    # a user's error or an interruption is printed by the caller; only a bug is logged as an error
    expected = isinstance(error, (EdgeCompressError, KeyboardInterrupt))
    log.log(logging.INFO if expected else logging.ERROR, "step %s failed: %s", step, described)
    failed_at = folder.fail(step, error)
    command = f"edgecompress deploy --resume {shlex.quote(str(failed_at))}"
    if isinstance(error, KeyboardInterrupt):
        return RunInterrupted(
            f"Interrupted during step '{step}'. The run so far is kept in {failed_at}.", f"Finish it with `{command}`."
        )
    if isinstance(error, EdgeCompressError):
        error.fix = (error.fix + f" The run so far is kept in {failed_at}; finish it with `{command}`.").strip()
    return error
