"""Step 1: keep the layer significance (TwoNN / PCA) and the per-layer plan in the run folder."""

from __future__ import annotations

from edgecompress.pipeline.context import RunContext
from edgecompress.pipeline.steps.base import Step
from edgecompress.run_layout import LAYOUT


class Analysis(Step):
    name = "analysis"

    def run(self, ctx: RunContext) -> None:
        prepared, folder = ctx.prepared, ctx.folder

        def write() -> dict[str, str]:
            written = prepared.significance.write(folder.path)
            folder.write_json(LAYOUT.plan, prepared.plan.to_dict())
            return {"significance": written["json"].name, "plan": LAYOUT.plan}

        folder.remember(self.name, write, files=[folder.path / LAYOUT.significance, folder.path / LAYOUT.plan])
