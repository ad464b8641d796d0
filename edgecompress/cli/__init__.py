"""The `edgecompress` command. Each command is a thin shell over the Python API of the same name.

Errors a user caused (EdgeCompressError) are printed as one paragraph and a non-zero exit
code; a traceback is shown only with --debug, or for genuine bugs.

Modules: deploy (deploy), analyze (analyze), quickstart (quickstart, example-model),
profiles (profiles list/show), report (report, compare), ship (ship), tune (tune), rules (acceptance-rule options),
cache (cache info/clear), micro (micro setup/doctor), phone (phone setup), console and progress (output).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Optional

import typer

from edgecompress.cli.console import console, print_error, write_stdout
from edgecompress.cli.options import HELP_NAMES, tidy_help
from edgecompress.errors import EdgeCompressError, GateFailed

app = typer.Typer(
    help="Compress a trained Keras model for an edge device, run it there, and report measured latency, size, memory and accuracy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # help panels need Rich's help; only edgecompress's own help texts are read as markup there (a test
    # checks that none contains any), never a path, a name or a message from outside
    rich_markup_mode="rich",
    context_settings={"help_option_names": HELP_NAMES},
)

ERROR_SCHEMA = "edgecompress.error"


def _mount_commands() -> None:
    from edgecompress.cli import analyze, deploy, quickstart, report, ship, tune
    from edgecompress.cli.cache import app as cache_app
    from edgecompress.cli.micro import app as micro_app
    from edgecompress.cli.options import RequiredUnlessResuming
    from edgecompress.cli.phone import app as phone_app
    from edgecompress.cli.profiles import app as profiles_app

    app.callback()(_root)
    app.command(cls=RequiredUnlessResuming, epilog=deploy.EXAMPLE)(deploy.deploy)
    app.command()(analyze.analyze)
    app.command("example-model")(quickstart.example_model)
    app.command()(quickstart.quickstart)
    app.command("report")(report.report)
    app.command("compare")(report.compare)
    app.command("ship")(ship.ship)
    app.command("tune", cls=RequiredUnlessResuming)(tune.tune)
    app.command()(version)
    app.add_typer(profiles_app, name="profiles", help="List, inspect and start device profiles.")
    app.add_typer(cache_app, name="cache", help="Show or clear what deploy reuses across runs.")
    app.add_typer(micro_app, name="micro", help="Prepare TFLM sources and check the firmware toolchain and emulator.")
    app.add_typer(
        phone_app,
        name="phone",
        help="Fetch the runtimes the phone page runs artifacts with (LiteRT.js, ONNX Runtime Web).",
    )


def _show_version(value: bool) -> None:
    if value:
        version()
        raise typer.Exit(0)


def _root(
    show_version: Optional[bool] = typer.Option(
        None, "--version", is_eager=True, callback=_show_version, help="Print the edgecompress version and exit."
    ),
) -> None:
    """Compress a trained Keras model for an edge device, run it there, and report measured latency, size, memory and accuracy."""


def version() -> None:
    """Print the edgecompress version."""
    import edgecompress

    write_stdout(f"{edgecompress.__version__}\n")


def main(argv: list[str] | None = None) -> int:
    """Run the app and turn user errors into a clear paragraph (and, with --json, one JSON document
    on stdout); returns the exit code. Ctrl-C anywhere ends with 130."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug_before = os.environ.get("EDGECOMPRESS_DEBUG")
    try:
        with _ctrl_c_noted() as pressed:
            return _main(argv, pressed)
    finally:  # --debug switched TensorFlow's own output on for this command only (tests call main() in-process)
        if debug_before is None:
            os.environ.pop("EDGECOMPRESS_DEBUG", None)


def _main(argv: list[str], pressed: list[float]) -> int:
    debug, as_json = "--debug" in argv, "--json" in argv
    if not app.registered_commands:
        _mount_commands()
    try:
        command = tidy_help(typer.main.get_command(app))
        code = command.main(args=argv, prog_name="edgecompress", standalone_mode=False)
        if code == 130:  # typer turns a Ctrl-C outside a run into exit code 130, silently
            console.print("Interrupted.", style="bold red")
        return code if isinstance(code, int) else 0
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except typer.TyperException as usage:  # a mistyped command line (click's usage errors)
        return _usage_error(usage, as_json)
    except typer.Abort:
        console.print("Aborted.", style="bold red")
        return 130
    except EdgeCompressError as error:
        if debug:
            console.print_exception()
        print_error(error)
        if as_json:
            write_stdout(json.dumps(error_document(error), default=str) + "\n")
        return error.exit_code
    except (KeyboardInterrupt, Exception) as error:
        if not pressed:
            raise  # a bug: its traceback is the report
        # Ctrl-C landed inside a library's clean-up, which failed in turn: still an interruption
        if debug:
            console.print_exception()
        detail = "" if isinstance(error, KeyboardInterrupt) else f" ({type(error).__name__}: {error})"
        console.print(f"Interrupted.{detail}", style="bold red", soft_wrap=True)
        return 130


@contextlib.contextmanager
def _ctrl_c_noted() -> Iterator[list[float]]:
    """While a command runs, remember that Ctrl-C was pressed (and still raise KeyboardInterrupt), so an
    error it causes on its way out is reported as the interruption it is. A SIGINT the caller ignores
    (`nohup`) stays ignored; outside the main thread nothing changes."""
    pressed: list[float] = []
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) in (
        signal.SIG_IGN,
        None,
    ):
        yield pressed
        return
    previous = signal.getsignal(signal.SIGINT)

    def on_ctrl_c(signum: int, frame: Any) -> None:
        pressed.append(time.monotonic())
        if callable(previous):
            previous(signum, frame)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


def _usage_error(usage: typer.TyperException, as_json: bool) -> int:
    """A mistyped command line: click's usage message (in Rich's panel), or with --json the JSON document.
    `edgecompress` alone shows the help."""
    from typer import rich_utils

    if type(usage).__name__ == "NoArgsIsHelpError":  # as typer itself tells it apart
        usage.show()  # type: ignore[attr-defined]
        return 0
    rich_utils.rich_format_error(usage)  # type: ignore[arg-type]
    if as_json:
        command = getattr(getattr(usage, "ctx", None), "command_path", "edgecompress")
        problem = EdgeCompressError(usage.format_message(), f"See `{command} --help`.")
        problem.exit_code = usage.exit_code
        document = {**error_document(problem), "error": type(usage).__name__}
        write_stdout(json.dumps(document, default=str) + "\n")
    return usage.exit_code


def error_document(error: EdgeCompressError) -> dict[str, Any]:
    """What --json prints for an error: exit code, problem, fix. A gate failure carries the finished
    run's summary too, so stdout still holds one document."""
    document: dict[str, Any] = {
        "schema": ERROR_SCHEMA,
        "exit_code": error.exit_code,
        "error": type(error).__name__,
        "problem": error.problem,
        "fix": error.fix,
    }
    result = getattr(error, "result", None) if isinstance(error, GateFailed) else None
    if result is not None and getattr(result, "run_dir", None) is not None:
        from edgecompress.reporting import to_json_summary

        return {"run_dir": str(result.run_dir), **to_json_summary(result.report), "error": document}
    return document


def entry_point() -> None:
    """What the `edgecompress` script calls."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry_point()
