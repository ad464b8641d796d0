"""Getting files onto a board so that a half-sent file can never pass for a whole one.

Layout under the remote work dir (default ~/.edgecompress):

    cache/<sha256><suffix>   every artifact ever sent, named by its content
    runs/<run id>/           one measurement: hard links to the cached inputs, pid, samples

An upload goes to `cache/.<name>.<random>.part`, is hashed *on the board*, and only then
renamed to its content name, so a name in cache/ is a promise about its bytes. A file
already cached under the right hash is not sent again, which also makes a resumed or
repeated deploy cheap on a slow link. The bytes travel over SFTP, or over the exec
channel on boards without it (ssh_files); nothing here depends on which.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import secrets
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import paramiko

from edgecompress.errors import TargetError
from edgecompress.targets import ssh_board_tools as tools
from edgecompress.targets.ssh_connection import CommandResult, Connection, ConnectionLost
from edgecompress.targets.ssh_files import TOOL_TIMEOUT_S, RemoteFiles

#: bytes kept free beyond the files themselves: a board with a full disk misbehaves in other ways
HEADROOM_BYTES = 64 * 1024
#: a .part file older than this was left by a dead connection and is swept away
STALE_PART_S = 3600
PART_SUFFIX = ".part"

Say = Callable[[str], None]


@dataclass(frozen=True)
class LocalFile:
    """A file to send, with the hash that names it in the board's cache."""

    path: Path
    sha256: str
    size: int

    @classmethod
    def of(cls, path: Path) -> LocalFile:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return cls(path, digest.hexdigest(), path.stat().st_size)

    @property
    def cache_name(self) -> str:
        return self.sha256 + self.path.suffix.lower()


@dataclass(frozen=True)
class Transfer:
    """One file's fate in an upload: sent, or found on the board already."""

    name: str
    sha256: str
    bytes: int
    sent: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RemoteLayout:
    """Absolute remote paths; neither SFTP nor a quoted argument expands '~', so it is resolved once here."""

    home: str
    work_dir: str

    @property
    def cache_dir(self) -> str:
        return posixpath.join(self.work_dir, "cache")

    @property
    def runs_dir(self) -> str:
        return posixpath.join(self.work_dir, "runs")

    def cached(self, file: LocalFile) -> str:
        return posixpath.join(self.cache_dir, file.cache_name)

    def run_dir(self, run_id: str) -> str:
        return posixpath.join(self.runs_dir, run_id)


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def resolve_layout(files: RemoteFiles, conn: Connection, remote_dir: str) -> RemoteLayout:
    """Expand '~' against the remote home and create work/cache/runs (mode 700) if missing."""
    home = files.home
    if remote_dir == "~" or remote_dir.startswith("~/"):
        work = posixpath.join(home, remote_dir[2:])
    else:
        work = posixpath.join(home, remote_dir)  # absolute paths win in join; relative ones are under home
    layout = RemoteLayout(home=home, work_dir=posixpath.normpath(work))
    try:
        for folder in (layout.work_dir, layout.cache_dir, layout.runs_dir):
            files.makedirs(folder)
        return layout
    except OSError as error:
        if not conn.alive:
            raise ConnectionLost(f"the connection dropped while preparing {remote_dir}") from error
        raise TargetError(
            f"Cannot create the work folder '{remote_dir}' on {conn.address}: {error}.",
            "Point remote_dir (target file, or ?remote_dir= in the URL) at a folder the SSH user may write.",
        ) from None


class Uploader:
    """Sends files into the board's content-addressed cache, verified by the board's own SHA-256."""

    def __init__(
        self,
        conn: Connection,
        files: RemoteFiles,
        python: Sequence[str],
        layout: RemoteLayout,
        say: Say,
        cancel: threading.Event | None = None,
    ) -> None:
        self.conn, self.files, self.python, self.layout, self.say = conn, files, list(python), layout, say
        self.cancel = cancel or threading.Event()

    def run_tool(
        self, source: str, *args: str, timeout: float = TOOL_TIMEOUT_S, cancellable: bool = True
    ) -> CommandResult:
        """Run one ssh_board_tools program; a missing or broken Python becomes a TargetError naming it.

        Clean-up tools (stop, remove) pass cancellable=False: they are what runs *after* a cancel.
        """
        return tools.run(
            self.conn, self.python, source, *args, timeout=timeout, cancel=self.cancel if cancellable else None
        )

    def inventory(self, paths: Sequence[str]) -> tuple[int, dict[str, str | None]]:
        """Free bytes in the work dir and the on-board SHA-256 of each path (None if absent)."""
        document = tools.run_json(
            self.conn,
            self.python,
            tools.INVENTORY,
            self.layout.work_dir,
            *paths,
            timeout=TOOL_TIMEOUT_S,
            cancel=self.cancel,
        )
        try:
            free, digests = int(document["free_bytes"]), dict(document["sha256"])
        except (TypeError, KeyError, ValueError):
            shown = CommandResult(0, json.dumps(document).encode(), b"")
            raise tools.not_json_error(self.python, "edgecompress's inventory helper", shown) from None
        return free, {path: digests.get(path) for path in paths}

    def ensure(self, files: Sequence[LocalFile]) -> list[Transfer]:
        """Make every file present and verified in cache/; send only what is missing or wrong."""
        free, digests = self.inventory([self.layout.cached(f) for f in files])
        missing = [f for f in files if digests.get(self.layout.cached(f)) != f.sha256]
        needed = sum(f.size for f in missing)
        if missing and needed + HEADROOM_BYTES > free:
            raise self._disk_full(needed, free)
        if missing:
            self._sweep_stale_parts()
        for file in missing:
            self.put_verified(file)
        return [Transfer(f.path.name, f.sha256, f.size, sent=f in missing) for f in files]

    def put_verified(self, file: LocalFile) -> None:
        """Temp name, board-side hash check, atomic rename; on any failure the temp file is removed."""
        final = self.layout.cached(file)
        temp = posixpath.join(self.layout.cache_dir, f".{file.cache_name}.{secrets.token_hex(4)}{PART_SUFFIX}")
        try:
            self._write(file, temp)
            free, digests = self.inventory([temp])
            if digests.get(temp) != file.sha256:
                if free < HEADROOM_BYTES:  # pipelined SFTP writes can fail without an error reaching us
                    raise self._disk_full(file.size, free)
                raise TargetError(
                    f"{file.path.name} arrived on {self.conn.address} corrupted (SHA-256 {digests.get(temp)} instead of {file.sha256}).",
                    "Run again; if it repeats, check the board's storage (dmesg, fsck) and the network.",
                )
            self.files.rename_over(temp, final)
        except BaseException as error:
            self._discard(temp)
            if isinstance(error, (OSError, EOFError, paramiko.SSHException)):
                raise self._write_failed(file, error) from error
            raise

    def _write(self, file: LocalFile, temp: str) -> None:
        marks = _progress_marks(file.size)

        def sent(so_far: int) -> None:
            while marks and so_far >= marks[0][0]:
                self.say(f"upload {file.path.name}: {marks.pop(0)[1]}%")

        if self.files.write(file.path, temp, sent, self.cancel) != file.size:
            raise OSError(f"{file.path} changed while it was being sent")

    def _discard(self, temp: str) -> None:
        if not self.conn.alive:
            return  # the .part file stays behind, never under a final name; a later upload sweeps it
        try:
            self.files.remove(temp)
        except (OSError, EOFError, ConnectionLost, TargetError, paramiko.SSHException):
            pass

    def _sweep_stale_parts(self) -> None:
        self.files.sweep(self.layout.cache_dir, PART_SUFFIX, STALE_PART_S)

    def _write_failed(self, file: LocalFile, error: BaseException) -> Exception:
        if not self.conn.alive:
            return ConnectionLost(f"the connection dropped while sending {file.path.name}: {error}")
        try:
            free, _ = self.inventory([])
        except ConnectionLost as lost:  # the transport noticed the drop only now
            return lost
        except Exception:  # noqa: BLE001 - the message is still useful without the figure
            free = None
        if free is not None and free < file.size + HEADROOM_BYTES:
            return self._disk_full(file.size, free)
        return TargetError(
            f"Writing {file.path.name} into {self.layout.cache_dir} on {self.conn.address} failed: {error}.",
            "Check that the SSH user can write there and the disk is healthy, or set another remote_dir.",
        )

    def _disk_full(self, needed: int, free: int) -> TargetError:
        return TargetError(
            f"The board {self.conn.address} has {_human(free)} free in {self.layout.work_dir}, "
            f"but the upload needs {_human(needed)} (plus {_human(HEADROOM_BYTES)} headroom). Nothing was left half-written.",
            f"Free space on the board (df -h {shlex.quote(self.layout.work_dir)}; old runs live in {self.layout.runs_dir}, "
            f"cached artifacts in {self.layout.cache_dir}), or point remote_dir at a bigger disk.",
        )

    def link_into_run(self, run_dir: str, named: Sequence[tuple[str, str]]) -> None:
        """Make `run_dir` hold `name -> cached file` hard links, so a kept run folder is self-contained."""
        pairs = [part for cached, name in named for part in (cached, name)]
        try:
            self.run_tool(tools.LINK, run_dir, *pairs)
        except TargetError as error:
            raise TargetError(
                f"Could not prepare the run folder {run_dir} on {self.conn.address}: {error.problem}", error.fix
            ) from None

    def read_bytes(self, path: str, limit: int) -> bytes:
        """A file the runner wrote, at most `limit` bytes (a board is not trusted to send what it says)."""
        try:
            return self.files.read(path, limit)
        except OSError as error:
            if not self.conn.alive:
                raise ConnectionLost(f"the connection dropped while fetching {path}") from error
            raise TargetError(
                f"Could not fetch {path} from {self.conn.address}: {error}.", "Run the measurement again."
            ) from None

    def read_json(self, path: str) -> Any:
        try:
            return tools.parse_json_document(self.files.read(path))
        except (OSError, ValueError) as error:
            if not self.conn.alive:
                raise ConnectionLost(f"the connection dropped while fetching {path}") from error
            raise TargetError(
                f"Could not fetch {path} from {self.conn.address}: {error}.", "Run the measurement again."
            ) from None

    def remove_run_dir(self, run_dir: str) -> None:
        if posixpath.dirname(run_dir) != self.layout.runs_dir:  # never rm anything but our own run folders
            raise ValueError(f"refusing to remove {run_dir}: not under {self.layout.runs_dir}")
        self.run_tool(tools.REMOVE, run_dir, timeout=60.0, cancellable=False)


def _progress_marks(size: int) -> list[tuple[int, int]]:
    """Byte offsets at which to report progress: every 10% for files worth watching, else none."""
    if size < 256 * 1024:
        return []
    return [(size * pct // 100, pct) for pct in range(10, 101, 10)]


def _human(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"
