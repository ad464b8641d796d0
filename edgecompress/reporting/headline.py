"""The headline table's columns: one definition for the terminal, Markdown, HTML and --json.

Each column names the field of a `report["comparison"]` row it shows (see
docs/report-schema.md), how it is formatted, and whether a higher value is good news.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecompress.hardware import StandIn, stand_in
from edgecompress.reporting import formatting as fmt


@dataclass(frozen=True)
class HeadlineColumn:
    key: str  # field of a comparison row
    title: str
    format: fmt.Formatter
    help: str = ""
    numeric: bool = True
    higher_is_better: bool | None = None  # colour the value as a change when set
    terminal: bool = True  # shown in the table printed at the end of deploy


HEADLINE_COLUMNS: tuple[HeadlineColumn, ...] = (
    HeadlineColumn("artifact", "artifact", fmt.text, "exported model file", numeric=False),
    HeadlineColumn("target", "target", fmt.text, "device it was measured on", numeric=False),
    HeadlineColumn("file_bytes", "file", fmt.human_bytes, "bytes copied to the device"),
    HeadlineColumn("gzip_bytes", "gzip", fmt.human_bytes, "gzip -9 of the file: download / compressed-flash cost"),
    HeadlineColumn(
        "bitpacked_bytes",
        "bit-packed",
        fmt.human_bytes,
        "weights at ceil(log2(unique values)) bits + codebooks + biases: what a packing kernel could reach",
    ),
    HeadlineColumn(
        "smaller_x_file",
        "smaller (file)",
        fmt.ratio,
        "baseline file size / this file size (a firmware: / the flash its model takes)",
        higher_is_better=True,
    ),
    HeadlineColumn(
        "smaller_x_bitpacked",
        "smaller (bit-packed)",
        fmt.ratio,
        "baseline bit-packed size / this one",
        higher_is_better=True,
    ),
    HeadlineColumn("latency_median_ms", "median ms", fmt.milliseconds, "median latency of one batch-1 inference"),
    HeadlineColumn("latency_p90_ms", "p90 ms", fmt.milliseconds, "90th percentile latency"),
    HeadlineColumn(
        "instructions_median",
        "instructions",
        fmt.integer,
        "median instructions per inference on an emulated microcontroller core (QEMU -icount): counted, not timed",
    ),
    HeadlineColumn(
        "estimated_latency_ms",
        "est. ms",
        fmt.milliseconds,
        "estimate for an emulated microcontroller: instructions x assumed cycles per instruction / the profile's clock",
        terminal=False,
    ),
    HeadlineColumn(
        "speedup_x",
        "speed-up",
        fmt.ratio,
        "baseline median latency / this median latency, both at the row's threads (the profile's core count; "
        "one thread: see 'Compute, threads and where the time goes')",
        higher_is_better=True,
    ),
    HeadlineColumn(
        "mac_ratio_x",
        "MAC ratio",
        fmt.ratio,
        "baseline MACs / this artifact's MACs, counted from each exported graph: the theoretical speed-up",
        higher_is_better=True,
    ),
    HeadlineColumn(
        "peak_rss_bytes", "peak RSS", fmt.human_bytes, "peak resident memory of the runner process after the timed runs"
    ),
    HeadlineColumn("accuracy", "accuracy", fmt.percent, "top-1 accuracy on the evaluation set, measured on the device"),
    HeadlineColumn(
        "accuracy_delta_points",
        "Δ accuracy",
        fmt.points,
        "accuracy change against the baseline, in points",
        higher_is_better=True,
    ),
    HeadlineColumn(
        "fits_budget",
        "fits budget",
        fmt.yes_no,
        "file size within the profile's artifact budget",
        numeric=False,
        terminal=False,
    ),
    HeadlineColumn(
        "runtime",
        "runtime",
        fmt.text,
        "inference runtime on the device (threads and run counts: see below)",
        numeric=False,
        terminal=False,
    ),
)


def tone_of(column: HeadlineColumn, value: object) -> str:
    """Ratios are good above 1, point changes above 0; other columns are not coloured."""
    if column.higher_is_better is None or not isinstance(value, (int, float)):
        return ""
    centre = 1.0 if column.format is fmt.ratio else 0.0
    return fmt.tone(round(value - centre, 6), higher_is_better=column.higher_is_better)


def stand_ins(report: dict[str, Any]) -> list[StandIn]:
    """The report's targets that are not the profile's device (see hardware.stand_in)."""
    found = [stand_in(report["profile"], entry) for entry in report.get("targets") or [] if isinstance(entry, dict)]
    return [entry for entry in found if entry is not None]


def report_title(report: dict[str, Any]) -> str:
    """'digits_cnn.h5 for rpi4', naming the stand-in too when the figures were not taken on the device:
    'digits_cnn.h5 for rpi4, timed on this x86-64 host (a stand-in)'."""
    title = f"{Path(report['model']['path']).name} for {report['profile']['name']}"
    standing = stand_ins(report)
    if standing:
        title += ", " + "; ".join(f"{s.verb} on {s.host}" for s in standing) + " (a stand-in)"
    return title
