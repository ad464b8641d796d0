"""One board's interleaved timing rounds, read back: per artifact its rounds and figures, the board's noise floor.

The Measure step keeps the runner's rounds document (checked by targets.rounds_check) as
`measurements/rounds@<board>.json`, with the artifact names in the order the models were
sent; the first is the baseline, whose second slot per round gives the noise floor. Every
latency figure of a report comes from here: an artifact's median is the median of its round
medians (statistics.rounds_interval), a comparison is a ratio paired round by round.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgecompress.decision import statistics as stats
from edgecompress.targets.board_state import round_marks, summary
from edgecompress.targets.energy import artifact_energy

#: how the second slot of the baseline is named where rounds are listed
SECOND = " (again)"


@dataclass(frozen=True)
class TimedInRounds:
    """What a verdict needs of one artifact's rounds: its samples, its run's baseline, and the board's noise."""

    run: str  # BoardTiming.id: equal for artifacts timed in the same rounds
    rounds: list[list[float]]
    baseline_rounds: list[list[float]]
    noise: stats.NoiseFloor | None


def rounds_ratio(a: TimedInRounds, b: TimedInRounds) -> stats.Ratio | None:
    """a's latency over b's: paired round by round when timed in the same rounds, else each against its own
    run's baseline (the same file), so that drift between the two runs cancels."""
    if a.run == b.run:
        return stats.paired_ratio(a.rounds, b.rounds)
    a_base, b_base = stats.paired_ratio(a.rounds, a.baseline_rounds), stats.paired_ratio(b.rounds, b.baseline_rounds)
    return None if a_base is None or b_base is None else stats.through_baselines(a_base, b_base)


@dataclass(frozen=True)
class BoardTiming:
    """One rounds document of one board, indexed by artifact and thread count."""

    target: str
    id: str  # identifies these rounds: two artifacts with the same id were timed in the same rounds
    artifacts: list[str]
    document: dict[str, Any]
    samples: dict[tuple[str, int], list[list[float]]] = field(default_factory=dict)
    noise_samples: list[list[float]] = field(default_factory=list)

    @classmethod
    def from_file(cls, saved: dict[str, Any]) -> BoardTiming:
        """From `measurements/rounds@<board>.json` ({target, artifacts, result}); the result was checked when it came in."""
        document = saved["result"]
        names = list(saved["artifacts"])
        slots = document["slots"]
        samples: dict[tuple[str, int], list[list[float]]] = {}
        noise: list[list[float]] = []
        main = document["threads"]
        for result in document["round_results"]:
            for timing in result["timings"]:
                slot = slots[timing["slot"]]
                if slot["copy"]:
                    if timing["threads"] == main:
                        noise.append(timing["samples"])
                    continue
                samples.setdefault((names[slot["model"]], timing["threads"]), []).append(timing["samples"])
        digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16]
        return cls(saved["target"], digest, names, document, samples, noise)

    @property
    def baseline(self) -> str:
        return self.artifacts[0]

    @property
    def threads(self) -> int:
        return int(self.document["threads"])

    def rounds(self, artifact: str, threads: int | None = None) -> list[list[float]] | None:
        return self.samples.get((artifact, self.threads if threads is None else threads))

    def noise(self) -> stats.NoiseFloor | None:
        base = self.rounds(self.baseline)
        return stats.noise_floor(base, self.noise_samples, self.baseline) if base and self.noise_samples else None

    def timed(self, artifact: str, noise: stats.NoiseFloor | None) -> TimedInRounds | None:
        rounds, base = self.rounds(artifact), self.rounds(self.baseline)
        return None if not rounds or not base else TimedInRounds(self.id, rounds, base, noise)

    def latency(self, artifact: str, threads: int | None = None) -> dict[str, Any] | None:
        """measurements[].latency_ms: the median of round medians, and every other statistic over all timed runs."""
        rounds = self.rounds(artifact, threads)
        if not rounds:
            return None
        values = np.asarray([v for r in rounds for v in r], dtype=np.float64)
        medians = stats.round_medians(rounds)
        return {
            "warmup": self.document["warmup"] * len(rounds),
            "runs": int(values.size),
            "rounds": len(rounds),
            "median": round(float(np.median(medians)), 6),
            "p90": round(float(np.percentile(values, 90)), 6),
            "p99": round(float(np.percentile(values, 99)), 6),
            "mean": round(float(values.mean()), 6),
            "std": round(float(values.std(ddof=1)) if values.size > 1 else 0.0, 6),
            "min": round(float(values.min()), 6),
            "max": round(float(values.max()), 6),
            "round_medians": [round(m, 6) for m in medians],
            "method": f"median of {len(rounds)} round medians (interleaved rounds); other statistics over all timed runs",
        }

    def latency_by_threads(self, artifact: str) -> list[dict[str, Any]]:
        """measurements[].latency_by_threads: the rounds at every thread count besides the main one."""
        return [
            {"threads": count, "requested": count, "latency_ms": latency}
            for count in self.document["thread_counts"][1:]
            if (latency := self.latency(artifact, count)) is not None
        ]

    def order(self) -> list[list[str]]:
        """The artifacts in the order each round timed them."""
        slots = self.document["slots"]
        return [
            [self.artifacts[slots[s]["model"]] + (SECOND if slots[s]["copy"] else "") for s in result["order"]]
            for result in self.document["round_results"]
        ]

    def marks(self) -> list[dict[str, Any]]:
        """Per round: its readings' marks (clock changes, throttling) -- they apply to every figure of the round."""
        return [
            {"round": r["round"], "marks": round_marks(r["state_before"], r["state_after"])}
            for r in self.document["round_results"]
        ]

    def energy(self, artifact: str) -> dict[str, Any]:
        model = self.artifacts.index(artifact)
        slots = self.document["slots"]
        windows = [
            window
            for result in self.document["round_results"]
            for window in result.get("energy") or []
            if slots[window["slot"]]["model"] == model and not slots[window["slot"]]["copy"]
        ]
        power = (self.document.get("board") or {}).get("power")
        return artifact_energy(windows, power.get("method") if isinstance(power, dict) else None)

    def section(self, file: str) -> dict[str, Any]:
        """The report's `timing[]` entry for this board."""
        noise = self.noise()
        marked = [m for m in self.marks() if m["marks"]]
        return {
            "target": self.target,
            "id": self.id,
            "file": file,
            "rounds": self.document["rounds"],
            "warmup_per_round": self.document["warmup"],
            "runs_per_round": self.document["runs"],
            "cooldown_s": self.document.get("cooldown_s"),
            "threads": self.threads,
            "thread_counts": self.document["thread_counts"],
            "baseline": self.baseline,
            "order": self.order(),
            "noise": noise.to_dict() if noise else None,
            "noise_pair": self._noise_pair(noise),
            "board": self.document.get("board"),
            "board_summary": summary(self.document["round_results"]),
            "marked_rounds": marked,
            "artifacts": {name: self._artifact(name, marked) for name in self.artifacts},
        }

    def _noise_pair(self, noise: stats.NoiseFloor | None) -> dict[str, Any] | None:
        """The baseline's second slot against its first, as any two artifacts are compared: by construction of
        the noise floor, equally fast."""
        base = self.rounds(self.baseline)
        if not base or not self.noise_samples:
            return None
        speed = stats.compare_in_rounds(
            stats.paired_ratio(self.noise_samples, base), noise, reference_name=self.baseline
        )
        return {**speed.to_dict(), "words": f"{self.baseline}{SECOND} is {speed.words}"}

    def _artifact(self, name: str, marked: list[dict[str, Any]]) -> dict[str, Any]:
        rounds = self.rounds(name) or []
        interval = stats.rounds_interval(rounds)
        return {
            "median_ms": interval.median if interval else None,
            "interval_ms": [interval.low, interval.high] if interval else None,
            "round_medians": [round(m, 6) for m in stats.round_medians(rounds)],
            "marks": [f"round {m['round'] + 1}: {'; '.join(m['marks'])}" for m in marked],
            "energy": self.energy(name),
        }


__all__ = ["SECOND", "BoardTiming", "TimedInRounds", "rounds_ratio"]
