"""What a deploy takes from the cache and puts back (see edgecompress/cache.py for the rules).

Three kinds of work are reused: the layer significance, exported artifact files (the PTQ
models, and the compressed TFLite / ONNX files of a fine-tune reused whole), and each
fine-tuning stage (the clustered model CQAT starts from, then the quantize stage). Every
reuse is said out loud, so a user knows which figures come from an earlier run's training.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from edgecompress.cache import StageCache

Say = Callable[[str], None]
#: the name a cached artifact file has inside its entry
CACHED_FILE = "file"


@dataclass
class KerasStageStore:
    """Fine-tuning stages kept as .keras files with their training summaries (apply_plan's StageStore)."""

    cache: StageCache
    say: Say

    def fetch(self, key: str) -> tuple[Any, dict[str, Any]] | None:
        hit = self.cache.lookup("fine-tune-stage", key)
        if hit is None:
            return None
        from edgecompress._tf import keras

        summary = json.loads(hit.file("summary.json").read_text())
        self.say(f"Reusing fine-tuning stage '{', '.join(s['stage'] for s in summary['stages'])}' from the cache "
                 f"(trained {hit.meta.get('stored', '?')}, key {key[:12]})")
        return keras().models.load_model(hit.file("model.keras"), compile=False), summary

    def keep(self, key: str, model: Any, summary: dict[str, Any]) -> None:
        def write(folder: Path) -> None:
            model.save(folder / "model.keras")
            (folder / "summary.json").write_text(json.dumps(summary, default=str))

        self.cache.store("fine-tune-stage", key, write, {"stages": [s["stage"] for s in summary["stages"]]})


def reused_file(cache: StageCache, kind: str, key: str, target: Path, say: Say, what: str) -> dict[str, Any] | None:
    """Copy a cached file to `target` and return what was recorded with it; None on a miss."""
    hit = cache.lookup(kind, key)
    if hit is None:
        return None
    shutil.copyfile(hit.file(CACHED_FILE), target)
    say(f"Reusing {what} from the cache (made {hit.meta.get('stored', '?')}, key {key[:12]})")
    return dict(hit.meta.get("record", {}))


def keep_file(cache: StageCache, kind: str, key: str, source: Path, record: dict[str, Any]) -> None:
    def write(folder: Path) -> None:
        shutil.copyfile(source, folder / CACHED_FILE)

    cache.store(kind, key, write, {"record": record})
