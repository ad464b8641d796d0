"""`edgecompress tune` needs Ray and Optuna, the `[tune]` extra; the core install has neither.

Without them every other command works, and `tune` stops before any work with the pip
command that adds them to *this* installation: from a source checkout (an editable install)
its own folder, with the lock next to it when there is one.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlsplit

from edgecompress.errors import EdgeCompressError

#: module -> the distribution that provides it
NEEDED = {"ray": "ray", "optuna": "optuna"}


def missing() -> list[str]:
    """The distributions of the extra that this environment lacks."""
    return [dist for module, dist in NEEDED.items() if importlib.util.find_spec(module) is None]


def require() -> None:
    """Stop with the pip command that installs the extra when Ray or Optuna is missing."""
    absent = missing()
    if absent:
        raise EdgeCompressError(
            f"edgecompress tune needs {' and '.join(absent)}, which {'is' if len(absent) == 1 else 'are'} "
            "not installed here: the core install leaves out the search (Ray and Optuna, the [tune] extra).",
            f"Install the extra into this environment: {install_command()}",
        )


def install_command() -> str:
    """`python -m pip install ...[tune]` for this interpreter and the way edgecompress was installed."""
    pip = f"{shlex.quote(sys.executable)} -m pip install"
    source = _editable_source()
    if source is None:
        return f"{pip} 'edgecompress[tune]'"
    lock = source / "constraints.txt"
    command = f"{pip} -e {shlex.quote(f'{source}[tune]')}"
    return f"{command} -c {shlex.quote(str(lock))}" if lock.is_file() else command


def _editable_source() -> Path | None:
    """The source folder of an editable install (PEP 610's direct_url.json), else None."""
    try:
        text = metadata.distribution("edgecompress").read_text("direct_url.json")
        document = json.loads(text) if text else {}
    except (metadata.PackageNotFoundError, ValueError):
        return None
    if not (document.get("dir_info") or {}).get("editable"):
        return None
    url = urlsplit(str(document.get("url", "")))
    return Path(unquote(url.path)) if url.scheme == "file" else None


__all__ = ["install_command", "missing", "require"]
