"""What every benchmark's summary shares: one std definition, and re-summarising stored runs without re-running them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: every benchmark's std: the sample standard deviation over seeds
STD_DEFINITION = "sample standard deviation over seeds (n - 1 in the denominator)"


def resummarise(
    path: Path, summarise_runs: Callable[[list[dict[str, Any]]], dict[str, Any]], print_summary: Callable[[Any], None]
) -> None:
    """Rewrite the summary of a results file from its stored runs: every measured figure is kept, only how it is
    summarised (the std definition, say) follows the script."""
    document = json.loads(path.read_text())
    document["summary"] = summarise_runs(document["runs"])
    document["std"] = STD_DEFINITION
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print_summary(document["summary"])
    print(f"\nrewrote the summary of {path}")
