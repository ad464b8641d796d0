"""Step 10: ship/, the bundle of the recommended artifact (skipped with --no-ship; none when nothing passes)."""

from __future__ import annotations

from edgecompress.pipeline.context import RunContext
from edgecompress.pipeline.steps.base import Step


class Ship(Step):
    name = "ship"

    def applies(self, ctx: RunContext) -> bool:
        return bool(getattr(ctx.request, "ship", True))

    def run(self, ctx: RunContext) -> None:
        from edgecompress.ship import build_bundle

        verdict = ctx.report.get("verdict") or {}
        if not verdict.get("recommended"):
            ctx.say("No artifact passes the acceptance rules: no ship/ bundle")
            build_bundle(ctx.folder.path, ctx.report)  # removes a stale one
            return
        with ctx.prepared.task(f"Bundling {verdict['recommended']}"):
            build_bundle(ctx.folder.path, ctx.report)
        # where it is is said once the run folder has its final name (pipeline/run.py)
