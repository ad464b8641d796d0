"""`edgecompress tune`: a measured Pareto search over compression plans, on Ray.

    from edgecompress.tune import TuneRequest, tune
    result = tune(TuneRequest(DeployRequest.build("model.h5", "rpi4", data="DIR"), trials=24))
    result.verdict["recommended_trial"], result.tune_dir / "ship"

Where each part is:
- request.py   what a tune depends on (TuneRequest, kept as tune.json for --resume)
- space.py     the search space as data: one row per knob of the profile's compression block
- prior.py     TwoNN as a prior: the plan deploy would build and its neighbours first
- objectives.py  what is optimised, read off each trial's measured report; the rules as constraints
- study.py     Optuna (multi-objective TPE), driven with ask/tell, kept in a journal file
- engine.py    Ray: a local instance or a cluster address; trials as retried tasks
- worker.py    what a Ray worker does: build one trial's run folder (the deploy steps before Measure)
- boards.py    the board pool on the driver: each board measures one trial at a time
- search.py    the loop: ask, build on Ray, measure on the boards, tell; failures recorded, search goes on
- results.py   the Pareto set, its seeds' statistics, the verdict (decision/ does the judging)
- report.py, figures.py  tune-report.json/.md/.html with the fronts and error bars, and ship/
- session.py   one tune from start to report, and --resume
"""

from __future__ import annotations

from edgecompress.tune.request import TuneRequest, parse_duration
from edgecompress.tune.session import TuneResult, resume, tune

__all__ = ["TuneRequest", "TuneResult", "parse_duration", "resume", "tune"]
