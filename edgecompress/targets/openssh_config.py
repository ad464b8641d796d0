"""What the user's OpenSSH config (`~/.ssh/config`, or `--ssh-config FILE`) says about a board.

`--target ssh://mypi` must work wherever `ssh mypi` does, so a board's host name is looked up
there with paramiko's SSHConfig (Host and Match blocks, first value wins, %-tokens expanded)
and fills in what the URL or the target file leaves out; a field given there always wins.

Honoured: HostName, User, Port, IdentityFile (the first that exists, as ssh tries them in
order), ProxyJump (one hop; the jump host is looked up the same way, with its own
IdentityFile), UserKnownHostsFile (the first file) and HostKeyAlias (the name host keys are
checked under). Never honoured: StrictHostKeyChecking `no` or `accept-new` -- edgecompress
trusts a new host key only when --accept-new-host-key says so. Refused with a clear message:
ProxyCommand and ProxyJump chains of two or more hops. Not followed (paramiko cannot): Include.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from edgecompress.errors import TargetError
from edgecompress.targets.ssh_config import TargetDefinition, parse_address

DEFAULT_SSH_CONFIG = Path("~/.ssh/config")


@dataclass(frozen=True)
class HostEntry:
    """The options an OpenSSH config gives for one host name (None: the config does not say)."""

    alias: str
    source: Path
    hostname: str | None = None
    user: str | None = None
    port: int | None = None
    identities: tuple[Path, ...] = ()
    proxy_jump: str | None = None
    proxy_command: str | None = None
    host_key_alias: str | None = None
    known_hosts: Path | None = None


def config_path(given: str | Path | None) -> Path | None:
    """The config to read: `--ssh-config FILE` (which must exist), else ~/.ssh/config when there is one."""
    if given not in (None, ""):
        path = Path(str(given)).expanduser()
        if not path.is_file():
            raise TargetError(
                f"--ssh-config names {path}, which is not a file.",
                "Pass an OpenSSH client config file (like ~/.ssh/config), or leave out --ssh-config.",
            )
        return path
    default = DEFAULT_SSH_CONFIG.expanduser()
    return default if default.is_file() else None


def lookup(host: str, path: Path) -> HostEntry:
    """What the config at `path` says about `host` (an entry with no fields when it says nothing)."""
    try:
        options: dict[str, Any] = paramiko.SSHConfig.from_path(str(path)).lookup(host)
    except (OSError, UnicodeDecodeError, paramiko.ssh_exception.ConfigParseError) as error:
        raise TargetError(
            f"Cannot read the SSH config {path}: {error}.",
            "Fix the line it names (`ssh -G HOST` shows how OpenSSH reads the file), or pass another with --ssh-config.",
        ) from None
    hostname = options.get("hostname")
    port = options.get("port")
    known_hosts = (options.get("userknownhostsfile") or "").split()
    return HostEntry(
        alias=host,
        source=path,
        hostname=hostname if hostname and hostname != host else None,
        user=options.get("user"),
        port=_port(port, host, path) if port else None,
        identities=tuple(Path(p).expanduser() for p in options.get("identityfile", [])),
        proxy_jump=_unless_none(options.get("proxyjump")),
        proxy_command=_unless_none(options.get("proxycommand")),
        host_key_alias=options.get("hostkeyalias"),
        known_hosts=Path(known_hosts[0]).expanduser() if known_hosts else None,
    )


def resolve(definition: TargetDefinition, path: Path | None) -> TargetDefinition:
    """`definition` with what the OpenSSH config says about its host where the URL or file is silent."""
    if path is None:
        return definition
    entry = lookup(definition.host, path)
    given = definition.model_fields_set
    update: dict[str, Any] = {"host": entry.hostname}  # the host typed is the alias the config names
    for field, value in (
        ("user", entry.user),
        ("port", entry.port),
        ("known_hosts", entry.known_hosts),
        ("host_key_alias", entry.host_key_alias),
    ):
        if value is not None and field not in given:
            update[field] = value
    if "identity" not in given and entry.identities:
        update["identity"] = _identity(entry)
    if "jump" not in given:
        update.update(_jump(entry, path))
    if update.get("jump") is None and entry.proxy_command and "jump" not in given:
        raise TargetError(
            f"{path} reaches Host {entry.alias} through a ProxyCommand, which edgecompress does not run.",
            "Use ProxyJump for a bastion (one hop), or give the board's address directly "
            "(ssh://user@host:port, or a targets/NAME.yaml file with jump:).",
        )
    resolved = definition.model_copy(update={k: v for k, v in update.items() if v is not None})
    if definition.name == str(definition.address):  # an ssh:// URL: named by what the user typed, with what it reached
        resolved = resolved.model_copy(update={"name": f"{resolved.user}@{definition.host}:{resolved.port}"})
    return resolved


def _jump(entry: HostEntry, path: Path) -> dict[str, Any]:
    """ProxyJump as the definition's `jump` ("user@host:port") and the jump host's own identity."""
    if entry.proxy_jump is None:
        return {}
    if "," in entry.proxy_jump:
        raise TargetError(
            f"{path} reaches Host {entry.alias} through a chain of jump hosts (ProxyJump {entry.proxy_jump}); "
            "edgecompress goes through one.",
            "Give the board a single ProxyJump (the last bastion, reachable from here), or connect to it directly.",
        )
    try:
        typed = parse_address(entry.proxy_jump)
    except ValueError as error:
        raise TargetError(
            f"{path} gives Host {entry.alias} the ProxyJump '{entry.proxy_jump}', which is not [user@]host[:port]: {error}.",
            "Fix the ProxyJump line.",
        ) from None
    bastion = lookup(typed.host, path)
    typed_fields = typed.model_fields_set  # what the ProxyJump line says wins over the bastion's own Host block
    port = typed.port if "port" in typed_fields else (bastion.port or typed.port)
    user = typed.user if "user" in typed_fields else (bastion.user or typed.user)
    return {
        "jump": f"{user}@{_bracketed(bastion.hostname or typed.host)}:{port}",
        "jump_identity": _identity(bastion) if bastion.identities else None,
    }


def _identity(entry: HostEntry) -> Path:
    """The first IdentityFile that exists (ssh skips missing ones); one that cannot be read is refused now."""
    for path in entry.identities:
        if path.exists():
            _check_key(path, entry)
            return path
    listed = ", ".join(str(p) for p in entry.identities)
    raise TargetError(
        f"{entry.source} gives Host {entry.alias} the IdentityFile {listed}, and none of them exists.",
        "Fix the IdentityFile line (the private key, not the .pub), or pass the key with --identity.",
    )


def _check_key(path: Path, entry: HostEntry) -> None:
    """Read the key once here so a broken one is blamed on the config line, not met mid-connection."""
    problem = None
    if not path.is_file() or not os.access(path, os.R_OK):
        problem = "cannot be read (not a readable file)"
    else:
        try:
            paramiko.PKey.from_path(path)
        except paramiko.PasswordRequiredException:
            return  # encrypted: unlocked when connecting (prompt or ssh-agent)
        except (ValueError, OSError, TypeError, paramiko.SSHException) as error:
            problem = f"is not a private key paramiko can read ({error})"
    if problem is not None:
        raise TargetError(
            f"{path}, the IdentityFile that {entry.source} gives for Host {entry.alias}, {problem}.",
            "Point IdentityFile at an OpenSSH/PEM private key (ed25519, ecdsa or rsa; not the .pub) that this user "
            "can read, or pass another key with --identity.",
        )


def _port(text: str, host: str, path: Path) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise TargetError(
            f"{path} gives Host {host} the Port '{text}', which is not a port number.", "Fix the Port line."
        )
    return port


def _unless_none(value: str | None) -> str | None:
    return None if value is None or value.strip().lower() == "none" else value.strip()


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


__all__ = ["DEFAULT_SSH_CONFIG", "HostEntry", "config_path", "lookup", "resolve"]
