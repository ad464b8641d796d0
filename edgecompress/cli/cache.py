"""`edgecompress cache info|clear`: the stages deploy reuses across runs (see edgecompress/cache.py)."""

from __future__ import annotations

import typer

from edgecompress.cli.console import stdout_console

app = typer.Typer(
    help="Show or clear the cache of significance profiles, exported models and fine-tuned stages that deploy reuses.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.command()
def info() -> None:
    """Where the cache is, how many entries of each kind it holds, and its size against the limit."""
    from edgecompress.cache import StageCache
    from edgecompress.profiles import format_size

    facts = StageCache.default().info()
    out = stdout_console()
    out.print(
        f"{facts['root']}: {facts['entries']} entries, {format_size(facts['bytes'])} "
        f"of {format_size(facts['limit_bytes'])} (EDGECOMPRESS_CACHE_LIMIT)"
    )
    for kind, count in sorted(facts["by_kind"].items()):
        out.print(f"  {kind}: {count}")


@app.command()
def clear() -> None:
    """Delete every cached entry (the next deploy recomputes what it needs)."""
    from edgecompress.cache import StageCache
    from edgecompress.profiles import format_size

    entries, size = StageCache.default().clear()
    stdout_console().print(f"Removed {entries} entries ({format_size(size)}).")
