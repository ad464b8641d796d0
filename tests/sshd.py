"""A real OpenSSH server on 127.0.0.1 for the SSH target's tests: the board is this machine.

`start_sshd(folder)` writes a throw-away host key, a user key pair and an sshd_config that
reads nothing from /etc/ssh, then runs `/usr/sbin/sshd -D -e` in the foreground on a free
port as the current user (root or not). The server logs at VERBOSE into `sshd.log` (who
logged in with which key), which the tests show when something fails.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import pytest

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
START_TIMEOUT_S = 10.0

CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {folder}/sshd.pid
AuthorizedKeysFile {folder}/authorized_keys
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
MaxSessions 50
MaxStartups 50
LogLevel VERBOSE
"""
#: how the server offers SFTP: OpenSSH's built-in server, as Debian's default config does
INTERNAL_SFTP = "internal-sftp"


def require_sshd() -> None:
    """Skip (not fail) where OpenSSH's server is not installed; CI installs it."""
    if not SSHD.exists():
        pytest.skip(f"{SSHD} is missing: install Debian's openssh-server to run the SSH target tests")


def keygen(path: Path, comment: str = "edgecompress-test") -> Path:
    """A fresh unencrypted ed25519 key pair at `path` / `path`.pub."""
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class SshServer:
    """A running sshd plus the keys a client needs to reach it."""

    folder: Path
    port: int
    host_key: Path
    user_key: Path
    user: str = field(
        default_factory=lambda: pwd.getpwuid(os.getuid()).pw_name
    )  # sshd logs in only as itself unless root
    #: run the server inside this root filesystem (the emulated arm64 board); `folder` must be under it
    chroot: Path | None = None
    #: the `Subsystem sftp` program; None leaves the line out, as stripped images and dropbear without sftp-server do
    sftp: str | None = INTERNAL_SFTP
    process: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return self.folder / "sshd.log"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def url(self, **query: str) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}" + (f"?{urlencode(query)}" if query else "")

    def known_hosts_line(self, key: Path | None = None) -> str:
        public = (key or self.host_key).with_suffix(".pub").read_text().split()
        return f"[127.0.0.1]:{self.port} {public[0]} {public[1]}\n"

    def write_known_hosts(self, path: Path, key: Path | None = None) -> Path:
        path.write_text(self.known_hosts_line(key))
        return path

    def _seen_by_sshd(self, path: Path) -> str:
        return str(path) if self.chroot is None else "/" + str(path.relative_to(self.chroot))

    def start(self) -> SshServer:
        config = self.folder / "sshd_config"
        inside = self._seen_by_sshd
        text = CONFIG.format(port=self.port, host_key=inside(self.host_key), folder=inside(self.folder))
        config.write_text(text + (f"Subsystem sftp {self.sftp}\n" if self.sftp else ""))
        if os.geteuid() == 0:  # privilege separation chroot, normally made by Debian's init
            os.makedirs((self.chroot or Path("/")) / "run" / "sshd", mode=0o755, exist_ok=True)
        command = [str(SSHD), "-D", "-e", "-f", inside(config)]
        if self.chroot is not None:
            command = ["chroot", str(self.chroot), *command]
        log = self.log.open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        timeout = START_TIMEOUT_S * (6 if self.chroot else 1)  # sshd under qemu starts slowly
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"sshd did not listen on port {self.port} within {timeout} s:\n{self.log_text()}")

    def kill(self) -> None:
        """SIGKILL the listener *and* every per-connection sshd it forked: a crashed server, mid-transfer."""
        if self.process is None:
            return
        for pid in [*_descendants(self.process.pid), self.process.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> SshServer:
        self.kill()
        return self.start()


def start_sshd(folder: Path, *, chroot: Path | None = None, sftp: str | None = INTERNAL_SFTP) -> SshServer:
    """Generate keys in `folder` and start a server authorizing exactly the generated user key.

    `sftp=None` starts a server without the SFTP subsystem; a path that does not exist
    imitates a board whose config names an sftp-server that was never installed.
    """
    if chroot is None:
        require_sshd()
    folder.mkdir(parents=True, exist_ok=True)
    host_key = keygen(folder / "host_ed25519_key", "test-host")
    user_key = keygen(folder / "user_ed25519_key", "test-user")
    (folder / "authorized_keys").write_text(user_key.with_suffix(".pub").read_text())
    return SshServer(folder, free_port(), host_key, user_key, chroot=chroot, sftp=sftp).start()


@pytest.fixture(scope="session", name="sshd")
def sshd_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """One server for a whole test module that imports this fixture (tests needing a crash start their own)."""
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.kill()


@pytest.fixture(scope="session", name="sshd_without_sftp")
def sshd_without_sftp_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A server whose sshd_config has no `Subsystem sftp` line: it runs commands but speaks no SFTP."""
    server = start_sshd(tmp_path_factory.mktemp("sshd-no-sftp"), sftp=None)
    yield server
    server.kill()


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def processes_running_in(folder: Path) -> list[int]:
    """Pids whose working directory is inside `folder` (the board is this machine, so /proc shows them)."""
    folder = folder.resolve()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cwd = Path(os.readlink(entry / "cwd"))
            except OSError:
                continue
            if cwd == folder or folder in cwd.parents:
                pids.append(int(entry.name))
    return pids


# --------------------------------------------------------------------------- emulated arm64 board (pytest -m arm64)

#: a Debian bookworm arm64 root with OpenSSH and a venv holding the runner's runtime, built once
ARM64_ROOT = Path(os.environ.get("EDGECOMPRESS_ARM64_ROOT", "~/.cache/edgecompress/arm64-root")).expanduser()
ARM64_PYTHON = "/opt/edgecompress-env/bin/python"
#: the same pins as pyproject.toml, as a Raspberry Pi 4 running 64-bit Raspberry Pi OS would install them
ARM64_PIP = ["numpy==2.4.6", "ai-edge-litert==2.3.0"]
DEBIAN_MIRROR = "http://deb.debian.org/debian"
QEMU_BINFMT = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


def _require_arm64_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("the emulated arm64 board needs root (chroot, mounts, binfmt_misc)")
    for tool in ("qemu-aarch64-static", "debootstrap"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing: apt-get install qemu-user-static debootstrap")


def _ensure_binfmt() -> None:
    """Let the kernel run aarch64 ELF files through qemu (the F flag makes it work inside the chroot)."""
    if (BINFMT_DIR / "qemu-aarch64").exists():
        return
    if not (BINFMT_DIR / "register").exists():
        done = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)], capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount binfmt_misc: {done.stderr.strip()}")
    (BINFMT_DIR / "register").write_text(QEMU_BINFMT.read_text().strip())


@contextlib.contextmanager
def _board_mounts(root: Path) -> Iterator[None]:
    """/proc and /dev inside the root: the runner reads /proc/self/status, sshd needs /dev/null."""
    mounted = []
    try:
        for args, point in ((["-t", "proc", "proc"], root / "proc"), (["--bind", "/dev"], root / "dev")):
            subprocess.run(["mount", *args, str(point)], check=True)
            mounted.append(point)
        yield
    finally:
        for point in reversed(mounted):
            subprocess.run(["umount", "-l", str(point)], check=False)


def arm64_board_root() -> Path:
    """The arm64 root, built on first use: debootstrap under emulation plus pip, ~10 min, ~500 MB."""
    _require_arm64_tools()
    _ensure_binfmt()
    if (ARM64_ROOT / ARM64_PYTHON.lstrip("/")).exists():
        return ARM64_ROOT
    building = ARM64_ROOT.with_name(ARM64_ROOT.name + ".partial")
    shutil.rmtree(building, ignore_errors=True)
    building.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["debootstrap", "--arch=arm64", "--variant=minbase", "--include=python3,python3-venv,openssh-server",
         "bookworm", str(building), DEBIAN_MIRROR],
        check=True,
    )  # fmt: skip
    # wheels are fetched by this machine's pip (its proxy and CA settings apply) and installed offline
    wheels = building / "opt" / "wheels"
    platforms = [f"--platform=manylinux_2_{glibc}_aarch64" for glibc in (17, 27, 28, 31, 34, 35, 36)]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", *platforms, "--platform=manylinux2014_aarch64", "--python-version=3.11",
         "--implementation=cp", "--abi=cp311", "--only-binary=:all:", *ARM64_PIP, "-d", str(wheels)],
        check=True,
    )  # fmt: skip
    with _board_mounts(building):
        subprocess.run(
            ["chroot", str(building), "/usr/bin/python3", "-m", "venv", str(Path(ARM64_PYTHON).parents[1])], check=True
        )
        subprocess.run(
            [
                "chroot",
                str(building),
                ARM64_PYTHON,
                "-m",
                "pip",
                "install",
                "--no-index",
                "--find-links=/opt/wheels",
                *ARM64_PIP,
            ],
            check=True,
        )
    shutil.rmtree(wheels)
    building.rename(ARM64_ROOT)
    return ARM64_ROOT


@contextlib.contextmanager
def arm64_sshd() -> Iterator[SshServer]:
    """An sshd running as an aarch64 binary under qemu, inside the Debian arm64 root, on 127.0.0.1."""
    root = arm64_board_root()
    with _board_mounts(root):
        folder = root / "tmp" / f"edgecompress-sshd-{os.getpid()}-{time.monotonic_ns()}"
        server = start_sshd(folder, chroot=root)
        try:
            yield server
        finally:
            server.kill()
            shutil.rmtree(folder, ignore_errors=True)
