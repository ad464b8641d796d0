"""Where a board is and how to reach it: `targets/NAME.yaml` files and `ssh://` URLs.

Both forms end up as one validated `TargetDefinition`, so the SSH code never has to know
which one the user typed. The YAML schema is strict (unknown fields are refused) because a
misspelt `remote_dir:` silently falling back to the default would upload to the wrong disk.
"""

from __future__ import annotations

import getpass
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edgecompress.config_files import explain_validation, read_mapping
from edgecompress.errors import TargetError

SSH_SCHEME = "ssh://"
YAML_SUFFIXES = (".yaml", ".yml")
DEFAULT_REMOTE_DIR = "~/.edgecompress"
DEFAULT_PYTHON = "python3"


class Address(BaseModel):
    """user@host:port of one SSH server (a board or the jump host in front of it)."""

    model_config = ConfigDict(frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(22, ge=1, le=65535)
    user: str = Field(default_factory=getpass.getuser, min_length=1)
    #: the name its host key is checked under in known_hosts, instead of host:port (OpenSSH's HostKeyAlias)
    host_key_alias: str | None = None

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


class TargetDefinition(BaseModel):
    """One board: the fields a `targets/*.yaml` file may hold (see targets/README.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    host: str = Field(min_length=1)
    port: int = Field(22, ge=1, le=65535)
    user: str = Field(default_factory=getpass.getuser, min_length=1)
    identity: Path | None = None
    known_hosts: Path | None = None
    #: where edgecompress keeps its cache and run folders on the board ('~' = the user's home)
    remote_dir: str = Field(DEFAULT_REMOTE_DIR, min_length=1)
    #: the interpreter that runs the runner on the board; may carry flags ("/usr/bin/python3 -I")
    python: str = Field(DEFAULT_PYTHON, min_length=1)
    #: optional bastion in front of the board, "user@host[:port]" (like OpenSSH's ProxyJump)
    jump: str | None = None
    #: the bastion's own private key, when it is not the board's
    jump_identity: Path | None = None
    #: the name the board's host key is checked under in known_hosts (OpenSSH's HostKeyAlias)
    host_key_alias: str | None = None
    description: str = ""

    @field_validator("identity", "known_hosts", "jump_identity")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return None if value is None else Path(value).expanduser()

    @field_validator("python")
    @classmethod
    def _python_is_a_command(cls, value: str) -> str:
        """Split like a shell would, once here, so a stray quote is blamed on the file and not met mid-run."""
        try:
            words = shlex.split(value)
        except ValueError as error:
            raise ValueError(
                f"{value!r} is not a command line ({error}); put a path holding spaces or quotes in quotes, "
                "e.g. python: \"'/opt/my env/bin/python3' -I\""
            ) from None
        if not words:
            raise ValueError("names no interpreter")
        return value

    @field_validator("jump")
    @classmethod
    def _jump_is_an_address(cls, value: str | None) -> str | None:
        if value is not None:
            parse_address(value)  # raises on nonsense so the file is blamed, not the connection
        return value

    @property
    def address(self) -> Address:
        return Address(host=self.host, port=self.port, user=self.user, host_key_alias=self.host_key_alias)

    @property
    def jump_address(self) -> Address | None:
        return None if self.jump is None else parse_address(self.jump)


def parse_address(text: str) -> Address:
    """'user@host[:port]' or 'ssh://user@host[:port]' -> Address (IPv6 hosts in [brackets])."""
    parts = urlsplit(text if text.startswith(SSH_SCHEME) else SSH_SCHEME + text)
    try:
        port = parts.port
    except ValueError as error:
        raise ValueError(f"'{text}' has an invalid port ({error})") from None
    if not parts.hostname:
        raise ValueError(f"'{text}' names no host")
    if parts.password is not None:
        raise ValueError(f"'{text}' contains a password; passwords never go into target addresses")
    fields: dict[str, Any] = {"host": parts.hostname}
    if port is not None:
        fields["port"] = port
    if parts.username:
        fields["user"] = unquote(parts.username)
    return Address(**fields)


def definition_from_url(url: str) -> TargetDefinition:
    """`ssh://user@host[:port][?python=...&remote_dir=...&jump=...]` -> TargetDefinition.

    Query parameters are the YAML fields, so a one-off board needs no file for a venv python.
    """
    parts = urlsplit(url)
    if parts.password is not None:
        raise TargetError(
            f"The target URL '{_without_password(url)}' contains a password.",
            "Passwords are never taken from the command line; put it in an environment variable "
            "and pass its name with --password-env, or use a key (--identity) or ssh-agent.",
        )
    try:
        address = parse_address(f"{parts.scheme}://{parts.netloc}")
    except ValueError as error:
        raise TargetError(f"Target URL '{url}' is not valid: {error}.", "Write it as ssh://user@host[:port].") from None
    if parts.path not in ("", "/"):
        raise TargetError(
            f"Target URL '{url}' has a path ('{parts.path}'); the remote folder is not set that way.",
            f"Use ssh://{address}?remote_dir=/path/on/board, or a targets/NAME.yaml file with remote_dir:.",
        )
    extra = dict(parse_qsl(parts.query, keep_blank_values=True))
    clashing = sorted(set(extra) & {"host", "port", "user"})
    if clashing:
        raise TargetError(
            f"Target URL '{url}' sets {', '.join(clashing)} twice (in the address and as ?{clashing[0]}=).",
            "Put user, host and port in the address part only: ssh://user@host:port.",
        )
    typed = address.model_dump(include=address.model_fields_set)  # the OpenSSH config fills in the rest
    fields = {"name": str(address), **typed, **extra}
    return _validated(fields, source=f"target URL '{url}'")


def definition_from_file(path: Path) -> TargetDefinition:
    """Load and validate one `targets/*.yaml`; the file name is the default target name."""
    document = read_mapping(
        path, TargetError, "target file", "A target file holds host:, user:, ... (see targets/example-rpi4.yaml)."
    )
    if "fleet" in document:
        raise TargetError(
            f"{path} is a fleet file (it lists several targets), not one target.",
            "Pass it where several targets are expected (deploy --target FILE expands fleets), "
            "or name one of its boards.",
        )
    fields = {"name": path.stem, **document}
    return _validated(fields, source=f"target file {path}")


def _validated(fields: dict[str, Any], *, source: str) -> TargetDefinition:
    try:
        return TargetDefinition(**fields)
    except ValidationError as error:
        problems = "; ".join(explain_validation(error, TargetDefinition))
        raise TargetError(
            f"In {source}: {problems}", "Fix it there; targets/README.md describes every field."
        ) from None


def target_search_dirs() -> list[Path]:
    """Folders holding named target files: the user's ./targets first, then the shipped examples.

    The user's own folder wins so that a board they define can shadow an example of the
    same name without editing the installation.
    """
    folders = [Path.cwd() / "targets"]
    try:
        from edgecompress.resources import bundled_dir

        folders.append(bundled_dir("targets"))
    except FileNotFoundError:
        pass
    unique: list[Path] = []
    for folder in folders:
        if folder.is_dir() and folder.resolve() not in [u.resolve() for u in unique]:
            unique.append(folder)
    return unique


def find_target_file(spec: str) -> Path | None:
    """A path the user typed, or NAME -> targets/NAME.yaml in the search folders; None if absent."""
    as_path = Path(spec).expanduser()
    if spec.endswith(YAML_SUFFIXES) or "/" in spec:
        return as_path if as_path.is_file() else None
    for folder in target_search_dirs():
        for suffix in YAML_SUFFIXES:
            candidate = folder / f"{spec}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def known_target_names() -> list[str]:
    return sorted({p.stem for folder in target_search_dirs() for s in YAML_SUFFIXES for p in folder.glob(f"*{s}")})


def load_definition(spec: str) -> TargetDefinition:
    """The user's --target value (URL, name or .yaml path) -> TargetDefinition, or a TargetError saying what exists."""
    if spec.startswith(SSH_SCHEME):
        return definition_from_url(spec)
    path = find_target_file(spec)
    if path is not None:
        return definition_from_file(path)
    names = known_target_names()
    looks_like_address = "@" in spec and "/" not in spec
    fix = (
        f"Did you mean ssh://{spec} ?"
        if looks_like_address
        else "Use local, ssh://user@host[:port], a .yaml file, or the name of a file in ./targets/"
        + (f" (known: {', '.join(names)})." if names else ".")
    )
    raise TargetError(f"Unknown target '{spec}': no such target file and not an ssh:// URL.", fix)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{netloc}" if user else netloc).geturl()
