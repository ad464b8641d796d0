"""A report as data: sections of paragraphs, tables and figures, with no output format in it.

The content of a report is decided once (`content.py`, `compare.py`) and then written by
`markdown.py` and `html.py`; so report.md and report.html can never tell different stories.
Cells keep the raw JSON value next to the text shown, which lets HTML carry it for scripts
and lets tests check that what people read is what report.json says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Cell:
    text: str
    value: Any = None  # the number behind `text`, as in report.json
    tone: str = ""  # 'good' | 'bad' | '' : how a change should be coloured
    key: str = ""  # stable name of the figure, e.g. 'ptq-int8@local:accuracy'


@dataclass(frozen=True)
class Column:
    title: str
    numeric: bool = False
    help: str = ""  # what the column means, shown as a tooltip / footnote


@dataclass
class Table:
    columns: list[Column]
    rows: list[list[Cell]]
    caption: str = ""
    id: str = ""
    collapsed: bool = False  # long tables (every class, every layer) fold away in HTML


@dataclass(frozen=True)
class Figure:
    path: Path  # PNG on disk; Markdown links it, HTML embeds it
    caption: str
    alt: str


@dataclass(frozen=True)
class Paragraph:
    text: str
    lead: str = ""  # shown in bold before the text


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Card:
    """One at-a-glance figure: 'ptq-int8 / 3.42x smaller'."""

    title: str
    value: str
    detail: str = ""
    tone: str = ""
    key: str = ""


@dataclass(frozen=True)
class Cards:
    cards: list[Card]


Block = Paragraph | Bullets | Table | Figure | Cards


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    id: str = ""


@dataclass
class Document:
    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)


def cell(value: Any, formatter: Any, *, key: str = "", tone: str = "") -> Cell:
    """A cell whose text is `formatter(value)`: the one way numbers enter a table."""
    return Cell(text=formatter(value), value=value, tone=tone, key=key)
