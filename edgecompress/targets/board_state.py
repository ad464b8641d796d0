"""What the board's state during timing means for its figures: was the clock steady, did it throttle?

The runner reads the board before and after every timing round (cpufreq per core, thermal
zones, Raspberry Pi's `vcgencmd get_throttled`, x86 thermal_throttle counters, load average,
free memory; firmware/runner/README.md). Here those readings become marks a person can act
on -- "clock changed in round 3: cpu0 1.80 -> 0.60 GHz" -- and a summary per board. Every
artifact is timed in every round, so a round's marks apply to every latency figure of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: a core's clock moving by more than this share between the readings around a round marks it
CLOCK_CHANGE = 0.10
#: throttling conditions that lower the clock (Raspberry Pi firmware's names)
SLOWING = ("arm frequency capped", "throttled", "soft temperature limit", "under-voltage")


def _ghz(khz: float) -> str:
    return f"{khz / 1e6:.2f} GHz"


def _clock_marks(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    changed, lowered = [], []
    for core, start in (before.get("cpufreq") or {}).items():
        end = (after.get("cpufreq") or {}).get(core)
        if not isinstance(start, dict) or not isinstance(end, dict):
            continue
        if start.get("khz") and end.get("khz") and abs(end["khz"] - start["khz"]) > CLOCK_CHANGE * start["khz"]:
            changed.append(f"{core} {_ghz(start['khz'])} → {_ghz(end['khz'])}")
        if start.get("max_khz") and end.get("max_khz") and end["max_khz"] < start["max_khz"]:
            lowered.append(f"{core} {_ghz(start['max_khz'])} → {_ghz(end['max_khz'])}")
    marks = []
    if changed:
        marks.append("clock changed: " + _listed(changed))
    if lowered:
        marks.append("clock ceiling lowered: " + _listed(lowered))
    return marks


def _listed(items: list[str], shown: int = 3) -> str:
    return ", ".join(items[:shown]) + (f" (and {len(items) - shown} more cores)" if len(items) > shown else "")


def _throttle_marks(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    marks = []
    now = sorted({flag for state in (before, after) for flag in ((state.get("throttled") or {}).get("now") or [])})
    if any(flag in SLOWING for flag in now):
        marks.append("throttled: " + ", ".join(now) + " (vcgencmd get_throttled)")
    earlier = set((before.get("throttled") or {}).get("since_boot") or [])
    new = sorted(set((after.get("throttled") or {}).get("since_boot") or []) - earlier)
    if new:
        marks.append("throttling began during the round: " + ", ".join(new))
    counts = [
        f"{core} +{after['throttle_counts'][core] - count}"
        for core, count in (before.get("throttle_counts") or {}).items()
        if isinstance((after.get("throttle_counts") or {}).get(core), int) and after["throttle_counts"][core] > count
    ]
    if counts:
        marks.append("thermal throttling events: " + _listed(counts))
    return marks


def round_marks(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Why the figures of a round deserve doubt: the clock moved, or the board throttled, during it."""
    return _clock_marks(before, after) + _throttle_marks(before, after)


def _span(values: Iterable[float | int | None]) -> list[float] | None:
    known = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return [min(known), max(known)] if known else None


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Ranges over every reading of the run: clock (GHz), hottest sensor (degrees C), 1-minute load, free memory."""
    states = [r[key] for r in rounds for key in ("state_before", "state_after") if isinstance(r.get(key), dict)]
    clocks = [core.get("khz") for s in states for core in (s.get("cpufreq") or {}).values() if isinstance(core, dict)]
    governors = sorted(
        {core.get("governor") for s in states for core in (s.get("cpufreq") or {}).values() if core.get("governor")}
    )
    hottest = [max(s["temperatures_c"].values()) for s in states if s.get("temperatures_c")]
    clock = _span(clocks)
    return {
        "readings": len(states),
        "clock_ghz": None if clock is None else [round(v / 1e6, 3) for v in clock],
        "governors": governors,
        "temperature_c": _span(hottest),
        "load_average_1m": _span((s.get("load_average") or [None])[0] for s in states),
        "memory_available_bytes": _span(s.get("memory_available_bytes") for s in states),
        "throttled": any((s.get("throttled") or {}).get("now") for s in states),
    }


__all__ = ["CLOCK_CHANGE", "round_marks", "summary"]
