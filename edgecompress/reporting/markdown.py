"""A `Document` as GitHub-flavoured Markdown; figures are linked as files next to report.md."""

from __future__ import annotations

import os
from pathlib import Path

from edgecompress.reporting.document import Bullets, Cards, Document, Figure, Paragraph, Table


def render(document: Document, *, base: Path) -> str:
    """Markdown text; figure links are relative to `base`, the folder the .md file is written to."""
    lines = [f"# {_escape(document.title)}", ""]
    if document.subtitle:
        lines += [f"_{_escape(document.subtitle)}_", ""]
    lines += [f"- [{_escape(section.title)}](#{section.id})" for section in document.sections] + [""]
    for section in document.sections:
        lines += [f'<a id="{section.id}"></a>', f"## {_escape(section.title)}", ""]
        for block in section.blocks:
            lines += _block(block, base) + [""]
    return "\n".join(lines).rstrip() + "\n"


def _block(block: object, base: Path) -> list[str]:
    if isinstance(block, Paragraph):
        return [(f"**{_escape(block.lead)}** " if block.lead else "") + _escape(block.text)]
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


#: characters that can start Markdown (or raw HTML) anywhere in a line
_INLINE_MARKUP = "\\`*_[]<>&~"
#: characters that start a block (heading, quote, list) at the beginning of a line
_LINE_START_MARKUP = "#>-+"


def _escape(text: str) -> str:
    """Show outside text (layer and class names, paths, messages) as written: 'conv2d_1' must
    not turn into emphasis, nor '<img ...>' or '[x](y)' into HTML or a link."""
    escaped = "".join(f"\\{c}" if c in _INLINE_MARKUP else c for c in str(text))
    return f"\\{escaped}" if escaped[:1] in _LINE_START_MARKUP and escaped else escaped
