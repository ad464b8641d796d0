"""The few helper programs edgecompress runs on a board, as Python source for `python -c`.

They use only the standard library of Python 3.8+ (the runner's own floor), because the
board's shell may be dash, busybox or fish and its `kill`, `df` and `sha256sum` differ,
while the Python that must run the runner anyway behaves the same everywhere. Each one is
passed its paths as separate argv entries -- never formatted into the source.
"""

from __future__ import annotations

import json
import posixpath
import shlex
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from edgecompress.errors import TargetError
from edgecompress.targets.base import printable
from edgecompress.targets.ssh_connection import CommandResult, Connection

#: lines of a board's unexpected output shown in an error, and their width
FIRST_LINES = 5
LINE_WIDTH = 200
PYTHON_FIX = (
    "Install Python 3.8+ on the board (e.g. sudo apt install python3) or point `python:` in the target "
    "file (or ?python= in the ssh:// URL) at the interpreter to use."
)

#: `inventory WORK_DIR PATH...` -> {"free_bytes": n, "sha256": {PATH: hex | null}}
INVENTORY = r"""
import hashlib, json, os, sys
work, paths = sys.argv[1], sys.argv[2:]
digests = {}
for path in paths:
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digests[path] = digest.hexdigest()
    except (IOError, OSError):
        digests[path] = None
stat = os.statvfs(work)
print(json.dumps({"free_bytes": stat.f_bavail * stat.f_frsize, "sha256": digests}))
"""

#: `launch RUN_DIR PIDFILE PROGRAM ARG...`: own process group, pid recorded, then exec the runner.
LAUNCH = r"""
import os, sys
try:
    os.setsid()
except OSError:
    pass  # already a session leader: the login shell exec'd us, so pgid == pid anyway
os.chdir(sys.argv[1])
with open(sys.argv[2], "w") as handle:
    handle.write(str(os.getpid()))
os.execvp(sys.argv[3], sys.argv[3:])
"""

#: `stop PIDFILE GRACE_S WAIT_S`: SIGTERM the runner's process group, SIGKILL it if it lingers.
#: WAIT_S > 0 waits that long for the pid file, for a stop that races the launch (Ctrl-C at once).
STOP = r"""
import os, signal, sys, time
pid_deadline = time.time() + float(sys.argv[3])
while True:
    try:
        with open(sys.argv[1]) as handle:
            pid = int(handle.read().strip())
        break
    except (IOError, OSError, ValueError):
        if time.time() >= pid_deadline:
            sys.exit(0)
        time.sleep(0.05)
def alive():
    try:
        os.killpg(pid, 0)
        return True
    except OSError:
        return False
try:
    os.killpg(pid, signal.SIGTERM)
except OSError:
    sys.exit(0)
deadline = time.time() + float(sys.argv[2])
while alive() and time.time() < deadline:
    time.sleep(0.05)
if alive():
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
print("stopped %d" % pid)
"""

#: `link RUN_DIR SOURCE NAME [SOURCE NAME...]`: make the run folder, hard-link (or copy) cached files in.
LINK = r"""
import os, shutil, sys
run_dir, pairs = sys.argv[1], sys.argv[2:]
os.makedirs(run_dir, mode=0o700, exist_ok=True)
for source, name in zip(pairs[0::2], pairs[1::2]):
    target = os.path.join(run_dir, name)
    if os.path.lexists(target):
        os.remove(target)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
"""

#: `remove PATH`: delete a run folder (and nothing outside the work dir; the caller checks).
REMOVE = r"""
import shutil, sys
shutil.rmtree(sys.argv[1], ignore_errors=True)
"""

# The file operations below stand in for SFTP on boards whose SSH server has no SFTP
# subsystem (see ssh_files.ExecFiles); data travels over the command's stdin and stdout.

#: `mkdirs PATH...`: create folders (mode 700) with their parents; fail if one is not a folder.
MKDIRS = r"""
import os, sys
for path in sys.argv[1:]:
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o700, exist_ok=True)
"""

#: `receive PATH` < bytes: write stdin to a new file (never over an existing one), synced to disk.
RECEIVE = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
with os.fdopen(fd, "wb") as out:
    while True:
        block = sys.stdin.buffer.read(1 << 16)
        if not block:
            break
        out.write(block)
    out.flush()
    os.fsync(out.fileno())
"""

#: `read PATH` > bytes
READ = r"""
import sys
with open(sys.argv[1], "rb") as handle:
    sys.stdout.buffer.write(handle.read())
"""

#: `rename TEMP FINAL`: atomic replace, so FINAL is either the old file or the whole new one.
RENAME = r"""
import os, sys
os.replace(sys.argv[1], sys.argv[2])
"""

#: `discard PATH`: remove one file if it exists.
DISCARD = r"""
import os, sys
try:
    os.remove(sys.argv[1])
except FileNotFoundError:
    pass
"""

#: `sweep FOLDER SUFFIX MAX_AGE_S`: remove files ending in SUFFIX older than MAX_AGE_S (left by dead uploads).
SWEEP = r"""
import os, sys, time
folder, suffix, age = sys.argv[1], sys.argv[2], float(sys.argv[3])
now = time.time()
for name in os.listdir(folder):
    path = os.path.join(folder, name)
    try:
        if name.endswith(suffix) and now - os.stat(path).st_mtime > age:
            os.remove(path)
    except OSError:
        pass
"""


def python_argv(python: str, home: str) -> list[str]:
    """The board's interpreter command as argv; a leading '~/' means the remote user's home."""
    argv = shlex.split(python)
    if argv and (argv[0] == "~" or argv[0].startswith("~/")):
        argv[0] = posixpath.join(home, argv[0][2:])
    return argv


def python_shell(python: str) -> str:
    """The board's interpreter as a command to paste into its shell: each word quoted, a leading '~/' left to expand."""
    words = shlex.split(python)
    if words and words[0].startswith("~/"):
        first = "~/" + shlex.quote(words[0][2:])
    else:
        first = shlex.quote(words[0]) if words else "python3"
    return " ".join([first, *map(shlex.quote, words[1:])])


def tool_argv(python: Sequence[str], source: str, *args: str) -> list[str]:
    return [*python, "-c", source, *args]


def run(
    conn: Connection,
    python: Sequence[str],
    source: str,
    *args: str,
    timeout: float,
    cancel: threading.Event | None = None,
    stdin: Iterable[bytes] | None = None,
) -> CommandResult:
    """Run one helper program; a missing or broken Python becomes a TargetError naming it."""
    argv = tool_argv(python, source, *args)
    if stdin is None:
        result = conn.run(argv, timeout=timeout, cancel=cancel)
    else:
        result = conn.run_with_input(argv, stdin, timeout=timeout, cancel=cancel)
    if result.status != 0:
        raise HelperFailed(result, conn, python)
    return result


class HelperFailed(TargetError):
    """A helper exited non-zero: Python is missing or broken, or the operation itself was refused."""

    def __init__(self, result: CommandResult, conn: Connection, python: Sequence[str]) -> None:
        super().__init__(
            f"Python on {conn.address} ({shlex.join(python)}) could not run edgecompress's helper "
            f"(exit {result.status}): {result.stderr_tail(4) or 'no output'}.",
            PYTHON_FIX,
        )
        self.result = result

    def python_exception(self) -> str | None:
        """'PermissionError: ...' when the helper ran and raised (exit 1 after a traceback); None otherwise."""
        lines = self.result.stderr.decode(errors="replace").strip().splitlines()
        if self.result.status != 1 or not any(line.startswith("Traceback") for line in lines):
            return None
        return lines[-1]


def run_json(
    conn: Connection,
    python: Sequence[str],
    source: str,
    *args: str,
    timeout: float,
    cancel: threading.Event | None = None,
) -> Any:
    """Run a helper that answers with one JSON document; text instead of JSON is the board's interpreter talking."""
    result = run(conn, python, source, *args, timeout=timeout, cancel=cancel)
    try:
        return parse_json_document(result.stdout)
    except ValueError:
        raise not_json_error(python, "edgecompress's helper", result) from None


def not_json_error(python: Sequence[str], what: str, result: CommandResult) -> TargetError:
    """What to say when the board's interpreter printed text where a JSON document belongs."""
    if first_lines(result.stdout):
        said = f"it printed (exit {result.status}):\n{first_lines(result.stdout)}"
    elif first_lines(result.stderr):
        said = f"it printed nothing on stdout (exit {result.status}); on stderr:\n{first_lines(result.stderr)}"
    else:
        said = f"it printed nothing at all (exit {result.status})."
    return TargetError(
        f"`{shlex.join(python)}` on the board was asked to run {what} and answer in JSON, but {said}",
        f"Point `python:` in the target file (or ?python= in the ssh:// URL) at a real Python 3.8+ interpreter, "
        f"not a wrapper that prints text. To see what it is, run on the board: {shlex.join([*python, '--version'])}",
    )


def first_lines(data: bytes, count: int = FIRST_LINES, width: int = LINE_WIDTH) -> str:
    """The first `count` non-empty lines of a board's output, indented, with control characters escaped.

    The text comes from a machine we do not control: terminal escape sequences and other
    control characters are shown as escapes (\\x1b), never sent to the user's terminal.
    """
    lines = [line for line in data.decode(errors="replace").splitlines() if line.strip()][:count]
    shown = []
    for line in lines:
        escaped = printable(line)
        shown.append("    | " + (escaped[:width] + "..." if len(escaped) > width else escaped))
    return "\n".join(shown)


def parse_json_document(stdout: bytes) -> Any:
    """The JSON document a tool or the runner printed, skipping anything a shell rc file printed first."""
    text = stdout.decode(errors="replace").strip()
    try:
        try:
            return json.loads(text)
        except ValueError:
            start = text.find("\n{")
            if start < 0:
                raise
            return json.loads(text[start + 1 :])
    except RecursionError:  # nesting deeper than any real answer: a hostile or broken board
        raise ValueError("JSON nested too deeply") from None
