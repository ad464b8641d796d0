"""What a tune depends on: the deploy every trial starts from, and the search's own settings.

Kept as tune.json in the tune folder, so `edgecompress tune --resume DIR` continues the same
search from any directory (the deploy part is stored with absolute paths, like request.json).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecompress.errors import EdgeCompressError
from edgecompress.pipeline.request import DeployRequest

TUNE_FILE = "tune.json"
TRIALS = "trials"
SCHEMA = "edgecompress.tune"


@dataclass
class TuneRequest:
    """The search: how many trials, for how long, towards which objectives, on which Ray."""

    deploy: DeployRequest  # what every trial shares (model, profile, data, targets, rules, fine-tuning budget)
    output: str = "tunes"  # folder that receives one sub-folder per tune
    trials: int = 24
    time_budget_s: float | None = None  # no new trial starts after this many seconds of searching
    objectives: list[str] = field(default_factory=lambda: ["accuracy", "size", "latency"])
    seeds: int = 3  # the Pareto set is re-run with this many seeds in all (1: no re-runs)
    ray_address: str | None = None  # None: $RAY_ADDRESS, else a local Ray instance started by tune
    parallel: int | None = None  # trials building at once (None: the cluster's CPUs / cpus_per_trial)
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # GPUs Ray reserves for each trial's build (0: trials see no GPU)
    retries: int = 1  # Ray retries of a trial whose worker died
    search_seed: int = 0  # the sampler's seed
    prior: bool = True  # start from the TwoNN plan and its neighbours (False: random start, for comparison)
    max_reruns: int = 6  # Pareto trials re-run with other seeds, at most

    @classmethod
    def default(cls, name: str) -> Any:
        spec = cls.__dataclass_fields__[name]
        if spec.default_factory is not dataclasses.MISSING:
            return spec.default_factory()
        return spec.default

    def check(self) -> None:
        """Settings that cannot make a search are refused before Ray starts."""
        problems = []
        if self.trials < 1:
            problems.append(f"--trials {self.trials}: at least 1")
        if self.seeds < 1:
            problems.append(f"--seeds {self.seeds}: at least 1 (1 = no re-runs)")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            problems.append("--time-budget: a positive duration such as 30m or 2h")
        if self.parallel is not None and self.parallel < 1:
            problems.append(f"--parallel {self.parallel}: at least 1")
        if self.cpus_per_trial <= 0:
            problems.append(f"--cpus-per-trial {self.cpus_per_trial}: more than 0")
        problems += self._gpu_problems()
        if self.deploy.recipe:
            problems.append("--recipe: a tune searches the recipes itself")
        if problems:
            raise EdgeCompressError(
                "Impossible tune settings: " + "; ".join(problems) + ".",
                "Example: edgecompress tune --profile rpi4 model.h5 --data DIR --trials 24 --time-budget 2h",
            )

    def _gpu_problems(self) -> list[str]:
        """Ray shows a trial only the GPUs it reserved for it: --device and --gpus-per-trial must agree."""
        if self.gpus_per_trial < 0:
            return [f"--gpus-per-trial {self.gpus_per_trial}: 0 or more"]
        if self.deploy.device == "gpu" and self.gpus_per_trial == 0:
            return ["--device gpu: give each trial a GPU with --gpus-per-trial (1, or a fraction to share one)"]
        if self.deploy.device == "cpu" and self.gpus_per_trial > 0:
            return [f"--gpus-per-trial {self.gpus_per_trial} with --device cpu: the GPUs would sit idle"]
        return []

    def to_json(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        document["deploy"] = self.deploy.to_json()
        return {"schema": SCHEMA, "schema_version": 1, **document}

    @classmethod
    def from_json(cls, document: Any, *, where: Path) -> TuneRequest:
        names = {f.name for f in dataclasses.fields(cls)}
        if (
            not isinstance(document, dict)
            or document.get("schema") != SCHEMA
            or not isinstance(document.get("deploy"), dict)
        ):
            raise EdgeCompressError(
                f"{where} is not a tune this edgecompress can resume.",
                "Pass a folder `edgecompress tune` created (it holds tune.json and study.journal).",
            )
        fields = {k: v for k, v in document.items() if k in names}
        fields["deploy"] = DeployRequest.from_json(document["deploy"], where=where)
        return cls(**fields)


def planning(deploy: DeployRequest) -> DeployRequest:
    """The request the driver plans with: the trials' fine-tuning runs in Ray workers (on the GPUs
    --gpus-per-trial reserves), so the driver, which trains nothing, need not see a GPU itself."""
    return dataclasses.replace(deploy, device="auto")


def parse_duration(text: str | None) -> float | None:
    """'90s', '45m', '2h', '1.5h' or plain seconds -> seconds."""
    if text is None or text == "":
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    try:
        seconds = float(value[:-1]) * units[value[-1]] if value[-1:] in units else float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds):  # 'nan' and 'inf' parse as floats but are no budget
        raise EdgeCompressError(f"--time-budget {text!r} is not a duration.", "Write it as 90s, 45m, 2h or 1.5h.")
    return seconds


__all__ = ["SCHEMA", "TRIALS", "TUNE_FILE", "TuneRequest", "parse_duration", "planning"]
