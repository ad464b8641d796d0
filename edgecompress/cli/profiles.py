"""`edgecompress profiles list|show|init`: see what each device profile implies before deploying, and start your own.

Mounted by the main CLI as `edgecompress profiles`. A bad name or file raises ProfileError,
which the main CLI prints as one paragraph; nothing here exits on its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgecompress.cli.console import print_line, say, stdout_console, write_stdout
from edgecompress.profiles import Profile, format_size, is_profile_file, list_profiles, load_profile, schema_help

app = typer.Typer(
    help="List, inspect and start device profiles (bundled ones, or your own .yaml/.toml file).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

#: `profiles list` columns: header and how to read it off a profile (arch, runtimes and
#: compression defaults are in `profiles show`; the list must fit a 100-column terminal)
LIST_COLUMNS: tuple[tuple[str, Callable[[Profile], str]], ...] = (
    ("name", lambda p: p.name),
    ("class", lambda p: p.device_class),
    ("cpu", lambda p: f"{p.cpu.cores}x {_clock(p.cpu.clock_mhz)}"),
    (
        "RAM",
        lambda p: (
            format_size(p.ram_bytes) + (f"\n+ {format_size(p.external_ram_bytes)}" if p.external_ram_bytes else "")
        ),
    ),
    (
        "budget",
        lambda p: (
            f"{format_size(p.model_memory_budget_bytes)} RAM"
            + (f"\n{format_size(p.flash_budget_bytes)} flash" if p.flash_budget_bytes else "")
        ),
    ),
    ("int8/\nfp16", lambda p: " ".join(kind for kind in ("int8", "fp16") if getattr(p, kind)) or "—"),
    ("accelerator", lambda p: p.accelerator + ("*" if p.accelerator_int8_only else "")),
)


def _clock(mhz: int) -> str:
    return f"{mhz / 1000:g} GHz" if mhz >= 1000 else f"{mhz} MHz"


def _console() -> Console:
    return stdout_console()


@app.command("list")
def list_command() -> None:
    """Show every bundled profile: class, CPU, RAM, model budget, number formats, accelerator."""
    from edgecompress.reporting.terminal import compact_table

    profiles = list_profiles()
    table = compact_table("Device profiles")
    for header, _ in LIST_COLUMNS:  # the names are typed on the command line: never cut; the rest wraps
        longest = max(len(p.name) for p in profiles) if header == "name" else 0
        table.add_column(header, no_wrap=header == "name", min_width=longest or None)
    for profile in profiles:
        table.add_row(*(Text(read(profile)) for _, read in LIST_COLUMNS))
    console = _console()
    console.print(table)
    console.print(
        "budget: room for the model in RAM at run time, and in flash for its file.  * int8 models only.\n"
        f"Details: edgecompress profiles show NAME.  Your own board: see {schema_help()}."
    )


@app.command()
def show(
    profile: str = typer.Argument(
        ..., metavar="NAME|PATH", help="Bundled profile name (e.g. rpi4) or path to your own .yaml/.toml profile."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the profile as JSON (sizes in bytes) instead of a table."
    ),
) -> None:
    """Show every field of one profile, sizes in human units."""
    loaded = load_profile(profile)
    if as_json:
        write_stdout(json.dumps(loaded.to_dict(), indent=2) + "\n")
    else:
        _console().print(_detail_table(loaded))
    for warning in loaded.warnings:
        say(f"Warning: {warning}")


@app.command()
def init(
    name: str = typer.Argument(..., metavar="NAME", help="Name of the new profile, e.g. my-board (lowercase)."),
    source: str = typer.Option(
        "rpi4", "--from", metavar="PROFILE", help="Bundled profile (or file) to start from; see `profiles list`."
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", metavar="FILE", help="Where to write it.", show_default="./NAME.yaml"
    ),
) -> None:
    """Write a commented profile to start your own board's from (nothing is overwritten)."""
    from edgecompress.errors import ProfileError
    from edgecompress.profiles import Profile, commented_yaml

    start = load_profile(source)
    target = output or Path(f"{name}.yaml")
    if target.exists():
        raise ProfileError(f"{target} already exists.", "Pick another NAME or --output; nothing was written.")
    text = commented_yaml(start, name=name, source=start.name)
    try:
        Profile.model_validate({**start.to_dict(), "name": name})
    except ValueError:
        raise ProfileError(
            f"'{name}' is not a profile name: lowercase letters, digits, '.', '_' and '-', starting with a letter or digit.",
            "Pick another NAME, e.g. my-board.",
        ) from None
    target.write_text(text)
    load_profile(str(target) if is_profile_file(str(target)) else f"./{target}")  # it loads back as written
    print_line(f"Wrote {target}, a copy of {start.name} with every field explained.")
    print_line(f"Edit it, check it with `edgecompress profiles show {target}`, then deploy with --profile {target}.")


def _detail_table(profile: Profile) -> Table:
    table = Table(title=f"{profile.name}: {profile.description}", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("field", no_wrap=True)
    table.add_column("value")
    for field, value in profile.summary_rows():
        table.add_row(field, value)
    return table
