"""One tune from start to report: check the input, start Ray, connect the boards, search, re-run, decide, report."""

from __future__ import annotations

import dataclasses
import json
import logging
import shlex
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecompress.errors import EdgeCompressError
from edgecompress.tune import extra, results
from edgecompress.tune import objectives as objs
from edgecompress.tune import report as tune_report
from edgecompress.tune.records import LOG, TuneFolder
from edgecompress.tune.request import TRIALS, TUNE_FILE, TuneRequest
from edgecompress.tune.search import Search, TuneInterrupted

if TYPE_CHECKING:
    from edgecompress.tune.boards import BoardPool
    from edgecompress.tune.engine import Engine

log = logging.getLogger("edgecompress.tune")
Say = Callable[[str], None]


@dataclass
class TuneResult:
    tune_dir: Path
    report: dict[str, Any]  # tune-report.json

    @property
    def verdict(self) -> dict[str, Any]:
        return dict(self.report.get("verdict") or {})


def tune(request: TuneRequest, *, progress: Say | None = None) -> TuneResult:
    """Search compression plans for `request.deploy`'s model and profile; see `edgecompress tune --help`."""
    extra.require()
    request.check()
    request = dataclasses.replace(
        request, deploy=request.deploy.with_absolute_paths(), output=str(Path(request.output).expanduser().resolve())
    )
    objectives = objs.parse(request.objectives)
    say = _say(progress)
    space, base_plan = _space(request, say)  # bad input is refused here, before a folder, Ray or a board
    folder = TuneFolder.create(Path(request.output), request.deploy.model, _profile_name(request))
    return _run(request, folder, objectives, space, base_plan, say, fresh=True)


def resume(
    tune_dir: str | Path, *, trials: int | None = None, ray_address: str | None = None, progress: Say | None = None
) -> TuneResult:
    """Continue an interrupted tune: finished trials are kept, unfinished ones built or measured again.

    `trials` raises the budget (a finished tune then searches on); `ray_address` moves the rest of
    the search to another Ray cluster (or, with "local", to a local instance)."""
    extra.require()
    path = Path(tune_dir).expanduser().resolve()  # Ray workers write under it, from their own working directory
    file = path / TUNE_FILE
    if not file.is_file():
        raise EdgeCompressError(
            f"'{path}' is not a tune folder (no {TUNE_FILE}).",
            "Pass a folder `edgecompress tune` created, e.g. tunes/20261201-101500-model-rpi4-tune.",
        )
    try:
        document = json.loads(file.read_text())
    except (OSError, ValueError):
        document = None
    request = TuneRequest.from_json(document, where=file)
    if trials is not None:
        request = dataclasses.replace(request, trials=trials)
    if ray_address is not None:
        request = dataclasses.replace(request, ray_address=None if ray_address == "local" else ray_address)
    request.check()
    objectives = objs.parse(request.objectives)
    say = _say(progress)
    space, base_plan = _space(request, say)
    return _run(request, TuneFolder(path), objectives, space, base_plan, say, fresh=False, earlier=document)


def _say(progress: Say | None) -> Say:
    def say(message: str) -> None:
        log.info(message)
        if progress is not None:
            progress(message)

    return say


def _profile_name(request: TuneRequest) -> str:
    from edgecompress.profiles import load_profile

    return load_profile(request.deploy.profile).name


def _space(request: TuneRequest, say: Say) -> tuple[Any, dict[str, Any]]:
    """The profile, model, data, significance and plan checked once here (a dry run), and the space they imply."""
    from edgecompress import pipeline
    from edgecompress.analysis import SignificanceProfile
    from edgecompress.profiles import load_profile, with_overrides
    from edgecompress.tune.request import planning
    from edgecompress.tune.space import Space, SpaceFacts

    say("Checking the model, data and profile (the plan deploy would build)")
    dry = pipeline.run(planning(request.deploy), dry_run=True)
    profile = with_overrides(load_profile(request.deploy.profile), request.deploy.profile_overrides)
    significance = SignificanceProfile.from_dict(dry.report["significance"])
    space = Space.build(SpaceFacts(profile, significance))
    say(f"Search space: {space.size()} candidates ({'; '.join(f'{k} {list(v)}' for k, v in space.choices.items())})")
    return space, dry.report["plan"]


def _run(
    request: TuneRequest,
    folder: TuneFolder,
    objectives: list[objs.Objective],
    space: Any,
    base_plan: dict[str, Any],
    say: Say,
    *,
    fresh: bool,
    earlier: dict[str, Any] | None = None,
) -> TuneResult:
    from edgecompress.pipeline.run import own_log_context
    from edgecompress.tune import engine as ray_engine
    from edgecompress.tune.boards import BoardPool

    own_log_context()
    handler = _attach_log(folder.path / LOG)
    state = dict(earlier or {})
    state.update(request.to_json(), status="running", searched_s=float(state.get("searched_s", 0.0)))
    folder.write_json(TUNE_FILE, state)
    say(f"Tune folder: {folder.path}")
    pool = engine = search = None
    executor: ThreadPoolExecutor | None = None
    try:
        pool = BoardPool.connect(request.deploy.targets, request.deploy.target_options, say)
        engine = ray_engine.start(
            request.ray_address,
            cpus_per_trial=request.cpus_per_trial,
            gpus_per_trial=request.gpus_per_trial,
            retries=request.retries,
            say=say,
        )
        search = _search(request, folder, objectives, space, base_plan, engine, pool, say, fresh=fresh)
        executor = ThreadPoolExecutor(max_workers=max(1, len(pool.boards)), thread_name_prefix="edgecompress-measure")
        _timed_search(search, executor, folder, state)
        document = _finish(search, executor, state["searched_s"])
        state["status"] = "complete"
        folder.write_json(TUNE_FILE, state)
        return TuneResult(folder.path, document)
    except KeyboardInterrupt:
        state["status"] = "interrupted"
        folder.write_json(TUNE_FILE, state)
        if search is not None:
            _cancel(search)
        raise TuneInterrupted(
            f"Interrupted. Finished trials are kept in {folder.path}.",
            f"Continue with `edgecompress tune --resume {shlex.quote(str(folder.path))}`.",
        ) from None
    except BaseException:
        state["status"] = "failed"
        folder.write_json(TUNE_FILE, state)
        raise
    finally:
        _release(executor, pool, engine, handler)


def _timed_search(search: Search, executor: ThreadPoolExecutor, folder: TuneFolder, state: dict[str, Any]) -> None:
    """Run the search; its time is added to tune.json's searched_s even when it stops early, so a resume keeps count."""
    started = time.monotonic()
    try:
        search.run(executor)
    finally:
        state["searched_s"] = round(state["searched_s"] + time.monotonic() - started, 2)
        folder.write_json(TUNE_FILE, state)


def _release(
    executor: ThreadPoolExecutor | None, pool: BoardPool | None, engine: Engine | None, handler: logging.Handler
) -> None:
    """Stop the measurements, free the boards and Ray, and detach tune.log, whatever way the tune ended."""
    if executor is not None:
        executor.shutdown(wait=False, cancel_futures=True)
    if pool is not None:
        pool.close()
    if engine is not None:
        engine.shutdown()
    logging.getLogger("edgecompress").removeHandler(handler)
    handler.close()


def _search(
    request: TuneRequest,
    folder: TuneFolder,
    objectives: list[objs.Objective],
    space: Any,
    base_plan: dict[str, Any],
    engine: Any,
    pool: Any,
    say: Say,
    *,
    fresh: bool,
) -> Search:
    """The study (created, or loaded with its history) and, with the prior, the TwoNN candidates queued first."""
    from edgecompress.profiles import load_profile, with_overrides
    from edgecompress.tune import prior
    from edgecompress.tune.study import open_study

    study = open_study(folder.path, objectives, seed=request.search_seed, trials=request.trials, create=fresh)
    fresh = fresh or not study.trials  # a tune stopped before its first ask (e.g. at the boards) starts here
    seeds = []
    if request.prior:
        profile = with_overrides(load_profile(request.deploy.profile), request.deploy.profile_overrides)
        base = prior.base_candidate(space, profile, base_plan)
        seeds = prior.seeds(space, base, base_plan, limit=max(2, request.trials // 3))
        if fresh:
            for candidate in seeds:
                study.enqueue_trial(candidate.values, skip_if_exists=True)
            say(f"TwoNN prior: {len(seeds)} first candidates, from {base.label()}")
    return Search(request, folder, space, objectives, study, engine, pool, say, seeds)


def _finish(search: Search, executor: ThreadPoolExecutor, searched_s: float) -> dict[str, Any]:
    """Re-run the Pareto set with other seeds, re-judge it with them, decide, and write the report."""
    request, folder, objectives = search.request, search.folder, search.objectives
    names = results.to_rerun(folder, objectives, request.max_reruns) if request.seeds > 1 else []
    if names:
        search.say(f"Re-running the Pareto set ({', '.join(names)}) with {request.seeds - 1} more seed(s)")
        search.rerun(executor, names)
    front = [folder.records[r.name] for r in results.shortlist(folder, objectives)]
    for record in front:
        rejudged = results.rejudge_with_seeds(folder, record)
        if rejudged is not None:  # the seeds can turn a pass into a fail (or back): the trial table follows the verdict
            record.passes = objs.passes(rejudged, objs.candidate_name(rejudged))
            folder.put(record)
    verdict = results.decide(folder, front, request.deploy.acceptance)
    facts = _engine_facts(search.engine, search, folder, searched_s)
    document = tune_report.build(
        folder, request.to_json(), objectives, verdict, search.space.describe(), facts, search.pool.use()
    )
    paths = tune_report.write(folder, document, objectives)
    search.say(f"Tune report: {paths['html']}")
    return document


def _cancel(search: Any) -> None:
    import ray

    for ref in list(getattr(search, "building", {})):
        try:
            ray.cancel(ref, force=True)
        except Exception:  # noqa: BLE001 - already finished or the cluster is gone
            pass


def _engine_facts(engine: Any, search: Search, folder: TuneFolder, searched_s: float) -> dict[str, Any]:
    workers = sorted({f"pid {w['pid']} on {w['host']}" for r in folder.records.values() for w in r.workers})
    measured = len(results.measured(folder))
    return {
        "address": engine.address,
        "started_here": engine.started_here,
        "cpus": engine.cpus,
        "gpus": engine.gpus,
        "nodes": engine.nodes,
        "parallel": search.parallel,
        "workers": workers,
        "searched_s": searched_s,
        "trials_per_hour": round(3600 * measured / searched_s, 2) if searched_s else None,
    }


def _attach_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(lambda record: record.name.startswith("edgecompress.tune"))
    logger = logging.getLogger("edgecompress")
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


__all__ = ["TuneResult", "resume", "tune", "TRIALS"]
