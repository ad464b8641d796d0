"""Turn the user's `--target` string into a Target.

'local' runs on this machine; 'phone' serves a page that runs the artifacts in a browser (a
phone's, or any other); 'qemu' or 'qemu:BOARD' runs microcontroller firmware on an emulated
Cortex-M board; 'ssh://user@host[:port]', the name of a file in targets/, or
a path to a .yaml reaches a board over SSH (unknown names get a TargetError from there).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from edgecompress.targets.base import Target

#: targets named by a word rather than a URL or a file: the word -> (module, class, the options it takes)
BUILTIN: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "local": ("edgecompress.targets.local", "LocalTarget", ("python",)),
    "phone": ("edgecompress.targets.phone", "PhoneTarget", ("listen", "wait", "tls_cert", "tls_key", "progress")),
}


def resolve_target(spec: str, **options: Any) -> Target:
    """Build the target named by `spec`; `options` are the CLI's SSH options (identity, known_hosts...)."""
    from edgecompress.targets.qemu import board_of, is_qemu_spec

    if is_qemu_spec(spec):
        from edgecompress.targets.qemu import QemuTarget

        return QemuTarget(board_of(spec))
    if spec in BUILTIN:
        module, name, takes = BUILTIN[spec]
        target_class = getattr(importlib.import_module(module), name)
        return target_class(**{k: v for k, v in options.items() if k in takes and v is not None})
    from edgecompress.targets.ssh import ssh_target_from_spec

    return ssh_target_from_spec(spec, **options)


def absolute_target_spec(spec: str, base: Path) -> str:
    """`spec` with the target or fleet file it names made absolute, so a resumed run finds it
    from any directory; 'local', URLs and unknown names are returned unchanged."""
    from edgecompress.targets.qemu import is_qemu_spec
    from edgecompress.targets.ssh_config import find_target_file

    if spec in BUILTIN or "://" in spec or is_qemu_spec(spec):
        return spec
    looks_like_path = "/" in spec or spec.endswith((".yaml", ".yml"))
    path = find_target_file(str(base / Path(spec).expanduser()) if looks_like_path else spec)
    return str(path.resolve()) if path is not None else spec


def check_target_spec(spec: str) -> None:
    """Validate a --target value without connecting (for --dry-run): a URL parses, a file loads."""
    from edgecompress.targets.qemu import board_of, is_qemu_spec

    if spec == "local":
        return
    if spec == "phone":
        from edgecompress.targets.phone_assets import find_assets

        find_assets()  # the page's runtimes must be in the cache: the error names `edgecompress phone setup`
        return
    if is_qemu_spec(spec):
        board = board_of(spec)
        if board is not None:
            from edgecompress.errors import TargetError
            from edgecompress.micro.cores import BOARDS

            if board not in BOARDS:
                raise TargetError(
                    f"There is no emulated board called '{board}'.",
                    f"Use one of: {', '.join(sorted(BOARDS))} (e.g. --target qemu:mps2-an386), or plain --target qemu.",
                )
        return
    from edgecompress.targets.ssh_config import load_definition

    load_definition(spec)
