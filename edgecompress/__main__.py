"""`python -m edgecompress ...`: the same as the `edgecompress` command."""

from edgecompress.cli import entry_point

entry_point()
