"""What `deploy --dry-run` checks without connecting to anything, beyond the plan.

Every target is listed with what a deploy would use to reach it, and every file it names is
read now: a target or fleet file must validate, an SSH identity must be a private key file
that can be read, a known_hosts file must parse (and is asked whether it knows the board).
Microcontroller profiles get the firmware toolchain and TFLite Micro sources checked, and the
RAM the model would take on the device estimated (tensor arena measured in TFLite Micro on this
host for the profile's int8 model, plus the runtime) against the RAM budget, beside flash.
A problem is raised as the same error the real deploy would meet, before anything is trained.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecompress.errors import TargetError

if TYPE_CHECKING:
    from edgecompress.data import Dataset
    from edgecompress.model_io import LoadedModel
    from edgecompress.pipeline.request import DeployRequest
    from edgecompress.profiles import Profile

Say = Callable[[str], None]


def check_targets(request: DeployRequest, profile: Profile, say: Say) -> None:
    """One line per target (fleet files expanded); a file that cannot be used raises its TargetError."""
    from edgecompress.targets.fleet import expand_fleet_specs
    from edgecompress.targets.qemu import is_qemu_spec
    from edgecompress.targets.registry import check_target_spec

    for spec in expand_fleet_specs(request.targets):
        check_target_spec(spec)
        if spec == "local":
            say(f"Target local (not contacted): {_local_line(profile)}")
        elif is_qemu_spec(spec):
            say(f"Target {spec} (not started): {_qemu_line(spec, profile)}")
        elif spec == "phone":
            say(f"Target phone (not started): {_phone_line(request.target_options)}")
        else:
            say(f"Target {spec} (not contacted): {_ssh_line(spec, request.target_options)}")


def _local_line(profile: Profile) -> str:
    from edgecompress.hardware import stand_in

    machine = platform.machine() or "unknown"
    standing = stand_in(profile.to_dict(), {"name": "local", "probe": {"platform": {"machine": machine}}})
    where = f"this machine, {machine} {platform.system()}, Python {platform.python_version()}"
    return f"{where}; {standing.words}" if standing else where


def _qemu_line(spec: str, profile: Profile) -> str:
    from edgecompress.micro import cores
    from edgecompress.targets.qemu import board_of

    core = cores.profile_core(profile)
    board = board_of(spec) or (cores.board_for(core).name if core is not None else "none for this core")
    return f"emulated board {board} for the profile's {core.family if core else 'core'}; instructions are counted, not timed"


def _phone_line(options: dict[str, Any]) -> str:
    """Where the page would be served, with the page's runtimes (checked present by check_target_spec)."""
    from edgecompress.targets.phone import DEFAULT_WAIT_S, parse_listen
    from edgecompress.targets.phone_assets import PACKAGES

    host, port = parse_listen(options.get("listen"))
    where = f"{'https' if options.get('tls_cert') else 'http'}://{host}:{port or 'a free port'}"
    runtimes = ", ".join(package.spec for package in PACKAGES)
    return (
        f"a page served on {where} for a browser to open within {options.get('wait') or DEFAULT_WAIT_S:g} s; {runtimes}"
    )


def _ssh_line(spec: str, options: dict[str, Any]) -> str:
    """How the board would be reached, with its identity and known_hosts files checked."""
    from edgecompress.targets.ssh_config import load_definition
    from edgecompress.targets.ssh_hostkeys import DEFAULT_KNOWN_HOSTS

    definition = load_definition(spec)
    identity = _path(options.get("identity")) or definition.identity
    known_hosts = (_path(options.get("known_hosts")) or definition.known_hosts or DEFAULT_KNOWN_HOSTS).expanduser()
    parts = [f"ssh {definition.address}" + (f" via {definition.jump}" if definition.jump else "")]
    parts.append(f"key {_check_identity(identity)}" if identity else "keys from ssh-agent or ~/.ssh")
    parts.append(_check_known_hosts(known_hosts, definition, bool(options.get("accept_new_host_key"))))
    parts.append(f"python {definition.python}, work folder {options.get('remote_dir') or definition.remote_dir}")
    return "; ".join(parts)


def _path(value: Any) -> Path | None:
    return None if value in (None, "") else Path(str(value)).expanduser()


def _check_identity(path: Path) -> str:
    """The private key file: there, readable, a key paramiko reads (an encrypted one is asked for later)."""
    import paramiko

    fix = "Pass the private key file (not the .pub) with --identity, or set identity: in the target file."
    if not path.is_file():
        raise TargetError(f"The SSH identity file {path} does not exist.", fix)
    if not os.access(path, os.R_OK):
        raise TargetError(f"The SSH identity file {path} is not readable by this user.", fix)
    try:
        paramiko.PKey.from_path(path)
    except (TypeError, paramiko.PasswordRequiredException):
        return f"{path} (passphrase-protected: deploy asks for it, or uses ssh-agent)"
    except (ValueError, OSError, paramiko.SSHException) as error:
        raise TargetError(
            f"{path} is not a private key paramiko can read: {error}.",
            "Pass an OpenSSH/PEM private key (ed25519, ecdsa or rsa).",
        ) from None
    return str(path)


def _check_known_hosts(path: Path, definition: Any, accept_new: bool) -> str:
    """known_hosts parses, and says whether it knows the board (deploy refuses an unknown one unless told)."""
    import paramiko

    if not path.exists():
        known = None
    else:
        if not os.access(path, os.R_OK):
            raise TargetError(
                f"The known_hosts file {path} is not readable by this user.", "Pass another with --known-hosts."
            )
        keys = paramiko.HostKeys()
        try:
            keys.load(str(path))
        except (OSError, paramiko.SSHException, ValueError) as error:
            raise TargetError(
                f"Cannot read the known_hosts file {path}: {error}.",
                "Fix or remove the broken line (ssh-keygen -F HOST -f FILE shows an entry), or pass another file with --known-hosts.",
            ) from None
        name = definition.host if definition.port == 22 else f"[{definition.host}]:{definition.port}"
        known = keys.lookup(name) is not None
    if known:
        return f"host key known ({path})"
    if accept_new:
        return f"host key not yet known: --accept-new-host-key records it in {path}"
    return (
        f"host key not in {path}: deploy will refuse the board unless --accept-new-host-key (or ssh-keyscan it first)"
    )


def check_microcontroller(
    request: DeployRequest, profile: Profile, loaded: LoadedModel, dataset: Dataset, say: Say
) -> None:
    """The firmware toolchain and sources, and RAM (arena + runtime) against the RAM budget beside flash."""
    if profile.device_class != "microcontroller":
        return
    say(f"Firmware tools: {_toolchain_line(request)}")
    from edgecompress._tf import quiet_native_output
    from edgecompress.export.tflite import to_tflite
    from edgecompress.micro.budget import RUNTIME_RAM_BYTES, check_budget
    from edgecompress.micro.ops import require_tflm_ops
    from edgecompress.micro.tflm import measure_arena, model_io, open_interpreter

    compression = profile.compression
    with quiet_native_output((1, 2)):
        model = to_tflite(
            loaded.model, mode=compression.ptq, representative=dataset.x_train, io_dtype=compression.io_dtype
        )
    arena = measure_arena(model)
    io = model_io(open_interpreter(model, arena.with_margin_bytes))
    estimate = check_budget(
        profile,
        arena_with_margin=arena.with_margin_bytes,
        input_bytes=io.input.bytes,
        model_flash_bytes=len(model),
        op_count=len(require_tflm_ops(model)),
    )
    whole = dataclasses.replace(  # the device's RAM holds the stack and the runtime's data too
        estimate,
        ram_needed_bytes=estimate.ram_needed_bytes + RUNTIME_RAM_BYTES,
        ram_breakdown={**estimate.ram_breakdown, "stack and runtime data": RUNTIME_RAM_BYTES},
    )
    for line in budget_lines(whole, f"the profile's {compression.ptq} model before compression"):
        say(line)


def budget_lines(estimate: Any, what: str) -> list[str]:
    """'RAM (estimate ...): needed of budget: fits' and the same for flash, with what makes them up."""
    lines = []
    for name, needed, budget, parts, fits in (
        ("RAM", estimate.ram_needed_bytes, estimate.ram_budget_bytes, estimate.ram_breakdown, estimate.ram_fits),
        (
            "Flash",
            estimate.flash_needed_bytes,
            estimate.flash_budget_bytes,
            estimate.flash_breakdown,
            estimate.flash_fits,
        ),
    ):
        field = "model_memory_budget_bytes" if name == "RAM" else "flash_budget_bytes"
        made_of = " + ".join(f"{part} {value:,} B" for part, value in parts.items())
        lines.append(
            f"{name} on the device (estimate for {what}): {needed:,} of {budget:,} B ({field}): "
            f"{'fits' if fits else f'{needed - budget:,} B over'}; {made_of}"
        )
    return lines


def _toolchain_line(request: DeployRequest) -> str:
    from edgecompress.errors import ToolError
    from edgecompress.micro import tflm_tree, toolchain

    found = []
    for name, check in (
        ("Arm toolchain", toolchain.gcc_version),
        ("TFLM sources", lambda: str(tflm_tree.find_tree(_path(request.micro.get("tflm_dir"))).revision)),
        ("QEMU", toolchain.qemu_version_text),
    ):
        try:
            found.append(f"{name} {check()}")
        except ToolError as error:
            found.append(f"{name} missing ({error.fix or error.problem})")
    return "; ".join(found)
