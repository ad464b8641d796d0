"""The `edgecompress` command. Each command is a thin shell over the Python API of the same name.

Errors a user caused (EdgeCompressError) are printed as one paragraph and a non-zero exit
code; a traceback is shown only with --debug, or for genuine bugs.

Modules: deploy (deploy), analyze (analyze), quickstart (quickstart, example-model),
profiles (profiles list/show), report (report, compare), ship (ship), tune (tune), rules (acceptance-rule options),
cache (cache info/clear), micro (micro setup/doctor), console and progress (output).
"""

from __future__ import annotations

import sys

import typer

from edgecompress.cli.console import console, print_error, stdout_console
from edgecompress.errors import EdgeCompressError

app = typer.Typer(
    help="Compress a trained Keras model for an edge device, run it there, and report measured latency, size, memory and accuracy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _mount_commands() -> None:
    from edgecompress.cli import analyze, deploy, quickstart, report, ship, tune
    from edgecompress.cli.cache import app as cache_app
    from edgecompress.cli.micro import app as micro_app
    from edgecompress.cli.profiles import app as profiles_app

    app.command()(deploy.deploy)
    app.command()(analyze.analyze)
    app.command("example-model")(quickstart.example_model)
    app.command()(quickstart.quickstart)
    app.command("report")(report.report)
    app.command("compare")(report.compare)
    app.command("ship")(ship.ship)
    app.command("tune")(tune.tune)
    app.command()(version)
    app.add_typer(profiles_app, name="profiles", help="List and inspect device profiles.")
    app.add_typer(cache_app, name="cache", help="Show or clear what deploy reuses across runs.")
    app.add_typer(micro_app, name="micro", help="Prepare TFLM sources and check the firmware toolchain and emulator.")


def version() -> None:
    """Print the edgecompress version."""
    import edgecompress

    stdout_console().print(edgecompress.__version__)


def main(argv: list[str] | None = None) -> int:
    """Run the app and turn user errors into a clear paragraph; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if not app.registered_commands:
        _mount_commands()
    try:
        app(args=argv, prog_name="edgecompress")  # standalone: usage errors print and exit here
        return 0
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except EdgeCompressError as error:
        if debug:
            console.print_exception()
        print_error(error)
        return error.exit_code
    except KeyboardInterrupt:
        console.print("Interrupted.", style="bold red")
        return 130


def entry_point() -> None:
    """What the `edgecompress` script calls."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry_point()
