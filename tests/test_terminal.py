"""edgecompress in a real pseudo-terminal, as a person typing the command sees it.

Every other test captures output, so none of them can see what only happens when stdout and
stderr are a terminal: rich's live display then swaps sys.stdout/sys.stderr for proxies.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from ctrl_c import default_sigint

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Session:
    """What a person at a terminal saw: the exit code (None when it did not end in time), the bytes
    printed, and how long it took."""

    code: int | None
    output: str
    seconds: float
    interrupted_at: float | None = None  # seconds from the start to the SIGINT, when one was sent

    def lines(self) -> list[str]:
        """Every line as the terminal drew it: escape sequences removed, and a live display's redraws
        (carriage returns) counted as lines of their own, so none can hide a width problem."""
        plain = ANSI.sub("", self.output)
        return [segment for line in plain.split("\n") for segment in line.split("\r")]

    def too_wide(self, columns: int) -> list[str]:
        return [line for line in self.lines() if len(line.rstrip()) > columns]


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def run_in_terminal(
    code: str | list[str],
    *,
    timeout: float = 60.0,
    columns: int = 80,
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
    interrupt_after: Callable[[str], bool] | None = None,
) -> Session:
    """Run `python -c code` (or a command line) with stdin/stdout/stderr on a fresh pseudo-terminal of
    `columns` x 40, in a session of its own. With `interrupt_after`, the process group gets SIGINT (what
    Ctrl-C sends) the first time the output so far satisfies it."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    environment = {**os.environ, "COLUMNS": str(columns), "LINES": "40", "TERM": "xterm-256color", **(env or {})}
    for name in ("NO_COLOR", "EDGECOMPRESS_DEBUG"):  # a person's terminal, not a debugging one
        environment.pop(name, None)
    command = [sys.executable, "-c", code] if isinstance(code, str) else code
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=cwd,
        env=environment,
        start_new_session=True,
        preexec_fn=default_sigint,
    )
    os.close(follower)
    output = bytearray()
    try:
        sent = _read_until_exit(process, leader, output, started + timeout, interrupt_after)
        ended = time.monotonic()
        assert process.poll() is None or _group_gone(process.pid), "a process of the run lingers after it ended"
        return Session(
            process.poll(), output.decode("utf-8", "replace"), ended - started, None if sent is None else sent - started
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        os.close(leader)


def _read_until_exit(
    process: subprocess.Popen,
    leader: int,
    output: bytearray,
    deadline: float,
    interrupt_after: Callable[[str], bool] | None,
) -> float | None:
    """Copy the terminal's output until the process ends; the time SIGINT was sent, if it was."""
    sent: float | None = None
    interrupted = interrupt_after is None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process ended
                chunk = b""
            if not chunk:
                break
            output.extend(chunk)
            if not interrupted and interrupt_after is not None and interrupt_after(output.decode("utf-8", "replace")):
                os.killpg(process.pid, signal.SIGINT)
                interrupted, sent = True, time.monotonic()
        elif process.poll() is not None:
            break
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=max(0.1, deadline - time.monotonic()))
    return sent


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
    session = run_in_terminal(code, timeout=30)
    assert session.code == 0, session.output
    assert "a library prints" in session.output and "after" in session.output


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


def test_a_log_record_and_native_output_inside_a_progress_bar_go_through_one_console() -> None:
    """edgecompress's warnings print once, above the bar; what a library writes to fd 2 while silenced
    (as LiteRT's 'INFO: Created ... delegate' does) goes to the log, not the terminal."""
    code = textwrap.dedent(
        """
        import logging, os
        from edgecompress._tf import quiet_native_output
        from edgecompress.cli.console import setup_logging
        from edgecompress.cli.progress import Progress
        setup_logging(False)
        logging.getLogger("edgecompress.libraries").addHandler(logging.FileHandler("native.log"))
        with Progress().task("Bundling"):
            logging.getLogger("edgecompress.test").warning("board is warm")
            logging.getLogger("tensorflow").warning("a TensorFlow notice")
            with quiet_native_output():
                os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
        print(open("native.log").read().strip())
        """
    )
    with tempfile.TemporaryDirectory() as folder:
        session = run_in_terminal(code, timeout=60, cwd=Path(folder), env={"PYTHONPATH": str(REPO)})
    assert session.code == 0, session.output
    assert session.output.count("board is warm") == 1
    assert "a TensorFlow notice" not in session.output
    shown = [line for line in session.lines() if "XNNPACK" in line]
    assert shown == ["[stderr] INFO: Created TensorFlow Lite XNNPACK delegate for CPU."]  # the log's line only


def test_piped_output_honours_columns_and_defaults_to_100() -> None:
    from edgecompress.cli.console import PIPED_WIDTH

    code = "from edgecompress.cli.console import stdout_console; print(stdout_console().width)"
    widths = []
    for columns in ("132", None):
        env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
        if columns:
            env["COLUMNS"] = columns
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO)
        widths.append(int(done.stdout.strip()))
    assert widths == [132, PIPED_WIDTH] == [132, 100]


# ------------------------------------------------------------------------------ real commands, typed


def deploy_command(model: Path, output: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "edgecompress", "deploy", "--profile", "rpi4", str(model),
        "--data", "sklearn:digits", "--target", "local", "--output", str(output),
        "--warmup", "2", "--runs", "20", "--finetune-steps", "20", *extra,
    ]  # fmt: skip


def check_fits(session: Session, columns: int) -> None:
    """What a person reads: nothing wider than the terminal, nothing cut, no library noise."""
    assert session.too_wide(columns) == [], session.output
    assert "…" not in ANSI.sub("", session.output), session.output
    for noise in ("XNNPACK", "UserWarning", "Traceback", ".partial/"):
        assert noise not in session.output, (noise, session.output)


@pytest.mark.slow
@pytest.mark.parametrize("columns", [80, pytest.param(200, marks=pytest.mark.e2e)])  # 80: the narrow case
def test_deploy_typed_into_a_terminal_finishes_and_fits(digits_model: Path, tmp_path: Path, columns: int) -> None:
    session = run_in_terminal(deploy_command(digits_model, tmp_path / "runs"), timeout=300, columns=columns)

    assert session.code == 0, session.output
    check_fits(session, columns)
    (run_dir,) = (tmp_path / "runs").iterdir()
    plain = ANSI.sub("", session.output)
    assert plain.index("Report: ") < plain.index("Verdict: ")
    assert "".join(plain.split()).count(f"{run_dir}/report.html".replace(" ", "")) == 1
    assert "★" in plain and "timed on this x86-64 host, a stand-in for rpi4" in " ".join(plain.split())
    assert json.loads((run_dir / "ship" / "manifest.json").read_text())["run"] == run_dir.name  # not NAME.partial


@pytest.mark.slow
@pytest.mark.parametrize("columns", [80, pytest.param(200, marks=pytest.mark.e2e)])  # 80: the narrow case
def test_quickstart_typed_into_a_terminal_finishes_and_prints_its_verdict(tmp_path: Path, columns: int) -> None:
    command = [sys.executable, "-m", "edgecompress", "quickstart", "--epochs", "4", "--finetune-steps", "20"]
    session = run_in_terminal(command, timeout=300, columns=columns, cwd=tmp_path)

    assert session.code == 0, session.output
    check_fits(session, columns)
    plain = ANSI.sub("", session.output)
    assert "--data sklearn:digits" in plain and "Verdict: Recommended:" in plain
    assert (tmp_path / "digits_cnn.h5").is_file() and len(list((tmp_path / "runs").iterdir())) == 1


def fine_tuning_started(output: str) -> bool:
    return "shape (clustering): step" in output


@pytest.mark.slow
@pytest.mark.parametrize("where", ["terminal", pytest.param("pipe", marks=pytest.mark.e2e)])
def test_ctrl_c_during_fine_tuning_ends_the_run_with_130(digits_model: Path, tmp_path: Path, where: str) -> None:
    """SIGINT to the process group, as Ctrl-C sends it: exit 130 within seconds, every process of the group
    gone, and the run kept as NAME.failed for --resume."""
    command = deploy_command(digits_model, tmp_path / "runs", "--no-cache", "--finetune-steps", "5000")
    if where == "terminal":
        session = run_in_terminal(command, timeout=300, interrupt_after=fine_tuning_started)
        assert session.interrupted_at is not None, session.output
        code, output, after = session.code, session.output, session.seconds - session.interrupted_at
    else:
        code, output, after = run_in_pipe(command, timeout=300, interrupt_after=fine_tuning_started)

    assert code == 130, output
    assert after < 15, (after, output)
    (failed,) = (tmp_path / "runs").iterdir()
    assert failed.name.endswith(".failed") and "fine-tune" in (failed / "state.json").read_text()
    assert f"--resume{failed}" in "".join(ANSI.sub("", output).split())


def run_in_pipe(
    command: list[str], *, timeout: float, interrupt_after: Callable[[str], bool]
) -> tuple[int | None, str, float]:
    """The command with stdout and stderr on one pipe; SIGINT to its group once `interrupt_after` holds.
    Returns (exit code, output, seconds from the interrupt to the exit), and checks the group is gone."""
    env = {name: value for name, value in os.environ.items() if name != "EDGECOMPRESS_DEBUG"}
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=default_sigint,
        env=env,
    )
    assert process.stdout is not None
    output, interrupted, deadline = bytearray(), None, time.monotonic() + timeout
    os.set_blocking(process.stdout.fileno(), False)
    try:
        while time.monotonic() < deadline and process.poll() is None:
            select.select([process.stdout], [], [], 0.1)
            output.extend(process.stdout.read() or b"")
            if interrupted is None and interrupt_after(output.decode("utf-8", "replace")):
                os.killpg(process.pid, signal.SIGINT)
                interrupted = time.monotonic()
        output.extend(process.stdout.read() or b"")
        code = process.poll()
        assert _group_gone(process.pid), "a process of the interrupted run lingers"
        return code, output.decode("utf-8", "replace"), time.monotonic() - (interrupted or deadline)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _group_gone(group: int, wait: float = 5.0) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False
