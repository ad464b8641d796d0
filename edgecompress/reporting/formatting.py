"""How numbers look on every surface (terminal, Markdown, HTML), defined once.

A figure that reads "3.42x" in the terminal must read "3.42x" in the HTML page too, or people
stop trusting either; so every renderer formats through these functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DASH = "—"

Formatter = Callable[[Any], str]


def human_bytes(n: float | None) -> str:
    """1536 -> '1.5 KiB': binary units, because flash and RAM budgets are quoted in them."""
    if n is None:
        return DASH
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def milliseconds(value: float | None) -> str:
    """Three significant figures without scientific notation: 0.0102, 1.23, 12.3, 123."""
    if value is None:
        return DASH
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def ratio(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}x"


def speed(speedup: float | None) -> str:
    """A speed-up as words: '1.20x faster', '6.25x slower' (not '0.16x', which people misread)."""
    if speedup is None:
        return DASH
    return f"{speedup:.2f}x faster" if speedup >= 1 else f"{1 / speedup:.2f}x slower"


def percent(value: float | None) -> str:
    """A 0..1 share as a percentage with two decimals (accuracy, recall)."""
    return DASH if value is None else f"{100 * value:.2f}%"


def points(value: float | None) -> str:
    """A change in percentage points, always signed so a loss cannot be misread as a level."""
    if value is None:
        return DASH
    return f"{value:+.2f} pt"


def integer(value: float | None) -> str:
    return DASH if value is None else f"{int(value):,}"


def count(n: int, singular: str, plural: str) -> str:
    """'1 class', '3 classes'."""
    return f"{n:,} {singular if n == 1 else plural}"


def number(value: float | None) -> str:
    """A measured dimension such as an intrinsic dimension: one decimal."""
    return DASH if value is None else f"{value:.1f}"


def figure(value: float | None) -> str:
    """A task's figure in its own units (an MAE, a ROC AUC, R²): four significant digits."""
    return DASH if value is None else f"{value:.4g}"


def fraction(value: float | None) -> str:
    """A figure between 0 and 1 (a ROC AUC): four decimals, so 1.0000 stands beside 0.9371, not '1'."""
    return DASH if value is None else f"{value:.4f}"


def signed_figure(value: float | None) -> str:
    """A change of a task's figure in its own units, always signed."""
    return DASH if value is None else f"{value:+.4g}"


def decibels(value: float | None) -> str:
    """A signal-to-noise ratio."""
    return DASH if value is None else f"{value:.1f} dB"


def yes_no(value: bool | None) -> str:
    return DASH if value is None else ("yes" if value else "no")


def text(value: Any) -> str:
    return DASH if value is None or value == "" else str(value)


def runtime(value: Any) -> str:
    """{'name': 'ai_edge_litert', 'version': '2.3.0'} -> 'ai_edge_litert 2.3.0'."""
    if isinstance(value, dict):
        return " ".join(str(part) for part in (value.get("name"), value.get("version")) if part) or DASH
    return text(value)


def tone(value: float | None, *, higher_is_better: bool = True) -> str:
    """'good' / 'bad' / '' for colouring a change; renderers decide what the words look like."""
    if value is None or value == 0:
        return ""
    return "good" if (value > 0) == higher_is_better else "bad"
