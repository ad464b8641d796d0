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
from typing import Any, Sequence

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


def python_argv(python: str, home: str) -> list[str]:
    """The board's interpreter command as argv; a leading '~/' means the remote user's home."""
    argv = shlex.split(python)
    if argv and (argv[0] == "~" or argv[0].startswith("~/")):
        argv[0] = posixpath.join(home, argv[0][2:])
    return argv


def tool_argv(python: Sequence[str], source: str, *args: str) -> list[str]:
    return [*python, "-c", source, *args]


def parse_json_document(stdout: bytes) -> Any:
    """The JSON document a tool or the runner printed, skipping anything a shell rc file printed first."""
    text = stdout.decode(errors="replace").strip()
    try:
        return json.loads(text)
    except ValueError:
        start = text.find("\n{")
        if start < 0:
            raise
        return json.loads(text[start + 1 :])
