"""File operations on a board: over SFTP when the server offers it, else over the exec channel.

Not every SSH server speaks SFTP: dropbear ships without `sftp-server`, stripped images
lack it, and some admins remove the `Subsystem sftp` line from sshd_config. Such a board
still runs commands, and it must have Python for the runner anyway, so the same few file
operations are done by small Python helpers (ssh_board_tools) with the bytes travelling
over the command's stdin/stdout. Everything above this module -- the temporary `.part`
name, the SHA-256 check on the board, the atomic rename, the content-addressed cache --
is the same on both paths.
"""

from __future__ import annotations

import abc
import posixpath
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko

from edgecompress.errors import TargetError
from edgecompress.targets import ssh_board_tools as tools
from edgecompress.targets.ssh_connection import Cancelled, Connection, ConnectionLost, SftpUnavailable

CHUNK_BYTES = 32 * 1024
TOOL_TIMEOUT_S = 300.0
#: an exec-channel upload gets this long per MiB on top of TOOL_TIMEOUT_S (a slow link still finishes)
EXEC_SECONDS_PER_MIB = 60.0

Sent = Callable[[int], None]


class RemoteFiles(abc.ABC):
    """The file operations an upload needs; OSError for a failure on the board, as with SFTP."""

    #: 'sftp' or 'exec', recorded in the probe so a report says how the files travelled
    transport: str
    #: the remote user's home: where the server starts a session, and what '~' means
    home: str

    @abc.abstractmethod
    def makedirs(self, path: str) -> None:
        """Create `path` (mode 700) and its parents if missing."""

    @abc.abstractmethod
    def write(self, source: Path, remote: str, sent: Sent, cancel: threading.Event) -> int:
        """Copy `source` into the new file `remote`; `sent(total_bytes)` after each block. Returns bytes sent."""

    @abc.abstractmethod
    def read(self, remote: str, limit: int | None = None) -> bytes:
        """The whole content of `remote`; with `limit`, an OSError for a file larger than that many bytes."""

    @abc.abstractmethod
    def rename_over(self, temp: str, final: str) -> None:
        """Move `temp` to `final`, replacing it."""

    @abc.abstractmethod
    def remove(self, remote: str) -> None:
        """Delete one file; a missing file is not an error."""

    @abc.abstractmethod
    def sweep(self, folder: str, suffix: str, older_than_s: float) -> None:
        """Best effort: delete files in `folder` ending in `suffix` older than `older_than_s`."""


def remote_files(conn: Connection, python: str, say: Callable[[str], None]) -> RemoteFiles:
    """SFTP if the server offers it, else the exec channel (announced once, so the user knows why it is slower)."""
    try:
        return SftpFiles(conn.sftp())
    except SftpUnavailable as error:
        say(f"{conn.address} offers no SFTP ({error}); sending files over the SSH command channel instead")
        return ExecFiles(conn, python)


def _within(data: bytes, limit: int | None, remote: str) -> bytes:
    if limit is not None and len(data) > limit:
        raise OSError(f"{remote} is larger than the {limit:,} bytes it can be")
    return data


def _blocks(source: Path, sent: Sent, cancel: threading.Event) -> Iterator[bytes]:
    total = 0
    with source.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            if cancel.is_set():
                raise Cancelled()
            yield block
            total += len(block)
            sent(total)


class SftpFiles(RemoteFiles):
    """The usual path: paramiko's SFTP client, pipelined writes."""

    transport = "sftp"

    def __init__(self, sftp: paramiko.SFTPClient) -> None:
        self.sftp = sftp
        self.home = sftp.normalize(".")

    def makedirs(self, path: str) -> None:
        try:
            if stat.S_ISDIR(self.sftp.stat(path).st_mode):
                return
            raise OSError(f"{path} exists and is not a folder")
        except FileNotFoundError:
            pass
        parent = posixpath.dirname(path)
        if parent and parent != path:
            self.makedirs(parent)
        try:
            self.sftp.mkdir(path, mode=0o700)
        except OSError:
            if not stat.S_ISDIR(self.sftp.stat(path).st_mode):  # a parallel fleet worker made it first
                raise

    def write(self, source: Path, remote: str, sent: Sent, cancel: threading.Event) -> int:
        total = 0

        def count(so_far: int) -> None:
            nonlocal total
            total = so_far
            sent(so_far)

        with self.sftp.open(remote, "wb") as handle:
            handle.set_pipelined(True)
            for block in _blocks(source, count, cancel):
                handle.write(block)
        return total

    def read(self, remote: str, limit: int | None = None) -> bytes:
        with self.sftp.open(remote, "rb") as handle:
            data = handle.read() if limit is None else handle.read(limit + 1)
        return _within(data, limit, remote)

    def rename_over(self, temp: str, final: str) -> None:
        try:
            self.sftp.posix_rename(temp, final)
        except OSError:
            # servers without the posix-rename extension: plain rename refuses to overwrite
            try:
                self.sftp.remove(final)
            except OSError:
                pass
            self.sftp.rename(temp, final)

    def remove(self, remote: str) -> None:
        try:
            self.sftp.remove(remote)
        except FileNotFoundError:
            pass

    def sweep(self, folder: str, suffix: str, older_than_s: float) -> None:
        now = time.time()
        try:
            for entry in self.sftp.listdir_attr(folder):
                if entry.filename.endswith(suffix) and now - (entry.st_mtime or now) > older_than_s:
                    self.sftp.remove(posixpath.join(folder, entry.filename))
        except OSError:
            pass  # housekeeping only


class ExecFiles(RemoteFiles):
    """No SFTP on the board: the board's Python does each operation, data over stdin/stdout."""

    transport = "exec"

    def __init__(self, conn: Connection, python: str) -> None:
        self.conn = conn
        self.home = self._session_dir()
        self.python = tools.python_argv(python, self.home)

    def _session_dir(self) -> str:
        """Where the server starts a command -- the home folder, as SFTP's '.' is -- asked of the login shell."""
        result = self.conn.run(["pwd"], timeout=TOOL_TIMEOUT_S)
        lines = [line for line in result.stdout.decode(errors="replace").splitlines() if line.startswith("/")]
        if result.status != 0 or not lines:
            raise TargetError(
                f"{self.conn.address} offers no SFTP, and its login shell did not answer `pwd` (exit {result.status}):\n"
                f"{tools.first_lines(result.stdout + result.stderr) or '    (nothing)'}",
                "Enable SFTP on the board: for OpenSSH add `Subsystem sftp internal-sftp` to /etc/ssh/sshd_config and "
                "restart sshd; for dropbear install the sftp-server program (e.g. opkg install openssh-sftp-server).",
            )
        return lines[-1]

    def _tool(
        self, source: str, *args: str, timeout: float = TOOL_TIMEOUT_S, stdin: Iterator[bytes] | None = None
    ) -> bytes:
        """Run a helper; the board refusing the operation (a Python exception) is an OSError, as with SFTP."""
        try:
            return tools.run(self.conn, self.python, source, *args, timeout=timeout, stdin=stdin).stdout
        except tools.HelperFailed as failed:
            if not self.conn.alive:
                raise ConnectionLost(f"the connection dropped: {failed.problem}") from None
            refusal = failed.python_exception()
            if refusal is None:
                raise  # Python itself is missing or broken: the TargetError says which and what to do
            raise OSError(refusal) from None

    def makedirs(self, path: str) -> None:
        self._tool(tools.MKDIRS, path)

    def write(self, source: Path, remote: str, sent: Sent, cancel: threading.Event) -> int:
        total = 0

        def count(so_far: int) -> None:
            nonlocal total
            total = so_far
            sent(so_far)

        timeout = TOOL_TIMEOUT_S + EXEC_SECONDS_PER_MIB * source.stat().st_size / (1 << 20)
        self._tool(tools.RECEIVE, remote, timeout=timeout, stdin=_blocks(source, count, cancel))
        return total

    def read(self, remote: str, limit: int | None = None) -> bytes:
        return _within(self._tool(tools.READ, remote), limit, remote)

    def rename_over(self, temp: str, final: str) -> None:
        self._tool(tools.RENAME, temp, final)

    def remove(self, remote: str) -> None:
        self._tool(tools.DISCARD, remote)

    def sweep(self, folder: str, suffix: str, older_than_s: float) -> None:
        try:
            self._tool(tools.SWEEP, folder, suffix, str(older_than_s))
        except OSError:
            pass  # housekeeping only
