"""What a deploy takes from the cache and puts back (see edgecompress/cache.py for the rules).

Three kinds of work are reused: the layer significance, exported artifact files (the PTQ
models, and the compressed TFLite / ONNX files of a fine-tune reused whole), and each
fine-tuning stage (the clustered model CQAT starts from, then the quantize stage), kept as
weights plus the training summary. Every reuse is said out loud, so a user knows which
figures come from an earlier run's training.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecompress.cache import StageCache

Say = Callable[[str], None]
#: the name a cached artifact file has inside its entry
CACHED_FILE = "file"
WEIGHTS, SUMMARY = "weights.npz", "summary.json"


def _write_stage(folder: Path, weights: list[np.ndarray], summary: dict[str, Any]) -> None:
    np.savez(folder / WEIGHTS, *weights)
    (folder / SUMMARY).write_text(json.dumps(summary, default=str))


def _read_stage(folder: Path) -> tuple[list[np.ndarray], dict[str, Any]]:
    with np.load(folder / WEIGHTS, allow_pickle=False) as stored:
        weights = [stored[f"arr_{i}"] for i in range(len(stored.files))]
    return weights, json.loads((folder / SUMMARY).read_text())


@dataclass
class FolderStageStore:
    """Fine-tuning stages kept in the run folder, so --resume rebuilds the trained model without training."""

    folder: Path

    def fetch(self, key: str) -> tuple[list[np.ndarray], dict[str, Any]] | None:
        entry = self.folder / key
        return _read_stage(entry) if (entry / SUMMARY).is_file() else None

    def keep(self, key: str, weights: list[np.ndarray], summary: dict[str, Any]) -> None:
        entry = self.folder / key
        entry.mkdir(parents=True, exist_ok=True)
        _write_stage(entry, weights, summary)


@dataclass
class CachedStageStore:
    """Fine-tuning stages from earlier runs (edgecompress/cache.py), kept in the run folder as well."""

    cache: StageCache
    run: FolderStageStore
    say: Say

    def fetch(self, key: str) -> tuple[list[np.ndarray], dict[str, Any]] | None:
        found = self.run.fetch(key)
        if found is not None:
            return found
        hit = self.cache.lookup("fine-tune-stage", key)
        if hit is None:
            return None
        try:
            weights, summary = _read_stage(hit.path)
        except (OSError, ValueError):  # evicted by another process since the lookup: a miss
            return None
        self.say(
            f"Reusing fine-tuning stage '{', '.join(s['stage'] for s in summary['stages'])}' from the cache "
            f"(trained {hit.meta.get('stored', '?')}, key {key[:12]})"
        )
        self.run.keep(key, weights, summary)
        return weights, summary

    def keep(self, key: str, weights: list[np.ndarray], summary: dict[str, Any]) -> None:
        self.run.keep(key, weights, summary)
        self.cache.store(
            "fine-tune-stage",
            key,
            lambda folder: _write_stage(folder, weights, summary),
            {"stages": [s["stage"] for s in summary["stages"]]},
        )


def reused_file(cache: StageCache, kind: str, key: str, target: Path, say: Say, what: str) -> dict[str, Any] | None:
    """Copy a cached file to `target` and return what was recorded with it; None on a miss."""
    hit = cache.lookup(kind, key)
    if hit is None:
        return None
    try:
        shutil.copyfile(hit.file(CACHED_FILE), target)
    except OSError:  # evicted by another process since the lookup: a miss
        return None
    say(f"Reusing {what} from the cache (made {hit.meta.get('stored', '?')}, key {key[:12]})")
    return dict(hit.meta.get("record", {}))


def keep_file(cache: StageCache, kind: str, key: str, source: Path, record: dict[str, Any]) -> None:
    def write(folder: Path) -> None:
        shutil.copyfile(source, folder / CACHED_FILE)

    cache.store(kind, key, write, {"record": record})
