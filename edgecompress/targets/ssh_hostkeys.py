"""Whom we are talking to: the known_hosts policy for boards and jump hosts.

A measurement is only worth something if it came from the board the user meant, and the
upload hands that machine a model, so host keys are checked like OpenSSH's
`StrictHostKeyChecking=yes`: an unknown key is refused with its fingerprint (accepted only
when the user says so, and then appended to known_hosts), and a changed key is refused
always -- no option turns that into a silent re-trust.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import paramiko

from edgecompress.errors import TargetError

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")


class UnknownHostKey(Exception):
    """Raised from inside paramiko's connect; turned into a TargetError by `host_key_error`."""

    def __init__(self, hostname: str, key: paramiko.PKey, known_hosts: Path) -> None:
        super().__init__(hostname)
        self.hostname, self.key, self.known_hosts = hostname, key, known_hosts


def fingerprint(key: paramiko.PKey) -> str:
    """'ssh-ed25519 SHA256:...' exactly as `ssh-keygen -lf` and OpenSSH's prompt show it."""
    return f"{key.get_name()} {key.fingerprint}"


class KnownHostsPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse unknown hosts, or record them when the user passed --accept-new-host-key."""

    def __init__(self, known_hosts: Path, accept_new: bool) -> None:
        self.known_hosts = known_hosts
        self.accept_new = accept_new

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if not self.accept_new:
            raise UnknownHostKey(hostname, key, self.known_hosts)
        record_host_key(self.known_hosts, hostname, key)
        client.get_host_keys().add(hostname, key.get_name(), key)


def load_known_hosts(client: paramiko.SSHClient, known_hosts: Path) -> None:
    """Give the client the keys it must match; a missing file simply means 'nothing known yet'."""
    if not known_hosts.exists():
        return
    try:
        client.get_host_keys().load(str(known_hosts))
    except (OSError, paramiko.SSHException, paramiko.hostkeys.InvalidHostKey, ValueError) as error:
        detail = f"line {error.line!r}" if isinstance(error, paramiko.hostkeys.InvalidHostKey) else str(error)
        raise TargetError(
            f"Cannot read the known_hosts file {known_hosts}: {detail}.",
            "Fix or remove the broken line (ssh-keygen -F HOST -f FILE shows an entry), or pass another file with --known-hosts.",
        ) from None


def record_host_key(known_hosts: Path, hostname: str, key: paramiko.PKey) -> None:
    """Append one line; never rewrite the file, so the user's comments and other entries survive."""
    known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
    needs_newline = (
        known_hosts.exists() and known_hosts.stat().st_size > 0 and not known_hosts.read_bytes().endswith(b"\n")
    )
    fd = os.open(known_hosts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as handle:
        handle.write(("\n" if needs_newline else "") + line)


def host_key_error(error: BaseException, hostname: str, port: int, known_hosts: Path) -> TargetError | None:
    """The user-facing refusal for an unknown or changed host key; None for other errors."""
    entry = hostname if port == 22 else f"[{hostname}]:{port}"
    if isinstance(error, UnknownHostKey):
        return TargetError(
            f"The SSH host key of {entry} is not in {known_hosts}: the server offered {fingerprint(error.key)}. "
            "edgecompress does not trust a board it has never seen.",
            f"Check the fingerprint on the board itself (ssh-keygen -lf /etc/ssh/ssh_host_{_short_type(error.key)}_key.pub); "
            f"if it matches, run again with --accept-new-host-key to record it in {known_hosts}.",
        )
    if isinstance(error, paramiko.BadHostKeyException):
        return TargetError(
            f"WARNING: THE SSH HOST KEY OF {entry} HAS CHANGED. {known_hosts} expects {fingerprint(error.expected_key)} "
            f"but the server offered {fingerprint(error.key)}. Someone may be intercepting the connection "
            "(man-in-the-middle), or the board was re-installed. Nothing was sent.",
            "Do not continue until you know why the key changed. If the board really was re-installed, remove the "
            f"old entry with: ssh-keygen -R {shlex.quote(entry)} -f {shlex.quote(str(known_hosts))} ; then connect again with --accept-new-host-key.",
        )
    return None


def _short_type(key: paramiko.PKey) -> str:
    """'ssh-ed25519' -> 'ed25519', 'ecdsa-sha2-nistp256' -> 'ecdsa': the host key file's name part."""
    name = key.get_name()
    return "ecdsa" if name.startswith("ecdsa") else name.removeprefix("ssh-")
