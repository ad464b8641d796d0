"""edgecompress in a real pseudo-terminal, as a person typing the command sees it.

Every other test captures output, so none of them can see what only happens when stdout and
stderr are a terminal: rich's live display then swaps sys.stdout/sys.stderr for proxies.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_in_terminal(code: str, *, timeout: float = 60.0, columns: int = 80) -> tuple[int | None, str]:
    """Run `python -c code` with stdin/stdout/stderr on a fresh pseudo-terminal; returns (exit code or
    None when it did not end within `timeout`, everything it printed)."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "40", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=REPO,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal closed: the process ended
                    break
                if not chunk:
                    break
                output.extend(chunk)
            elif process.poll() is not None:
                break
        try:  # the terminal closes as the process exits, a moment before it can be reaped
            code_: int | None = process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            code_ = None
        if code_ is None:
            process.kill()
            process.wait()
        return code_, output.decode("utf-8", "replace")
    finally:
        os.close(leader)


def test_a_print_inside_a_progress_bar_returns_in_a_terminal() -> None:
    """The five-line reproduction of the hang: a print() while a progress bar is live looped for ever
    through rich's stdout proxy and edgecompress's own stream."""
    code = textwrap.dedent(
        """
        from edgecompress.cli.progress import Progress
        with Progress().task("Measuring layer significance"):
            print("a library prints")
        print("after")
        """
    )
    returncode, output = run_in_terminal(code, timeout=30)
    assert returncode == 0, output
    assert "a library prints" in output and "after" in output


def test_progress_survives_a_closed_stderr() -> None:
    """`2>&-`: Python sets sys.stderr to None; the progress lines are lost, the command is not."""
    code = "from edgecompress.cli.progress import Progress\nwith Progress().task('x'):\n    pass\nprint('after')"
    closed = subprocess.run(
        ["sh", "-c", f'"{sys.executable}" -c "$CODE" 2>&-'],
        env={**os.environ, "CODE": code},
        stdout=subprocess.PIPE,
        cwd=REPO,
        timeout=60,
    )
    assert closed.returncode == 0, closed
    assert closed.stdout.strip() == b"after"
