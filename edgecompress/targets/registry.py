"""Turn the user's `--target` string into a Target.

'local' runs on this machine; 'ssh://user@host[:port]' or the name of a file in targets/
(or a path to a .yaml) reaches a board over SSH.
"""

from __future__ import annotations

from typing import Any

from edgecompress.errors import TargetError
from edgecompress.targets.base import Target


def resolve_target(spec: str, **options: Any) -> Target:
    """Build the target named by `spec`; `options` are the CLI's SSH options (identity, known_hosts...)."""
    if spec in ("local", "localhost-runner"):
        from edgecompress.targets.local import LocalTarget

        return LocalTarget(**{k: v for k, v in options.items() if k in ("python",)})
    try:
        from edgecompress.targets.ssh import ssh_target_from_spec
    except ImportError:  # pragma: no cover - SSH target not built yet
        ssh_target_from_spec = None
    if ssh_target_from_spec is not None:
        return ssh_target_from_spec(spec, **options)
    raise TargetError(
        f"Unknown target '{spec}'.",
        "Use --target local (run on this machine).",
    )
