"""Energy per inference from the power readings a board sent, computed here rather than believed.

Where a board exposes power (hwmon power*_input, or in*_input x curr*_input; Jetson's INA3221
rails; Raspberry Pi 5's PMIC through `vcgencmd pmic_read_adc`), the runner reads it for a
window while idle and for a window while inferring, per artifact and round
(firmware/runner/README.md). Energy per inference = (mean power while inferring - mean idle
power just before) x the time per inference in that window: the energy the inference adds
to what the board burns anyway. The median over rounds is reported, with the spread.
"""

from __future__ import annotations

import statistics
from typing import Any

NOT_MEASURED = (
    "not measured: the board exposes no power sensor (hwmon power*_input or in*_input x curr*_input, "
    "Jetson INA3221, Raspberry Pi 5 PMIC)"
)


def window_energy(window: dict[str, Any]) -> dict[str, float] | None:
    """One idle + inferring window -> idle W, inferring W, seconds per inference and joules per inference."""
    idle, active = window.get("idle") or {}, window.get("active") or {}
    idle_w, active_w = idle.get("watts") or [], active.get("watts") or []
    count, seconds = active.get("inferences"), active.get("seconds")
    if not idle_w or not active_w or not count or not seconds:
        return None
    per_inference = seconds / count
    idle_mean, active_mean = statistics.fmean(idle_w), statistics.fmean(active_w)
    return {
        "idle_w": idle_mean,
        "active_w": active_mean,
        "seconds_per_inference": per_inference,
        "joules_per_inference": (active_mean - idle_mean) * per_inference,
    }


def artifact_energy(windows: list[dict[str, Any]], method: str | None) -> dict[str, Any]:
    """The median over an artifact's rounds of its energy per inference, or why there is none."""
    figures = [f for w in windows if (f := window_energy(w)) is not None]
    if not figures:
        return {"measured": False, "reason": NOT_MEASURED if method is None else "no complete power window"}
    joules = [f["joules_per_inference"] for f in figures]
    return {
        "measured": True,
        "millijoules_per_inference": round(1000 * statistics.median(joules), 6),
        "millijoules_range": [round(1000 * min(joules), 6), round(1000 * max(joules), 6)],
        "idle_w": round(statistics.median(f["idle_w"] for f in figures), 4),
        "active_w": round(statistics.median(f["active_w"] for f in figures), 4),
        "rounds": len(figures),
        "method": f"{method}: (mean power while inferring - mean idle power just before) x time per inference, "
        "median over rounds",
    }


__all__ = ["NOT_MEASURED", "artifact_energy", "window_energy"]
