"""One authenticated SSH connection to a board, and running commands over it.

Everything that can go wrong on the wire is sorted here into two kinds: `ConnectionLost`
(the network or the server went away; worth a retry) and TargetError (the user must act:
wrong key, untrusted host, unknown host name). SshTarget builds its retry loop on that split.
Commands are always given as argument lists and quoted with shlex, so a remote path with
a space or a `;` in it stays one argument.
"""

from __future__ import annotations

import getpass
import logging
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import paramiko

from edgecompress.errors import TargetError
from edgecompress.targets.base import printable
from edgecompress.targets.ssh_config import Address, TargetDefinition
from edgecompress.targets.ssh_hostkeys import DEFAULT_KNOWN_HOSTS, KnownHostsPolicy, host_key_error, load_known_hosts

log = logging.getLogger("edgecompress.targets.ssh")

LineCallback = Callable[[str], None]
_POLL_S = 0.02
_KEEPALIVE_S = 10


#: a board's answer on stdout is JSON of a few hundred KiB at most; past this it is refused
MAX_STDOUT_BYTES = 64 << 20
#: of a board's stderr (its log), the last part kept
MAX_STDERR_BYTES = 1 << 20


class ConnectionLost(Exception):
    """The SSH connection broke or could not be made for a reason that may go away (retry it)."""


class CommandTimeout(Exception):
    """A remote command outlived its deadline."""


class Cancelled(Exception):
    """The user asked to stop (Ctrl-C in a fleet run, or Target.cancel())."""


class SftpUnavailable(Exception):
    """The server is up but offers no working SFTP subsystem (stripped images, dropbear without sftp-server)."""


@dataclass(frozen=True)
class ConnectOptions:
    """How to authenticate and whom to trust; comes from the CLI options and the target file."""

    identity: Path | None = None
    known_hosts: Path | None = None  # None: the target file's, else ~/.ssh/known_hosts
    accept_new_host_key: bool = False
    password_env: str | None = None
    connect_timeout: float = 10.0


class PasswordSource:
    """A password from an environment variable or a prompt, asked for at most once, kept only in memory."""

    def __init__(self, env_name: str | None) -> None:
        self.env_name = env_name
        self._password: str | None = None
        self._lock = threading.Lock()

    def get(self, address: Address) -> str | None:
        with self._lock:
            if self._password is None:
                self._password = self._ask(address)
            return self._password

    def _ask(self, address: Address) -> str | None:
        if self.env_name:
            value = os.environ.get(self.env_name)
            if value is None:
                raise TargetError(
                    f"--password-env names the environment variable {self.env_name}, but it is not set.",
                    f"Export it first (read -s {shlex.quote(self.env_name)}; export {shlex.quote(self.env_name)}), or use a key instead.",
                )
            return value
        if sys.stdin is not None and sys.stdin.isatty():
            return getpass.getpass(f"Password for {address}: ")
        return None


@dataclass(frozen=True)
class CommandResult:
    """What a remote command left behind; `status` is -1 when it died from a signal."""

    status: int
    stdout: bytes
    stderr: bytes

    def stderr_tail(self, lines: int = 12) -> str:
        return "\n".join(map(printable, self.stderr.decode(errors="replace").strip().splitlines()[-lines:]))


class Connection:
    """An open SSH session (plus the jump host's, if any) with lazy SFTP."""

    def __init__(self, client: paramiko.SSHClient, jump: paramiko.SSHClient | None, address: Address) -> None:
        self.client, self.jump, self.address = client, jump, address
        self._sftp: paramiko.SFTPClient | None = None
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(_KEEPALIVE_S)

    @property
    def alive(self) -> bool:
        transport = self.client.get_transport()
        return transport is not None and transport.is_active()

    def sftp(self) -> paramiko.SFTPClient:
        """The SFTP session; SftpUnavailable when the server refuses it but the link is fine."""
        if self._sftp is None:
            try:
                self._sftp = self.client.open_sftp()
            except (paramiko.SSHException, EOFError, OSError) as error:
                if not self.alive:
                    raise ConnectionLost(f"opening SFTP failed: {error}") from error
                # OpenSSH closes the channel when no `Subsystem sftp` is configured; a configured
                # but missing sftp-server binary ends the channel during the version exchange.
                raise SftpUnavailable(f"{type(error).__name__}: {error}") from error
        return self._sftp

    def start(self, argv: Sequence[str]) -> paramiko.Channel:
        """Start `argv` on the board without a terminal (stdout and stderr stay separate)."""
        command = shlex.join(argv)
        log.debug("%s$ %s", self.address, command)
        try:
            channel = self.client.get_transport().open_session(timeout=30)
            channel.exec_command(command)
        except (paramiko.SSHException, EOFError, OSError, AttributeError) as error:
            raise ConnectionLost(f"starting a remote command failed: {error}") from error
        return channel

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        on_stderr_line: LineCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> CommandResult:
        """Run `argv` to completion; stderr lines are handed to `on_stderr_line` as they arrive."""
        channel = self.start(argv)
        try:
            return self._collect(channel, time.monotonic() + timeout, on_stderr_line, cancel)
        finally:
            channel.close()

    def run_with_input(
        self, argv: Sequence[str], blocks: Iterable[bytes], *, timeout: float, cancel: threading.Event | None = None
    ) -> CommandResult:
        """Run `argv` with `blocks` streamed to its stdin, then EOF; a command that stops reading early still reports.

        No terminal is allocated, so the bytes arrive exactly as sent (binary safe).
        """
        channel = self.start(argv)
        deadline = time.monotonic() + timeout
        try:
            for block in blocks:
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                if time.monotonic() > deadline:
                    raise CommandTimeout()
                try:
                    channel.sendall(block)
                except (OSError, EOFError, paramiko.SSHException) as error:
                    if not self.alive:
                        raise ConnectionLost(f"the connection dropped while sending data: {error}") from error
                    break  # the command exited without reading everything; its status and stderr say why
            else:
                channel.shutdown_write()
            return self._collect(channel, deadline, None, cancel)
        finally:
            channel.close()

    def _collect(
        self, channel: paramiko.Channel, deadline: float, on_line: LineCallback | None, cancel: threading.Event | None
    ) -> CommandResult:
        stdout, stderr = bytearray(), bytearray()
        partial = b""
        while True:
            busy = False
            while channel.recv_ready():
                stdout += channel.recv(1 << 16)
                busy = True
                if len(stdout) > MAX_STDOUT_BYTES:
                    channel.close()
                    raise TargetError(
                        f"The board sent more than {MAX_STDOUT_BYTES >> 20} MiB on standard output for one command; "
                        "edgecompress stopped reading (a runner answers with a few hundred KiB of JSON at most).",
                        "Check what the board's Python prints on start-up (sitecustomize, a login banner in ~/.bashrc) "
                        "and run the command by hand to see it.",
                    )
            while channel.recv_stderr_ready():
                chunk = channel.recv_stderr(1 << 16)
                stderr += chunk
                del stderr[:-MAX_STDERR_BYTES]  # a log: its end is what explains a failure
                partial = _emit_lines(partial + chunk, on_line)[-MAX_STDERR_BYTES:]
                busy = True
            if channel.exit_status_ready() and not (channel.recv_ready() or channel.recv_stderr_ready()):
                break
            if not self.alive:
                raise ConnectionLost("the connection dropped while a remote command was running")
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            if time.monotonic() > deadline:
                raise CommandTimeout()
            if not busy:
                time.sleep(_POLL_S)
        status = channel.recv_exit_status()
        if status == -1 and not self.alive:
            raise ConnectionLost("the connection dropped before the remote command reported its exit status")
        _emit_lines(partial + b"\n", on_line)
        return CommandResult(status, bytes(stdout), bytes(stderr))

    def close(self) -> None:
        for closable in (self._sftp, self.client, self.jump):
            if closable is not None:
                try:
                    closable.close()
                except Exception:  # noqa: BLE001 - closing a dead connection may fail in many ways
                    pass
        self._sftp = None


def _emit_lines(buffer: bytes, on_line: LineCallback | None) -> bytes:
    *complete, rest = buffer.split(b"\n")
    if on_line is not None:
        for line in complete:
            text = line.decode(errors="replace").rstrip()
            if text:
                on_line(text)
    return rest


def open_connection(definition: TargetDefinition, options: ConnectOptions, passwords: PasswordSource) -> Connection:
    """Connect (through the jump host if the definition names one), verify the host key, authenticate."""
    identity = options.identity or definition.identity
    known_hosts = (options.known_hosts or definition.known_hosts or DEFAULT_KNOWN_HOSTS).expanduser()
    pkey = load_identity(identity)
    if definition.jump_address is None:
        client = _authenticated_client(
            definition.address, pkey, known_hosts, options, passwords, open_sock=lambda: None, identity=identity
        )
        return Connection(client, None, definition.address)
    jump_identity = definition.jump_identity or identity  # a bastion may have a key of its own (ssh config)
    jump_key = pkey if jump_identity == identity else load_identity(jump_identity)
    jump_client = _authenticated_client(
        definition.jump_address,
        jump_key,
        known_hosts,
        options,
        passwords,
        open_sock=lambda: None,
        identity=jump_identity,
    )

    def tunnel() -> paramiko.Channel:
        try:
            return jump_client.get_transport().open_channel(
                "direct-tcpip", (definition.host, definition.port), ("127.0.0.1", 0), timeout=options.connect_timeout
            )
        except (paramiko.SSHException, OSError, EOFError) as error:
            raise ConnectionLost(
                f"the jump host {definition.jump_address} could not reach {definition.address}: {error}"
            ) from error

    try:
        client = _authenticated_client(
            definition.address, pkey, known_hosts, options, passwords, open_sock=tunnel, identity=identity
        )
    except BaseException:
        jump_client.close()
        raise
    return Connection(client, jump_client, definition.address)


def load_identity(path: Path | None) -> paramiko.PKey | None:
    """Read the private key the user named; an encrypted one is unlocked by prompt, never from a file."""
    if path is None:
        return None
    path = Path(path).expanduser()
    if not path.is_file():
        raise TargetError(
            f"The SSH identity file {path} does not exist.",
            "Pass the private key file (not the .pub) with --identity, or set identity: in the target file.",
        )
    try:
        return paramiko.PKey.from_path(path)
    except (TypeError, paramiko.PasswordRequiredException):
        if sys.stdin is not None and sys.stdin.isatty():
            try:
                return paramiko.PKey.from_path(path, password=getpass.getpass(f"Passphrase for {path}: "))
            except (TypeError, ValueError, paramiko.SSHException) as error:
                raise TargetError(f"Could not unlock {path}: {error}.", "Check the passphrase.") from None
        raise TargetError(
            f"The SSH key {path} is protected by a passphrase and there is no terminal to ask for it.",
            f"Load it into ssh-agent once (ssh-add {shlex.quote(str(path))}) and leave out --identity; edgecompress uses the agent.",
        ) from None
    except (ValueError, OSError, paramiko.SSHException) as error:
        raise TargetError(
            f"{path} is not a private key paramiko can read: {error}.",
            "Pass an OpenSSH/PEM private key (ed25519, ecdsa or rsa).",
        ) from None


def _authenticated_client(
    address: Address,
    pkey: paramiko.PKey | None,
    known_hosts: Path,
    options: ConnectOptions,
    passwords: PasswordSource,
    *,
    open_sock: Callable[[], paramiko.Channel | None],
    identity: Path | None = None,
) -> paramiko.SSHClient:
    """Keys and agent first; a password only if they fail and one can be had (env var or prompt)."""
    try:
        return _connect_once(address, pkey, known_hosts, options, sock=open_sock(), password=None)
    except paramiko.AuthenticationException as first:
        password = passwords.get(address)
        if password is None:
            raise _auth_error(address, pkey, identity, options, first) from None
    try:
        return _connect_once(address, pkey, known_hosts, options, sock=open_sock(), password=password)
    except paramiko.AuthenticationException as second:
        raise _auth_error(address, pkey, identity, options, second) from None


def _connect_once(
    address: Address,
    pkey: paramiko.PKey | None,
    known_hosts: Path,
    options: ConnectOptions,
    *,
    sock: paramiko.Channel | None,
    password: str | None,
) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    load_known_hosts(client, known_hosts)
    client.set_missing_host_key_policy(KnownHostsPolicy(known_hosts, options.accept_new_host_key))
    timeout = options.connect_timeout
    # paramiko checks the host key under the name and port it connects to; with a HostKeyAlias
    # it connects over a socket opened here and is given the alias (port 22: the bare name, as OpenSSH)
    key_host, key_port = (address.host_key_alias, 22) if address.host_key_alias else (address.host, address.port)
    try:
        if address.host_key_alias and sock is None:
            sock = socket.create_connection((address.host, address.port), timeout=timeout)
        client.connect(
            key_host,
            port=key_port,
            username=address.user,
            pkey=pkey,
            password=password,
            allow_agent=True,
            look_for_keys=pkey is None,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            sock=sock,
        )
        return client
    except BaseException as error:
        client.close()
        refusal = host_key_error(error, key_host, key_port, known_hosts)
        if refusal is not None:
            raise refusal from None
        if isinstance(error, paramiko.AuthenticationException):
            raise
        if isinstance(error, socket.gaierror):
            raise TargetError(
                f"Cannot resolve the host name '{address.host}': {error.strerror}.",
                "Check the host in the target (or its DNS / mDNS name, e.g. raspberrypi.local).",
            ) from None
        if isinstance(error, (paramiko.SSHException, EOFError, OSError)):
            raise ConnectionLost(f"could not connect to {address}: {error or type(error).__name__}") from error
        raise


def _auth_error(
    address: Address, pkey: paramiko.PKey | None, identity: Path | None, options: ConnectOptions, detail: object
) -> TargetError:
    key = f"the key {pkey.fingerprint}" if pkey is not None else "ssh-agent and the keys in ~/.ssh"
    password = f", and the password from ${options.password_env}" if options.password_env else ""
    public = shlex.quote(f"{Path(identity).expanduser()}.pub") if identity is not None else "KEY.pub"
    return TargetError(
        f"The board {address} refused to log in as '{address.user}' with {key}{password} ({detail}).",
        f"Authorize your public key on the board (ssh-copy-id -i {public} -p {address.port} "
        f"{shlex.quote(f'{address.user}@{address.host}')}) "
        "and pass the private key with --identity or load it into ssh-agent; or give --password-env VAR.",
    )
