"""The CI gate: turn a verdict without a recommendation into its own exit code (errors.GateFailed, 10).

The run folder is complete either way; the gate only says the model may not ship under
these rules, naming the rule that stood in the way, so a CI log tells what to change.
"""

from __future__ import annotations

from typing import Any

from edgecompress.errors import GateFailed


def enforce(verdict: dict[str, Any], run_dir: Any = None, *, result: Any = None) -> None:
    """Raise GateFailed when `verdict` recommends nothing; return quietly when it does.

    The error carries `result` (the finished deploy's DeployResult) so a caller can still
    print the table and the verdict before exiting with the gate's code."""
    if verdict.get("recommended"):
        return
    kept = f" The run is complete and kept in {run_dir}." if run_dir else ""
    steps = " ".join(verdict.get("next_steps") or [])
    error = GateFailed(
        f"Gate failed: {verdict.get('reason', 'no artifact passes the acceptance rules.')}{kept}",
        (steps + " " if steps else "") + "Re-judge this run under other rules without measuring again: "
        "edgecompress report RUN_DIR --gate --max-accuracy-drop ... (see `edgecompress report --help`).",
    )
    error.result = result
    error.verdict = verdict  # type: ignore[attr-defined]
    raise error
