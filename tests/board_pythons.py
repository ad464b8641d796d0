"""Boards whose `python` is not quite Python: wrappers that a test writes as the board's interpreter.

The board is this machine, so its "python" can be a small script in the test's folder,
named in the target URL (?python=...) or given to LocalTarget. The runner and its helpers
still run for real; only what comes back is changed, as on a board with an edited runner
or a wrapper in front of the interpreter.
"""

from __future__ import annotations

import sys
from pathlib import Path

TAMPERING = '''#!{python}
"""Runs the real interpreter; when it ran the runner with {when}, edits the JSON it printed (or sets `raw`)."""
import json, subprocess, sys
done = subprocess.run([{python!r}, *sys.argv[1:]], stdout=subprocess.PIPE)
out = done.stdout
if sys.argv[1:2] != ["-c"] and {when!r} in sys.argv and done.returncode == 0:  # the runner, not a helper
    doc, raw = json.loads(out), None
    {edit}
    out = raw if raw is not None else json.dumps(doc).encode()
sys.stdout.buffer.write(out)
sys.exit(done.returncode)
'''

HONEST = """#!{python}
import os, sys
os.execv({python!r}, [{python!r}, *sys.argv[1:]])
"""


def tampering_python(path: Path, edit: str, when: str = "--model") -> Path:
    """A python for the board that applies `edit` to the runner's JSON whenever the runner is called with `when`.

    `edit` is one statement: it changes `doc` (the parsed JSON), or sets `raw` (the bytes to print instead).
    """
    path.write_text(TAMPERING.format(python=sys.executable, edit=edit, when=when))
    path.chmod(0o755)
    return path


def repair(path: Path) -> Path:
    """Turn a tampering python back into a plain hand-over to the real interpreter: the board is fixed."""
    path.write_text(HONEST.format(python=sys.executable))
    path.chmod(0o755)
    return path
