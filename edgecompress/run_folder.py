"""A run's folder on disk: where artifacts, measurements, logs and the report land.

A run works in `NAME.partial/`; only a run that finished becomes `NAME/`, and one that
failed becomes `NAME.failed/` with the error written down. Nobody can mistake a half-done
run for a good one, and a failed one keeps everything already paid for so
`deploy --resume` repeats only what is missing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PARTIAL, FAILED = ".partial", ".failed"
STATE_FILE, REQUEST_FILE, REPORT_FILE, LOG_FILE = "state.json", "request.json", "report.json", "deploy.log"
EVAL_FILE, PLAN_FILE = "eval.npz", "plan.json"  # the evaluation set every device sees; the per-layer plan


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:48] or "run"


@dataclass
class RunFolder:
    """The live folder of one deploy run; `path` moves as the run changes state."""

    path: Path

    @classmethod
    def create(cls, runs_dir: Path, model_name: str, profile_name: str) -> RunFolder:
        runs_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{_slug(model_name)}-{_slug(profile_name)}"
        for attempt in range(1000):
            name = base if attempt == 0 else f"{base}-{attempt}"
            if not any((runs_dir / (name + suffix)).exists() for suffix in ("", PARTIAL, FAILED)):
                path = runs_dir / (name + PARTIAL)
                path.mkdir()
                folder = cls(path)
                folder.write_json(STATE_FILE, {"status": "running", "done": {}})
                return folder
        raise RuntimeError(f"could not find a free run folder name under {runs_dir}")

    @classmethod
    def reopen(cls, path: Path) -> RunFolder:
        """Take a failed or interrupted run back into the partial state to finish it."""
        path = Path(path)
        if path.name.endswith(FAILED):
            target = path.with_name(path.name[: -len(FAILED)] + PARTIAL)
            path.rename(target)
            path = target
        return cls(path)

    @property
    def final_name(self) -> str:
        name = self.path.name
        for suffix in (PARTIAL, FAILED):
            if name.endswith(suffix):
                return name[: -len(suffix)]
        return name

    def sub(self, *parts: str) -> Path:
        target = self.path.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_json(self, name: str, data: Any) -> Path:
        return write_atomically(self.sub(name), (json.dumps(data, indent=2, default=json_default) + "\n").encode())

    def read_json(self, name: str, default: Any = None) -> Any:
        target = self.path / name
        if not target.exists():
            return default
        return json.loads(target.read_text())

    def mark_done(self, step: str, info: Any = True) -> None:
        state = self.read_json(STATE_FILE, {"status": "running", "done": {}})
        state["done"][step] = info
        self.write_json(STATE_FILE, state)

    def done(self, step: str) -> Any:
        return self.read_json(STATE_FILE, {"done": {}})["done"].get(step)

    def finish(self) -> Path:
        state = self.read_json(STATE_FILE, {"done": {}})
        state["status"] = "complete"
        self.write_json(STATE_FILE, state)
        return self._move_to(self.final_name)

    def fail(self, step: str, error: BaseException) -> Path:
        state = self.read_json(STATE_FILE, {"done": {}})
        state.update(status="failed", failed_step=step, error=str(error), error_type=type(error).__name__)
        self.write_json(STATE_FILE, state)
        return self._move_to(self.final_name + FAILED)

    def _move_to(self, name: str) -> Path:
        target = self.path.with_name(name)
        if target != self.path:
            self.path.rename(target)
            self.path = target
        return self.path

    def attach_log(self, logger: logging.Logger) -> logging.Handler:
        handler = logging.FileHandler(self.path / LOG_FILE)
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)  # the log file is the run's record even when the console is quiet
        logger.addHandler(handler)
        return handler


def write_atomically(target: Path, data: bytes) -> Path:
    """Temp name, then rename: a crash never leaves half a file under its real name."""
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return target


def json_default(value: Any) -> Any:
    """json.dumps(default=...) for what runs produce: paths and NumPy scalars / arrays."""
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
