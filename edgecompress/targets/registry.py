"""Turn the user's `--target` string into a Target.

'local' runs on this machine; 'qemu' or 'qemu:BOARD' runs microcontroller firmware on an emulated
Cortex-M board; 'ssh://user@host[:port]', the name of a file in targets/, or
a path to a .yaml reaches a board over SSH (unknown names get a TargetError from there).
"""

from __future__ import annotations

from typing import Any

from edgecompress.targets.base import Target


def resolve_target(spec: str, **options: Any) -> Target:
    """Build the target named by `spec`; `options` are the CLI's SSH options (identity, known_hosts...)."""
    from edgecompress.targets.qemu import board_of, is_qemu_spec

    if is_qemu_spec(spec):
        from edgecompress.targets.qemu import QemuTarget

        return QemuTarget(board_of(spec))
    if spec == "local":
        from edgecompress.targets.local import LocalTarget

        return LocalTarget(**{k: v for k, v in options.items() if k in ("python",)})
    from edgecompress.targets.ssh import ssh_target_from_spec

    return ssh_target_from_spec(spec, **options)
