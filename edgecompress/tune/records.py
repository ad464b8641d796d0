"""The tune folder and what it remembers about every trial (trials.json), written as it happens.

<tune>/tune.json        the TuneRequest (what --resume replays) and the search's status
<tune>/study.journal    Optuna's journal: every ask and tell
<tune>/trials.json      one record per trial: candidate, state, figures, run folder, worker, times
<tune>/trials/          one normal run folder per trial (`edgecompress report` / `compare` work on them)
<tune>/workers/         which Ray worker process built each trial, per attempt
<tune>/tune-report.*    the Pareto report, figures/ and ship/ (the recommended artifact's bundle)
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgecompress.errors import EdgeCompressError
from edgecompress.run_folder import json_default, write_atomically
from edgecompress.run_layout import slug

RECORDS = "trials.json"
LOG = "tune.log"

#: a trial's states: built and measured; refused before training (schema, budget); the same plan as an
#: earlier trial; failed (in its worker, on a board, or its worker died)
COMPLETE, INFEASIBLE, DUPLICATE, FAILED, RUNNING = "complete", "infeasible", "duplicate", "failed", "running"


@dataclass
class TrialRecord:
    name: str  # the run folder's name: trial-0007, or trial-0007-seed1 for a re-run
    number: int | None  # the Optuna trial; None for a re-run
    seed: int
    candidate: dict[str, Any]
    overrides: dict[str, Any]
    state: str = RUNNING
    reason: str = ""
    run_dir: str | None = None
    artifact: str | None = None  # the candidate artifact measured
    figures: dict[str, float | None] = field(default_factory=dict)
    passes: bool | None = None
    constraints: list[float] = field(default_factory=list)
    same_as: str | None = None  # a duplicate's earlier trial
    rerun_of: str | None = None
    workers: list[dict[str, Any]] = field(default_factory=list)
    build_s: float | None = None
    measure_s: float | None = None
    queued_s: float | None = None  # waiting between its build and its measurement (boards busy)
    measurements_reused: list[str] = field(default_factory=list)
    plan_strategy: str | None = None

    @property
    def done(self) -> bool:
        return self.state != RUNNING

    def value(self, objective: str) -> float:
        """A measured figure of a complete trial (every objective of one is measured)."""
        value = self.figures.get(objective)
        if value is None:
            raise KeyError(f"{self.name} has no {objective}")
        return float(value)


class TuneFolder:
    """The folder of one tune; trials.json is rewritten atomically after every change (threads share it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.records: dict[str, TrialRecord] = {}
        file = path / RECORDS
        if file.is_file():
            try:
                document = json.loads(file.read_text())
                self.records = {r["name"]: TrialRecord(**r) for r in document["trials"]}
            except (OSError, ValueError, KeyError, TypeError) as error:
                raise EdgeCompressError(
                    f"{file} is damaged ({error}).",
                    "Start a new tune; the trials' run folders stay usable with `edgecompress report`.",
                ) from None

    @classmethod
    def create(cls, output: Path, model: str, profile: str) -> TuneFolder:
        output.mkdir(parents=True, exist_ok=True)
        base = f"{time.strftime('%Y%m%d-%H%M%S')}-{slug(Path(model).stem)}-{slug(profile)}-tune"
        for attempt in range(1000):
            path = output / (base if attempt == 0 else f"{base}-{attempt}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return cls(path)
        raise EdgeCompressError(f"Could not find a free tune folder name under {output}.", "Clean up old tunes there.")

    def put(self, record: TrialRecord) -> None:
        with self._lock:
            self.records[record.name] = record
            self._write()

    def save(self) -> None:
        with self._lock:
            self._write()

    def _write(self) -> None:
        document = {"trials": [asdict(r) for r in sorted(self.records.values(), key=_order)]}
        write_atomically(self.path / RECORDS, (json.dumps(document, indent=2, default=json_default) + "\n").encode())

    def write_json(self, name: str, data: Any) -> Path:
        return write_atomically(self.path / name, (json.dumps(data, indent=2, default=json_default) + "\n").encode())

    def read_json(self, name: str, default: Any = None) -> Any:
        file = self.path / name
        return json.loads(file.read_text()) if file.is_file() else default

    def searched(self) -> list[TrialRecord]:
        """The search's trials (not the re-runs), in order."""
        return sorted((r for r in self.records.values() if r.rerun_of is None), key=_order)

    def reruns_of(self, name: str) -> list[TrialRecord]:
        return sorted((r for r in self.records.values() if r.rerun_of == name), key=lambda r: r.seed)


def _order(record: TrialRecord) -> tuple[int, int, str]:
    return (record.number if record.number is not None else 10**9, record.seed, record.name)


__all__ = ["COMPLETE", "DUPLICATE", "FAILED", "INFEASIBLE", "LOG", "RECORDS", "RUNNING", "TrialRecord", "TuneFolder"]
