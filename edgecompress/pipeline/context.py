"""What the steps of one deploy run share: the prepared request, the run folder, and results so far."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecompress.pipeline.artifacts import Artifact
from edgecompress.pipeline.prepare import Prepared, Say
from edgecompress.run_folder import RunFolder
from edgecompress.run_layout import LAYOUT


@dataclass
class RunContext:
    """Handed to every step in turn; each step reads what earlier steps left and adds its own."""

    prepared: Prepared
    folder: RunFolder
    say: Say
    artifacts: list[Artifact] = field(default_factory=list)
    reference: dict[str, Any] = field(default_factory=dict)  # the Keras model on the eval set (runner's shape)
    trained_key: str = ""  # what made the fine-tuned model (apply_plan's key): exports of it are cached under it
    rebuild_trained: Callable[[], Any] | None = None  # the fine-tune step's way to rebuild its model on resume
    micro: dict[str, Any] | None = None
    measurements: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    trained: Any = None  # the fine-tuned tf-keras model while in memory (rebuilt from its stages on resume)
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds of each step run by this invocation

    @property
    def request(self) -> Any:
        return self.prepared.request

    def artifact_path(self, name: str) -> Path:
        return self.folder.sub(LAYOUT.artifacts, name)

    def trained_model(self) -> Any:
        """The fine-tuned model: the one just trained, or rebuilt from the stages the run folder keeps."""
        if self.trained is None:
            assert self.rebuild_trained is not None, "the fine-tune step runs before anything needs its model"
            self.trained = self.rebuild_trained()
        return self.trained

    def add_artifact(self, artifact: Artifact) -> None:
        self.artifacts.append(artifact)

    def remember_artifact(
        self, name: str, suffix: str, build: Callable[[Path], Artifact], *, made_from: dict[str, Any] | None = None
    ) -> Artifact:
        """An artifact file built once per run: `build(path)` writes it and returns its description.

        With `made_from` (everything the file depends on), the file is also taken from, or
        kept in, the cache across runs.
        """
        path = self.artifact_path(f"{name}{suffix}")

        def make() -> dict[str, Any]:
            from edgecompress.pipeline.reuse import keep_file, reused_file

            cache = self.prepared.cache
            key = cache.key(f"artifact{suffix}", **made_from) if made_from is not None else None
            reused = reused_file(cache, "artifact", key, path, self.say, f"{name}{suffix}") if key else None
            if reused is not None:
                return reused
            record = build(path).to_record()
            if key:
                keep_file(cache, "artifact", key, path, record)
            return record

        record = self.folder.remember(f"artifact:{name}{suffix if suffix != '.tflite' else ''}", make, files=[path])
        artifact = Artifact.from_record(record, path.parent)
        self.add_artifact(artifact)
        return artifact
