"""The searcher: an Optuna study driven with ask/tell from the driver, kept in the tune folder.

Why ask/tell and not Ray Tune's OptunaSearch (which does work with Optuna 5.0 and several
objectives): a Ray Tune trial runs whole inside a worker and only reports its metrics from
there, but a trial's measurement must happen in the driver process, where the boards (and
their SSH identities) are. With ask/tell the driver builds trials as Ray tasks, measures them
on its board pool, and tells Optuna the measured figures.

The study lives in an Optuna journal file (study.journal in the tune folder): every ask and
tell is appended as it happens, so an interrupted tune is resumed from it with its finished
trials and the sampler's history intact.

The sampler is multi-objective TPE (MOTPE): it models good and bad regions from the measured
trials and handles the conditional space (knobs that only some strategies use) with
`multivariate=True, group=True`. NSGA-II, Optuna's default for several objectives, needs a
population of dozens before it learns anything, more than a tune of 24 trials has. The
acceptance rules are constraints (objectives.constraints): candidates that fail them count
as infeasible (Trial.set_constraint), so the search leans towards ones that would ship.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgecompress.tune.objectives import Objective

JOURNAL = "study.journal"
STUDY_NAME = "edgecompress-tune"


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Ctrl-C waits until the block has written to Optuna's journal, then interrupts as usual.

    An interrupt inside the journal's file lock broke the lock's clean-up (FileNotFoundError
    instead of KeyboardInterrupt, a traceback instead of the resume command).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: pending.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
        if pending:
            raise KeyboardInterrupt


def tell(study: Any, trial: Any, values: list[float] | None, constraints: dict[str, float]) -> None:
    """Tell Optuna a trial's outcome: its measured `values` and the acceptance rules as its
    constraints (<= 0: the rule passes), or failed when `values` is None.

    `trial` is the live Trial this process asked for, or the FrozenTrial of one an interrupted
    tune left RUNNING. Optuna's public API tells the latter only by number and cannot set its
    constraints, so its outcome is added as a finished copy (same parameters and name) and the
    stale trial is told failed: the sampler learns the figures either way.
    """
    import optuna

    with uninterrupted():
        _tell(study, trial, values, constraints, optuna.trial.TrialState.FAIL)


def _tell(study: Any, trial: Any, values: list[float] | None, constraints: dict[str, float], failed: Any) -> None:
    import optuna

    if isinstance(trial, optuna.trial.FrozenTrial):
        if values is not None:
            study.add_trial(
                optuna.trial.create_trial(
                    params=trial.params,
                    distributions=trial.distributions,
                    user_attrs=trial.user_attrs,
                    values=values,
                    constraints={rule: float(value) for rule, value in constraints.items()},
                )
            )
        study.tell(trial.number, state=failed)
        return
    if values is None:
        study.tell(trial, state=failed)
        return
    for rule, value in constraints.items():
        trial.set_constraint(rule, float(value))
    study.tell(trial, values)


def open_study(folder: Path, objectives: list[Objective], *, seed: int, trials: int, create: bool) -> Any:
    """The tune folder's study: created on a first run, loaded (with its history) on --resume."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").propagate = False
    storage = JournalStorage(JournalFileBackend(str(folder / JOURNAL)))
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", optuna.exceptions.ExperimentalWarning
        )  # multivariate / group: stable in use since Optuna 2.x
        sampler = optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, n_startup_trials=max(4, trials // 4)
        )
    directions: list[Any] = [objective.direction for objective in objectives]
    if create or STUDY_NAME not in {s.study_name for s in storage.get_all_studies()}:
        # a resumed tune that stopped before its study existed (at the boards, at Ray) starts it now
        return optuna.create_study(study_name=STUDY_NAME, storage=storage, sampler=sampler, directions=directions)
    return optuna.load_study(study_name=STUDY_NAME, storage=storage, sampler=sampler)


__all__ = ["JOURNAL", "STUDY_NAME", "open_study", "tell", "uninterrupted"]
