"""The files a run folder keeps next to report.json, read for what the report needs of them.

Everything here is optional except report.json itself: a run from an older version, a
failed resume or a run without significance analysis simply has less to show.
"""

from __future__ import annotations

import json
import logging
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from edgecompress.errors import EdgeCompressError
from edgecompress.run_layout import LAYOUT

log = logging.getLogger("edgecompress.reporting")


class RunFiles:
    """Read-only access to one run folder; every optional file may be absent or unreadable."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir)
        self.problems: list[str] = []  # optional files that exist but could not be used
        self._timings: dict[str, Any] = {}

    def read_report_json(self) -> Any:
        """report.json as JSON, or a clear error when the folder is not a finished run folder
        (its schema is checked by reporting.schema.load_report)."""
        file = self.path / LAYOUT.report
        if not self.path.is_dir():
            raise EdgeCompressError(
                f"'{self.path}' is not a folder.",
                "Pass a run folder that `edgecompress deploy` created, e.g. runs/20261122-101500-model-rpi4.",
            )
        if not file.is_file():
            raise EdgeCompressError(
                f"'{self.path}' has no {LAYOUT.report}, so it is not a finished run folder.",
                "Pass a folder that `edgecompress deploy` finished; a .failed or .partial run can be finished with "
                "`edgecompress deploy --resume FOLDER`.",
            )
        try:
            return json.loads(file.read_text())
        except (OSError, ValueError) as error:
            raise EdgeCompressError(
                f"{file} is not readable JSON ({error}).", "Re-run the deploy that made it, or restore the file."
            ) from error

    # ------------------------------------------------------------------ optional files

    def _json(self, name: str) -> Any:
        file = self.path / name
        if not file.is_file():
            return None
        try:
            return json.loads(file.read_text())
        except (OSError, ValueError) as error:
            self.note(f"{name} is unreadable ({error}); left out")
            return None

    def note(self, message: str) -> None:
        log.warning("%s: %s", self.path, message)
        self.problems.append(message)

    def significance(self) -> dict[str, Any] | None:
        return self._json(LAYOUT.significance)

    def plan(self) -> dict[str, Any] | None:
        return self._json(LAYOUT.plan)

    def id_profile_png(self) -> Path | None:
        file = self.path / LAYOUT.id_profile
        return file if file.is_file() else None

    def artifact_file(self, artifact: dict[str, Any]) -> Path | None:
        file = self.path / LAYOUT.artifacts / artifact.get("path", "")
        return file if artifact.get("path") and file.is_file() else None

    @cached_property
    def _measurement_results(self) -> dict[tuple[Any, Any], dict[str, Any]]:
        """Full runner results keyed by (target, model sha256): independent of file naming."""
        found = {}
        folder = self.path / LAYOUT.measurements
        for file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            if file.name.endswith(".samples.json") or file.name.startswith("rounds@"):
                continue
            document = self._json(f"{LAYOUT.measurements}/{file.name}")
            if isinstance(document, dict) and isinstance(document.get("result"), dict):
                sha = (document["result"].get("model") or {}).get("sha256")
                found[(document.get("target"), sha)] = document["result"]
        return found

    def predictions(self, artifact: dict[str, Any], target: str) -> list[int] | None:
        result = self._measurement_results.get((target, artifact.get("sha256")))
        return None if result is None else (result.get("accuracy") or {}).get("predictions")

    def latency_rounds(self, measurement: dict[str, Any]) -> list[list[float]] | None:
        """The timed samples of one measurement per round: {'kind': 'rounds', 'rounds': [[...], ...]}; a list or the
        runner's {'samples': [...]} (runs before interleaved rounds) is one round."""
        name = measurement.get("latency_samples_file")
        document = self._json(name) if name else None
        if isinstance(document, dict):
            document = document.get("rounds") if document.get("kind") == "rounds" else [document.get("samples")]
        elif isinstance(document, list) and (not document or not isinstance(document[0], list)):
            document = [document]
        if not isinstance(document, list) or not all(isinstance(r, list) for r in document):
            return None
        try:
            return [[float(v) for v in r] for r in document if r]
        except (TypeError, ValueError):
            self.note(f"{name} holds latencies that are not numbers; left out")
            return None

    def latency_samples(self, measurement: dict[str, Any]) -> list[float] | None:
        """Every timed sample of one measurement, all rounds together."""
        rounds = self.latency_rounds(measurement)
        return None if rounds is None else [v for r in rounds for v in r]

    def board_timing(self, target: str) -> Any:
        """The board's interleaved timing rounds (decision.timing.BoardTiming), or None for a run without them."""
        if target not in self._timings:
            from edgecompress.decision.timing import BoardTiming

            saved = self._json(f"{LAYOUT.rounds_stem(target)}.json")
            try:
                self._timings[target] = BoardTiming.from_file(saved) if isinstance(saved, dict) else None
            except (KeyError, IndexError, TypeError, ValueError) as error:
                self.note(f"the timing rounds of {target} are unreadable ({error!r}); left out")
                self._timings[target] = None
        return self._timings[target]

    @cached_property
    def _eval(self) -> Any:
        file = self.path / LAYOUT.eval
        if not file.is_file():
            return None
        try:
            return np.load(file, allow_pickle=False)
        except (OSError, ValueError) as error:
            self.note(f"{LAYOUT.eval} is unreadable ({error}); no disagreement analysis")
            return None

    def eval_labels(self) -> tuple[np.ndarray, list[str]] | None:
        if self._eval is None:
            return None
        return np.asarray(self._eval["y"]).astype(np.int64), [
            str(c) for c in np.asarray(self._eval["class_names"]).reshape(-1)
        ]

    def eval_inputs(self) -> np.ndarray | None:
        return None if self._eval is None else np.asarray(self._eval["x"])
