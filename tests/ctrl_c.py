"""Ctrl-C in tests that press it, whatever the test run was started with.

A test run started with SIGINT ignored (`nohup pytest &`, or a background job of a non-interactive
shell) hands the ignoring on: Python then installs no KeyboardInterrupt handler, `os.kill(pid, SIGINT)`
and `_thread.interrupt_main()` do nothing, and a child process ignores SIGINT too. Tests that send a
Ctrl-C therefore install the default handler first (the `ctrl_c` fixture), and start their children
with SIGINT at its default (`default_sigint`, as a `preexec_fn`), as a shell does for a foreground job.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


def default_sigint() -> None:
    """preexec_fn for a child that must die on SIGINT (Python in it then raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def python_ctrl_c() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in this process while the block runs."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
