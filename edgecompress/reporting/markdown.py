"""A `Document` as GitHub-flavoured Markdown; figures are linked as files next to report.md."""

from __future__ import annotations

import os
from pathlib import Path

from edgecompress.reporting.document import Bullets, Cards, Document, Figure, Paragraph, Table


def render(document: Document, *, base: Path) -> str:
    """Markdown text; figure links are relative to `base`, the folder the .md file is written to."""
    lines = [f"# {document.title}", ""]
    if document.subtitle:
        lines += [f"_{_escape(document.subtitle)}_", ""]
    lines += [f"- [{section.title}](#{section.id})" for section in document.sections] + [""]
    for section in document.sections:
        lines += [f'<a id="{section.id}"></a>', f"## {section.title}", ""]
        for block in section.blocks:
            lines += _block(block, base) + [""]
    return "\n".join(lines).rstrip() + "\n"


def _block(block: object, base: Path) -> list[str]:
    if isinstance(block, Paragraph):
        return [(f"**{block.lead}** " if block.lead else "") + _escape(block.text)]
    if isinstance(block, Bullets):
        return [f"- {_escape(item)}" for item in block.items]
    if isinstance(block, Cards):
        return [f"- **{_escape(card.title)}: {_escape(card.value)}** — {_escape(card.detail)}" for card in block.cards]
    if isinstance(block, Figure):
        link = Path(os.path.relpath(block.path, base)).as_posix()
        return [f"![{_escape(block.alt)}]({link})", "", f"*{_escape(block.caption)}*"]
    if isinstance(block, Table):
        return _table(block)
    raise TypeError(f"no Markdown for {type(block).__name__}")


def _table(table: Table) -> list[str]:
    header = "| " + " | ".join(_cell(column.title) for column in table.columns) + " |"
    rule = "|" + "|".join("---:" if column.numeric else "---" for column in table.columns) + "|"
    rows = ["| " + " | ".join(_cell(cell.text) for cell in row) + " |" for row in table.rows]
    caption = [f"*{_escape(table.caption)}*", ""] if table.caption else []
    return caption + [header, rule, *rows]


def _cell(text: str) -> str:
    return _escape(text).replace("|", "\\|").replace("\n", " ")


def _escape(text: str) -> str:
    """Keep names like 'conv2d_1' or '*' in class names from turning into emphasis."""
    return str(text).replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_")
