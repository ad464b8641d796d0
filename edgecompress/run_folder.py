"""A run's folder on disk: where artifacts, measurements, logs and the report land.

A run works in `NAME.partial/`; only a run that finished becomes `NAME/`, and one that
failed becomes `NAME.failed/` with the error written down. Nobody can mistake a half-done
run for a good one, and a failed one keeps everything already paid for so
`deploy --resume` repeats only what is missing. File names come from `run_layout.LAYOUT`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from edgecompress.errors import EdgeCompressError
from edgecompress.run_layout import FAILED, LAYOUT, PARTIAL, final_name, slug

T = TypeVar("T")


def check_output_dir(output: str | Path) -> None:
    """Refuse an --output that cannot hold run folders, before any analysis is paid for."""
    path = Path(output).expanduser()
    if path.exists() and not path.is_dir():
        raise EdgeCompressError(
            f"--output {path} is a file, not a folder.", "Pass a folder (it is created if missing), e.g. --output runs."
        )
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise EdgeCompressError(f"--output {path} cannot be created: {existing} is a file.", "Pass another folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise EdgeCompressError(
            f"--output {path} is not writable here ({existing} is read-only or belongs to another user).",
            "Pass a folder you can write to, e.g. --output ~/edgecompress-runs.",
        )


@dataclass
class RunFolder:
    """The live folder of one deploy run; `path` moves as the run changes state."""

    path: Path

    @classmethod
    def create(cls, runs_dir: Path, model_name: str, profile_name: str, name: str | None = None) -> RunFolder:
        """A new NAME.partial under `runs_dir`; NAME is `name`, else time stamp, model and profile."""
        runs_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = slug(name) if name else f"{stamp}-{slug(model_name)}-{slug(profile_name)}"
        for attempt in range(1000):
            name = base if attempt == 0 else f"{base}-{attempt}"
            if not any((runs_dir / (name + suffix)).exists() for suffix in ("", PARTIAL, FAILED)):
                path = runs_dir / (name + PARTIAL)
                path.mkdir()
                folder = cls(path)
                folder.write_json(LAYOUT.state, {"status": "running", "done": {}})
                return folder
        raise EdgeCompressError(f"Could not find a free run folder name under {runs_dir}.", "Clean up old runs there.")

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
        return final_name(self.path.name)

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

    def remember(self, key: str, compute: Callable[[], T], *, files: Iterable[Path] = ()) -> T:
        """The one memoization rule of a run: `key` counts as done when state.json records it and
        every file it wrote still exists; otherwise `compute()` runs and its (JSON) result is recorded."""
        files = list(files)
        if self.is_done(key, files):
            recorded: T = self._state()["done"][key]
            return recorded
        return self.record(key, compute())

    def is_done(self, key: str, files: Iterable[Path] = ()) -> bool:
        """True when `key` is recorded and every file it wrote still exists (see `remember`)."""
        return key in self._state().get("done", {}) and all(Path(f).exists() for f in files)

    def record(self, key: str, value: T) -> T:
        """Record `key` as done with `value`, in the form a resumed run will read it back."""
        value = json.loads(json.dumps(value, default=json_default))
        state = self._state()
        state.setdefault("done", {})[key] = value
        self.write_json(LAYOUT.state, state)
        return value

    def finish(self) -> Path:
        state = self._state()
        state["status"] = "complete"
        self.write_json(LAYOUT.state, state)
        return self._move_to(self.final_name)

    def fail(self, step: str, error: BaseException) -> Path:
        state = self._state()
        message = str(error) or type(error).__name__
        state.update(status="failed", failed_step=step, error=message, error_type=type(error).__name__)
        self.write_json(LAYOUT.state, state)
        return self._move_to(self.final_name + FAILED)

    def _state(self) -> dict[str, Any]:
        return self.read_json(LAYOUT.state, {"status": "running", "done": {}})

    def _move_to(self, name: str) -> Path:
        target = self.path.with_name(name)
        if target != self.path:
            self.path.rename(target)
            self.path = target
        return self.path

    def attach_log(self, logger: logging.Logger | None = None) -> logging.Handler:
        """deploy.log: edgecompress's records from INFO up, and other libraries' warnings (TensorFlow,
        Keras, Python warnings when captured) that the console leaves out; on the root logger
        unless `logger` is given."""
        handler = logging.FileHandler(self.path / LAYOUT.log)
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        own = logging.getLogger("edgecompress")
        if own.getEffectiveLevel() > logging.INFO:
            own.setLevel(logging.INFO)  # the log file is the run's record even when the console is quiet
        (logger or logging.getLogger()).addHandler(handler)
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
