"""The boards of a tune, the scarce resource: connected once, on the driver, one measurement at a time each.

Like TVM's RPC tracker, the pool hands each board to one measurement at a time and a trial
waits for the board, not the other way round; the boards of a fleet work in parallel (one
trial may measure on board A while another measures on board B). Every board is connected
and probed once, here, in the driver process: SSH identities and known_hosts never leave
this machine, and Ray workers never talk to a board.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgecompress.targets.base import MeasureJob, Measurement, Target

if TYPE_CHECKING:
    from edgecompress.targets.rounds import RoundsJob


@dataclass
class BoardUse:
    """How long measurements waited for the board and how long they kept it."""

    measurements: int = 0
    waited_s: float = 0.0
    busy_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"measurements": self.measurements, "waited_s": round(self.waited_s, 2), "busy_s": round(self.busy_s, 2)}


class PooledBoard(Target):
    """A connected board shared by the trials: `measure` waits for the board, `close` leaves it open for the next trial."""

    def __init__(self, target: Target, probe: dict[str, Any]) -> None:
        self.target = target
        self.name = target.name
        self._probe = probe
        self._lock = threading.Lock()
        self.use = BoardUse()

    def probe(self) -> dict[str, Any]:
        return self._probe

    def measure(self, job: MeasureJob) -> Measurement:
        asked = time.monotonic()
        with self._lock:
            got = time.monotonic()
            try:
                return self.target.measure(job)
            finally:
                self.use.measurements += 1
                self.use.waited_s += got - asked
                self.use.busy_s += time.monotonic() - got

    def measure_rounds(self, job: RoundsJob) -> Measurement | None:
        asked = time.monotonic()
        with self._lock:
            got = time.monotonic()
            try:
                return self.target.measure_rounds(job)
            finally:
                self.use.measurements += 1
                self.use.waited_s += got - asked
                self.use.busy_s += time.monotonic() - got

    def cancel(self) -> None:
        cancel = getattr(self.target, "cancel", None)
        if callable(cancel):
            cancel()

    def close(self) -> None:
        """Trials close their targets when they finish; the pool closes the real one at the end."""


@dataclass
class BoardPool:
    """Every board the tune measures on (fleet files expanded), connected and probed."""

    boards: list[PooledBoard] = field(default_factory=list)

    @classmethod
    def connect(cls, specs: list[str], options: dict[str, Any], say: Callable[[str], None]) -> BoardPool:
        """Connect to and probe every board once; a board that cannot be reached stops the tune before any trial."""
        from edgecompress.errors import EdgeCompressError
        from edgecompress.targets.fleet import fleet_targets, probe_fleet

        targets = fleet_targets(specs, **options, progress=lambda line: say(f"  {line}"))
        pool = cls()
        try:
            for target, (name, probe) in zip(targets, probe_fleet(targets).items()):
                if isinstance(probe, EdgeCompressError):
                    probe.problem = f"Board '{name}': {probe.problem}"
                    raise probe
                pool.boards.append(PooledBoard(target, probe))
                say(f"Board {name} joins the pool")
        except BaseException:
            for target in targets:
                target.close()
            raise
        return pool

    def use(self) -> dict[str, dict[str, Any]]:
        return {board.name: board.use.to_dict() for board in self.boards}

    def close(self) -> None:
        for board in self.boards:
            board.target.close()


__all__ = ["BoardPool", "BoardUse", "PooledBoard"]
