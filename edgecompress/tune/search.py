"""The driver's loop: ask Optuna, build trials on Ray, measure them on the board pool, tell Optuna.

    ask -> candidate -> plan checked here (refused or duplicate: no training) -> Ray task builds
    the run folder (fine-tune, export) -> the driver resumes it with the pooled boards (measure,
    report, verdict) -> tell Optuna the measured figures and the acceptance constraints

Builds run in Ray workers, as many at once as `parallel`; measurements run in driver threads,
each waiting for its boards. A trial that fails (its worker, a board, its own error) is recorded
and told as failed; the search goes on. The Pareto set is then re-run with other seeds.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecompress.errors import EdgeCompressError
from edgecompress.pipeline.request import DeployRequest
from edgecompress.run_layout import LAYOUT
from edgecompress.tune import objectives as objs
from edgecompress.tune.records import COMPLETE, DUPLICATE, FAILED, INFEASIBLE, RUNNING, TrialRecord, TuneFolder
from edgecompress.tune.request import TRIALS, TuneRequest, planning
from edgecompress.tune.space import Candidate, Space
from edgecompress.tune.study import tell, uninterrupted

log = logging.getLogger("edgecompress.tune")
Say = Callable[[str], None]
#: how often the loop wakes to look at builds and measurements
_TICK_S = 0.25
#: candidates refused before training (schema, budget) or duplicates may be asked this many times the budget
_ASK_FACTOR = 5


class TuneInterrupted(EdgeCompressError):
    exit_code = 130


@dataclass
class Ticket:
    """One trial on its way: built in a worker, then measured here."""

    record: TrialRecord
    request: DeployRequest
    trial: Any = None  # the Optuna trial (None for a re-run)
    ref: Any = None  # Ray's ObjectRef while building
    submitted: float = 0.0
    built: float = 0.0


@dataclass
class Search:
    request: TuneRequest
    folder: TuneFolder
    space: Space
    objectives: list[objs.Objective]
    study: Any
    engine: Any
    pool: Any  # BoardPool
    say: Say
    seeds: list[Candidate] = field(default_factory=list)
    building: dict[Any, Ticket] = field(default_factory=dict)  # ObjectRef -> ticket
    measuring: dict[Future, Ticket] = field(default_factory=dict)
    waiting_on: dict[str, list[Ticket]] = field(default_factory=dict)  # duplicates told once their original is
    signatures: dict[str, str] = field(default_factory=dict)  # plan signature -> trial name
    shared: dict[tuple[Any, ...], tuple[Path, str]] = field(default_factory=dict)  # measurements reusable across trials
    asked: int = 0
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ the budget

    @property
    def parallel(self) -> int:
        if self.request.parallel:
            return self.request.parallel
        by_cpus = self.engine.cpus // max(self.request.cpus_per_trial, 1e-9)
        by_gpus = self.engine.gpus // self.request.gpus_per_trial if self.request.gpus_per_trial else by_cpus
        return max(1, int(min(by_cpus, by_gpus)))

    def counted(self) -> int:
        """Trials that cost a build: complete, failed or still running (refused and duplicate ones are free)."""
        return sum(1 for r in self.folder.searched() if r.state in (COMPLETE, FAILED, RUNNING) and not r.same_as)

    def out_of_time(self) -> bool:
        budget = self.request.time_budget_s
        spent = (self.folder.read_json("tune.json") or {}).get("searched_s", 0.0) + (time.monotonic() - self.started)
        return budget is not None and spent >= budget

    def may_ask(self) -> bool:
        return (
            self.counted() < self.request.trials
            and not self.out_of_time()
            and self.asked < _ASK_FACTOR * self.request.trials + len(self.seeds)
        )

    # ------------------------------------------------------------------ the loop

    def run(self, executor: ThreadPoolExecutor) -> None:
        """Search until the budget is spent and every trial is finished."""
        self._resume_unfinished()
        while True:
            while len(self.building) < self.parallel and self.may_ask():
                self._start_next()
            if not self.building and not self.measuring and not self.may_ask():
                break
            self._collect_builds(executor)
            self._collect_measurements()

    def rerun(self, executor: ThreadPoolExecutor, names: list[str]) -> None:
        """Build and measure the given trials again with seeds 1..seeds-1 (records named trial-N-seedS)."""
        base = self.request.deploy.seed
        for name in names:
            original = self.folder.records[name]
            for offset in range(1, self.request.seeds):
                rerun = f"{name}-seed{offset}"
                existing = self.folder.records.get(rerun)
                if existing is not None and existing.state in (COMPLETE, FAILED):
                    continue
                record = TrialRecord(rerun, None, base + offset, original.candidate, original.overrides, rerun_of=name)
                self.folder.put(record)
                self._submit(Ticket(record, self._trial_request(rerun, original.overrides, base + offset)))
        while self.building or self.measuring:
            self._collect_builds(executor)
            self._collect_measurements()

    # ------------------------------------------------------------------ asking

    def _start_next(self) -> None:
        with uninterrupted():  # Optuna writes its journal here
            trial = self.study.ask()
            candidate = self.space.suggest(trial)
            name = f"trial-{trial.number:04d}"
            trial.set_user_attr("name", name)
        self.asked += 1
        record = TrialRecord(name, trial.number, self.request.deploy.seed, candidate.values, candidate.overrides())
        ticket = Ticket(record, self._trial_request(name, record.overrides, record.seed), trial)
        if self._refused_or_duplicate(ticket):
            return
        self.folder.put(record)
        self._submit(ticket)

    def _trial_request(self, name: str, overrides: dict[str, Any], seed: int) -> DeployRequest:
        return dataclasses.replace(
            self.request.deploy,
            profile_overrides=overrides,
            run_name=name,
            seed=seed,
            output=str(self.folder.path / TRIALS),
            gate=False,
        )

    def _refused_or_duplicate(self, ticket: Ticket) -> bool:
        """Check the candidate's plan here, before any training: refuse what cannot be built, tell duplicates."""
        from edgecompress import pipeline

        record = ticket.record
        try:
            plan = pipeline.run(planning(ticket.request), dry_run=True).report["plan"]
        except EdgeCompressError as error:
            self._close(ticket, INFEASIBLE, f"{type(error).__name__}: {error.problem}")
            return True
        record.plan_strategy = plan["strategy"]
        if plan["strategy"] != record.candidate["strategy"]:
            self._close(
                ticket,
                INFEASIBLE,
                f"strategy {record.candidate['strategy']} does not fit the budget "
                f"(deploy would use {plan['strategy']})",
            )
            return True
        signature = _plan_signature(plan)
        with self._lock:
            earlier = self.signatures.setdefault(signature, record.name)
        if earlier == record.name:
            return False
        record.same_as = earlier
        original = self.folder.records.get(earlier)
        if original is not None and original.done:
            self._copy_outcome(ticket, original)
        else:
            self.folder.put(dataclasses.replace(record, state=RUNNING, reason=f"the same plan as {earlier}"))
            self.waiting_on.setdefault(earlier, []).append(ticket)
        return True

    # ------------------------------------------------------------------ building (Ray)

    def _submit(self, ticket: Ticket) -> None:
        ticket.submitted = time.monotonic()
        ticket.ref = self.engine.submit({"request": ticket.request.to_json(), "tune_dir": str(self.folder.path)})
        self.building[ticket.ref] = ticket
        self.say(f"{ticket.record.name}: building ({_label(ticket.record)})")

    def _collect_builds(self, executor: ThreadPoolExecutor) -> None:
        import ray

        if not self.building:
            if self.measuring:
                wait(list(self.measuring), timeout=_TICK_S, return_when=FIRST_COMPLETED)
            return
        ready, _ = ray.wait(list(self.building), num_returns=1, timeout=_TICK_S)
        for ref in ready:
            ticket = self.building.pop(ref)
            ticket.built = time.monotonic()
            ticket.record.build_s = round(ticket.built - ticket.submitted, 2)
            try:
                outcome = ray.get(ref)
            except Exception as error:  # noqa: BLE001 - a dead worker after its retries, a lost node, a cancelled task
                from edgecompress.tune.engine import describe_failure

                ticket.record.workers = _attempts(self.folder.path, ticket.record.name)
                self._close(ticket, FAILED, f"build: {describe_failure(error)}")
                continue
            ticket.record.workers = _attempts(self.folder.path, ticket.record.name)
            if "error" in outcome:
                failure = outcome["error"]
                ticket.record.run_dir = failure.get("run_dir")
                self._close(ticket, FAILED, f"build: {failure['type']}: {failure['problem']}")
                continue
            ticket.record.run_dir = outcome["run_dir"]
            self.folder.put(ticket.record)
            self.say(
                f"{ticket.record.name}: built in {ticket.record.build_s:.0f} s by worker pid {outcome['worker']['pid']}; "
                "waiting for the boards"
            )
            self.measuring[executor.submit(self._measure, ticket)] = ticket

    # ------------------------------------------------------------------ measuring (driver, boards)

    def _measure(self, ticket: Ticket) -> dict[str, Any]:
        """In a driver thread: finish the trial's run folder on the pooled boards; returns its report."""
        from edgecompress import pipeline
        from edgecompress.pipeline.run import own_log_context

        own_log_context()
        run_dir = Path(str(ticket.record.run_dir))
        if (run_dir / LAYOUT.report).is_file() and not run_dir.name.endswith((".partial", ".failed")):
            return json.loads((run_dir / LAYOUT.report).read_text())  # finished before an interruption
        ticket.record.measurements_reused = self._reuse_measurements(run_dir)
        started = time.monotonic()
        ticket.record.queued_s = round(started - ticket.built, 2) if ticket.built else None
        result = pipeline.resume(run_dir, boards=self.pool.boards)
        ticket.record.measure_s = round(time.monotonic() - started, 2)
        ticket.record.run_dir = str(result.run_dir)
        self._remember_measurements(Path(str(result.run_dir)), ticket.request)
        return result.report

    def _collect_measurements(self) -> None:
        done = [future for future in self.measuring if future.done()]
        for future in done:
            ticket = self.measuring.pop(future)
            try:
                report = future.result()
            except EdgeCompressError as error:
                failed = sorted(Path(self.folder.path / TRIALS).glob(f"{ticket.record.name}.failed"))
                ticket.record.run_dir = str(failed[0]) if failed else ticket.record.run_dir
                self._close(ticket, FAILED, f"measure: {type(error).__name__}: {error.problem}")
                continue
            except Exception as error:  # noqa: BLE001 - a bug ends this trial, not the search
                log.exception("trial %s failed while measured", ticket.record.name)
                self._close(ticket, FAILED, f"measure: {type(error).__name__}: {error}")
                continue
            self._complete(ticket, report)

    def _complete(self, ticket: Ticket, report: dict[str, Any]) -> None:
        """Read the trial's figures off its report; a report without them fails the trial, not the search."""
        record = ticket.record
        try:
            name = objs.candidate_name(report)
            record.artifact = name
            record.figures = objs.figures(report, self.objectives)
            record.passes = objs.passes(report, name)
            record.constraints = objs.constraints(report, name)
        except EdgeCompressError as error:
            self._close(ticket, FAILED, f"report: {error.problem}")
            return
        except (KeyError, TypeError, ValueError, StopIteration) as error:  # a report of another shape
            self._close(ticket, FAILED, f"report: unreadable ({type(error).__name__}: {error})")
            return
        missing = [o.name for o in self.objectives if not _finite(record.figures.get(o.name))]
        if missing:
            self._close(ticket, FAILED, f"not measured (or not a finite number): {', '.join(missing)}")
            return
        shown = ", ".join(f"{o.name} {_fmt(record.figures[o.name], o)}" for o in self.objectives)
        self._close(ticket, COMPLETE, f"{name}: {shown}; {'passes the rules' if record.passes else 'fails a rule'}")

    # ------------------------------------------------------------------ telling Optuna

    def _values(self, record: TrialRecord) -> list[float]:
        return [float(record.figures[o.name] or 0.0) for o in self.objectives]  # measured: checked finite before

    def _close(self, ticket: Ticket, state: str, reason: str) -> None:
        record = ticket.record
        record.state, record.reason = state, reason
        self.folder.put(record)
        self.say(f"{record.name}: {state}: {reason}")
        if ticket.trial is not None:
            tell(
                self.study,
                ticket.trial,
                self._values(record) if state == COMPLETE else None,
                _named(record.constraints),
            )
        for waiting in self.waiting_on.pop(record.name, []):
            self._copy_outcome(waiting, record)

    def _copy_outcome(self, ticket: Ticket, original: TrialRecord) -> None:
        """A duplicate gets its original's figures (told to Optuna, so the sampler learns) without being built."""
        record = ticket.record
        record.figures, record.passes, record.constraints = (
            dict(original.figures),
            original.passes,
            list(original.constraints),
        )
        record.run_dir, record.artifact = original.run_dir, original.artifact
        if original.state == COMPLETE:
            record.state, record.reason = DUPLICATE, f"the same plan as {original.name}: its figures"
            self.folder.put(record)
            tell(self.study, ticket.trial, self._values(record), _named(record.constraints))
        else:
            record.state, record.reason = DUPLICATE, f"the same plan as {original.name}, which {original.state}"
            self.folder.put(record)
            tell(self.study, ticket.trial, None, {})
        self.say(f"{record.name}: {record.reason}")

    # ------------------------------------------------------------------ resume

    def _resume_unfinished(self) -> None:
        """Trials an interrupted tune left running: built or measured again where they stopped, or told failed."""
        import optuna

        for trial in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            name = trial.user_attrs.get("name") or f"trial-{trial.number:04d}"
            record = self.folder.records.get(name)
            if record is not None and record.state in (COMPLETE, FAILED) and not record.same_as:
                told = tell_recorded(self.study, trial, record, self.objectives)  # stopped before Optuna heard
                self.say(
                    f"{name}: {'measured' if told == COMPLETE else 'failed'} before the interruption; told the searcher"
                )
                continue
            if record is None or record.same_as:
                self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
                if record is not None:
                    self.folder.put(
                        dataclasses.replace(record, state=FAILED, reason="interrupted before it was measured")
                    )
                continue
            record.state, record.reason = RUNNING, ""
            self.say(f"{name}: resuming the interrupted trial")
            self._submit(Ticket(record, self._trial_request(name, record.overrides, record.seed), trial))
        for record in self.folder.searched():
            if record.state == COMPLETE and record.run_dir:
                self._remember_measurements(
                    Path(record.run_dir), self._trial_request(record.name, record.overrides, record.seed)
                )
                with self._lock:
                    self.signatures.setdefault(_signature_of(Path(record.run_dir)), record.name)

    # ------------------------------------------------------------------ measurements shared between trials

    def _reuse_measurements(self, run_dir: Path) -> list[str]:
        """Artifacts identical to ones measured in an earlier trial (the baseline, the PTQ model) on the same
        boards, with the same evaluation set and timing settings, take that measurement: boards are scarce."""
        import shutil

        from edgecompress.model_io import sha256_of
        from edgecompress.run_folder import RunFolder

        folder = RunFolder(run_dir)
        request = DeployRequest.from_json(json.loads((run_dir / LAYOUT.request).read_text()), where=run_dir)
        state = folder.read_json(LAYOUT.state, {}).get("done", {})
        reused = []
        for key, value in state.items():
            if not key.startswith("artifact:") or not isinstance(value, dict):
                continue
            path = run_dir / LAYOUT.artifacts / value["path"]
            if not path.is_file():
                continue
            digest = sha256_of(path)
            for board in self.pool.boards:
                mark = f"measure:{value['name']}@{board.name}"
                if mark in state:
                    continue
                with self._lock:
                    source = self.shared.get(_measure_key(digest, board.name, request))
                if source is None:
                    continue
                source_dir, stem = source
                target_stem = LAYOUT.measurement_stem(value["name"], board.name)
                for suffix in (".json", ".samples.json", ".log"):
                    origin = source_dir / f"{stem}{suffix}"
                    if origin.is_file():
                        shutil.copyfile(origin, folder.sub(f"{target_stem}{suffix}"))
                folder.record(mark, f"{target_stem}.json")
                reused.append(f"{value['name']}@{board.name} from {source_dir.name}")
        return reused

    def _remember_measurements(self, run_dir: Path, request: DeployRequest) -> None:
        from edgecompress.model_io import sha256_of

        report_file = run_dir / LAYOUT.report
        if not report_file.is_file():
            return
        report = json.loads(report_file.read_text())
        files = {a["name"]: a for a in report.get("artifacts", [])}
        for m in report.get("measurements", []):
            artifact = files.get(m["artifact"])
            path = run_dir / LAYOUT.artifacts / artifact["path"] if artifact else None
            if path is None or not path.is_file():
                continue
            key = _measure_key(sha256_of(path), m["target"], request)
            with self._lock:
                self.shared.setdefault(key, (run_dir, LAYOUT.measurement_stem(m["artifact"], m["target"])))


def _finite(value: Any) -> bool:
    """A figure Optuna and the Pareto front can use: a real number, not None, NaN or infinite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _named(constraints: list[float]) -> dict[str, float]:
    from edgecompress.decision.checks import RULES

    return {rule.name: value for rule, value in zip(RULES, constraints)}


def _measure_key(digest: str, board: str, request: DeployRequest) -> tuple[Any, ...]:
    """What a measurement depends on besides the board: the file, the evaluation set, the timing settings."""
    return (
        digest,
        board,
        request.data,
        tuple(request.classes or ()),
        request.task,
        request.max_eval,
        request.seed,
        request.scaling,
        request.resize,
        request.warmup,
        request.runs,
        request.threads,
    )


def _plan_signature(plan: dict[str, Any]) -> str:
    """Two candidates with this in common build the same model (the knobs differ only where nothing uses them)."""
    layers = [(layer["name"], layer["recipe"], sorted(layer["params"].items())) for layer in plan["layers"]]
    return json.dumps([plan["export_mode"], plan["io_dtype"], layers], sort_keys=True, default=str)


def _signature_of(run_dir: Path) -> str:
    try:
        return _plan_signature(json.loads((run_dir / LAYOUT.plan).read_text()))
    except (OSError, ValueError, KeyError):
        return f"unknown:{run_dir}"


def _attempts(tune_dir: Path, name: str) -> list[dict[str, Any]]:
    from edgecompress.tune.worker import WORKERS

    found = []
    for file in sorted((tune_dir / WORKERS / name).glob("attempt-*.json")):
        try:
            found.append(json.loads(file.read_text()))
        except (OSError, ValueError):
            continue
    return found


def _label(record: TrialRecord) -> str:
    parts = [str(record.candidate.get("strategy"))] + [
        f"{k} {v}" for k, v in record.candidate.items() if k != "strategy"
    ]
    return ", ".join(parts) + (f", seed {record.seed}" if record.rerun_of else "")


def _fmt(value: float | None, objective: objs.Objective) -> str:
    if value is None:
        return "-"
    if objective.unit == "bytes":
        return f"{int(value):,} B"
    if objective.unit == "%":
        return f"{value:.2f}%"
    return f"{value:.3g} {objective.unit}"


__all__ = ["Search", "Ticket", "TuneInterrupted"]


def tell_recorded(study: Any, trial: Any, record: TrialRecord, objectives: list[objs.Objective]) -> str:
    """Tell Optuna the outcome a trial's record already holds, so a finished trial is never built again.

    A tune interrupted between writing a trial's record and telling Optuna leaves the study's trial
    RUNNING; returns the state told (COMPLETE, or FAILED when the record has no usable figures).
    """
    if record.state == COMPLETE and all(_finite(record.figures.get(o.name)) for o in objectives):
        tell(study, trial, [float(record.figures[o.name] or 0.0) for o in objectives], _named(record.constraints))
        return COMPLETE
    tell(study, trial, None, {})
    return FAILED
