"""Step 9: report.json from everything measured and the verdict under the run's rules, then report.md, report.html and the figures."""

from __future__ import annotations

import logging
import sys

from edgecompress.budget import Budget
from edgecompress.pipeline.artifacts import BASELINE
from edgecompress.pipeline.context import RunContext
from edgecompress.pipeline.steps.base import Step
from edgecompress.run_layout import LAYOUT

log = logging.getLogger("edgecompress.pipeline")


class Report(Step):
    name = "report"

    def run(self, ctx: RunContext) -> None:
        import edgecompress
        from edgecompress.decision.judging import Judging
        from edgecompress.decision.verdict import summary_lines
        from edgecompress.reporting import write_all
        from edgecompress.reporting.schema import build_report, host_facts
        from edgecompress.tasks import task_named

        prepared = ctx.prepared
        budget = Budget.of(prepared.profile)
        task = task_named(prepared.dataset.task)
        report = build_report(
            edgecompress_version=edgecompress.__version__,
            command=sys.argv,
            request=prepared.request.to_json(),
            profile=prepared.profile.to_dict(),
            model=prepared.loaded.describe(),
            task={**task.to_dict(), **(prepared.dataset.task_decision or {}), "name": task.name},
            data={
                **prepared.dataset.describe(),
                "scaling_decision": prepared.scaling.to_dict(),
                "fingerprint": prepared.data_fingerprint,
            },
            host=host_facts(),
            targets=[{"name": name, "probe": probe} for name, probe in prepared.probes.items()],
            keras_reference=ctx.reference,
            baseline=BASELINE,
            artifacts=[artifact.describe(budget) for artifact in ctx.artifacts],
            measurements=ctx.measurements,
            micro=ctx.micro,
            significance=prepared.significance.to_dict(),
            plan=prepared.plan.to_dict(),
            training=ctx.folder.read_json(LAYOUT.training),
            timings_s={**prepared.timings, **ctx.timings},  # this invocation's (a resumed run shows only the rest)
        )
        ctx.folder.write_json(LAYOUT.report, report)
        # report.md, report.html and the plots, from report.json; headed with the name the run will have
        ctx.report = write_all(
            ctx.folder.path, run_name=ctx.folder.final_name, judging=Judging(prepared.request.acceptance)
        ).report
        for line in summary_lines(ctx.report["verdict"]):
            log.info("verdict: %s", line)  # deploy.log keeps the decision; the console prints it under the table
