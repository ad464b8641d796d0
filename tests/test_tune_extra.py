"""The core install has no Ray and no Optuna: only `edgecompress tune` needs them (the [tune] extra).

Here both are installed (the test extra includes tune), so a child Python is started in which
they are absent the way Python marks a module absent (`sys.modules[name] = None`: importing it
raises ImportError, `find_spec` finds nothing).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WITHOUT_THE_EXTRA = "import sys\nsys.modules['ray'] = None\nsys.modules['optuna'] = None\n"

IMPORT_EVERYTHING = """
import importlib, json, pkgutil
import edgecompress
failed = {}
for info in pkgutil.walk_packages(edgecompress.__path__, "edgecompress."):
    if "._bundled" in info.name or info.name.endswith(".__main__"):  # __main__ runs the command line
        continue
    try:
        importlib.import_module(info.name)
    except Exception as error:
        failed[info.name] = f"{type(error).__name__}: {error}"
print(json.dumps(failed))
"""


def _child(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_THE_EXTRA + code],
        cwd=cwd,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_every_module_imports_without_ray_or_optuna(tmp_path: Path) -> None:
    done = _child(IMPORT_EVERYTHING, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {}


@pytest.mark.parametrize(
    "args", [["tune", "--profile", "rpi4", "model.h5", "--data", "sklearn:digits"], ["tune", "--resume", "tunes/x"]]
)
def test_tune_without_the_extra_says_the_pip_command(args: list[str], tmp_path: Path) -> None:
    done = _child(f"from edgecompress.cli import main\nsys.exit(main({args!r}))", tmp_path)
    err = " ".join(done.stderr.split())
    assert done.returncode == 2 and "Traceback" not in err
    assert "edgecompress tune needs ray and optuna, which are not installed here" in err
    assert f"{sys.executable} -m pip install" in err and "[tune]" in err
    assert not (tmp_path / "tunes").exists()


def test_the_pip_command_names_this_checkout_and_its_lock() -> None:
    """The README and .ci/run install edgecompress editable: the command reinstalls that folder with the extra."""
    import shlex

    from edgecompress.tune import extra

    words = shlex.split(extra.install_command())
    assert words[:4] == [sys.executable, "-m", "pip", "install"] and words[4] == "-e"
    source = Path(words[5].removesuffix("[tune]"))
    assert words[5].endswith("[tune]") and (source / "pyproject.toml").is_file()
    lock = source / "constraints.txt"
    assert words[6:] == (["-c", str(lock)] if lock.is_file() else [])
