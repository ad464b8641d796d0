"""Locate the data folders that ship next to the package (profiles/, firmware/).

In a source checkout (and an editable install) they sit at the repository root; in a
wheel they are copied into `edgecompress/_bundled/`. Callers should not care which.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def bundled_dir(name: str) -> Path:
    """Return the folder `name` ('profiles', 'firmware', 'targets') wherever it was installed."""
    for candidate in (_PACKAGE_DIR / "_bundled" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"edgecompress's '{name}' folder is missing from this installation "
        f"(looked in {_PACKAGE_DIR / '_bundled'} and {_PACKAGE_DIR.parent}). Reinstall edgecompress."
    )


def runner_script() -> Path:
    """The board-side runner: a single file that is copied to and run on the device."""
    return bundled_dir("firmware") / "runner" / "edgecompress_runner.py"
