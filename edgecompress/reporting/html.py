"""A `Document` as one self-contained HTML file: inline CSS, figures embedded as base64 PNG.

The page must open from the file system, be mailed, or be archived by CI, and still show
everything; a Content-Security-Policy forbids every external load so a stray link to a
file or a CDN fails loudly in the browser instead of silently working only on one machine.
Headline cells carry `data-key` / `data-value` with the JSON value behind the text.
"""

from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path

from edgecompress.reporting.document import Bullets, Cards, Cell, Document, Figure, Paragraph, Table

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
:root { --ink: #1c2833; --muted: #5d6d7e; --line: #d5d8dc; --band: #f4f6f7; --good: #1e8449; --bad: #b03a2e; --accent: #0072b2; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: #fff; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 60px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 0; color: var(--muted); font-size: 13px; }
nav { margin: 14px 0 8px; font-size: 13px; }
nav a { color: var(--accent); margin-right: 14px; text-decoration: none; }
section { margin-top: 30px; }
h2 { font-size: 19px; border-bottom: 2px solid var(--line); padding-bottom: 4px; margin: 0 0 12px; }
ul { margin: 6px 0 12px; padding-left: 22px; }
p.lead-text strong { color: var(--ink); }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { flex: 1 1 260px; max-width: 380px; border: 1px solid var(--line); border-left: 5px solid var(--accent); border-radius: 6px; padding: 10px 14px; background: var(--band); }
.card.good { border-left-color: var(--good); } .card.bad { border-left-color: var(--bad); }
.card .title { font-size: 13px; color: var(--muted); }
.card .value { font-size: 24px; font-weight: 650; }
.card .detail { font-size: 13px; }
.table-wrap { overflow-x: auto; margin: 8px 0 14px; }
table { border-collapse: collapse; font-size: 13.5px; }
caption { caption-side: top; text-align: left; color: var(--muted); font-size: 13px; padding-bottom: 4px; }
th, td { padding: 5px 7px; border-bottom: 1px solid var(--line); }
td.num, td:first-child { white-space: nowrap; }
th { background: var(--band); text-align: left; font-weight: 600; vertical-align: bottom; min-width: 3.5em; }
th[title] { text-decoration: underline dotted; cursor: help; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.good { color: var(--good); font-weight: 600; } td.bad { color: var(--bad); font-weight: 600; }
tbody tr:hover { background: #fbfcfc; }
details { margin: 8px 0 14px; } summary { cursor: pointer; color: var(--accent); font-size: 14px; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
"""


def render(document: Document) -> str:
    sections = "\n".join(
        f'<section id="{escape(section.id)}">\n<h2>{escape(section.title)}</h2>\n'
        + "\n".join(_block(block) for block in section.blocks)
        + "\n</section>"
        for section in document.sections
    )
    nav = " ".join(f'<a href="#{escape(s.id)}">{escape(s.title)}</a>' for s in document.sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="edgecompress">
<title>{escape(document.title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header><h1>{escape(document.title)}</h1><p>{escape(document.subtitle)}</p></header>
<nav>{nav}</nav>
{sections}
<footer>Written by edgecompress. Every number on this page is in report.json next to it.</footer>
</main>
</body>
</html>
"""


def _block(block: object) -> str:
    if isinstance(block, Paragraph):
        lead = f"<strong>{escape(block.lead)}</strong> " if block.lead else ""
        return f'<p class="lead-text">{lead}{escape(block.text)}</p>'
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Cards):
        return (
            '<div class="cards">'
            + "".join(
                f'<div class="card {escape(card.tone)}" data-key="{escape(card.key)}"><div class="title">{escape(card.title)}</div>'
                f'<div class="value">{escape(card.value)}</div><div class="detail">{escape(card.detail)}</div></div>'
                for card in block.cards
            )
            + "</div>"
        )
    if isinstance(block, Figure):
        return (
            f'<figure><img src="{embedded_png(block.path)}" alt="{escape(block.alt)}">'
            f"<figcaption>{escape(block.caption)}</figcaption></figure>"
        )
    if isinstance(block, Table):
        return _table(block)
    raise TypeError(f"no HTML for {type(block).__name__}")


def embedded_png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _table(table: Table) -> str:
    head = "".join(
        f"<th{_class('num' if column.numeric else '')}{_attr('title', column.help)}>{escape(column.title)}</th>"
        for column in table.columns
    )
    body = "".join(
        "<tr>" + "".join(_cell(cell, column.numeric) for cell, column in zip(row, table.columns)) + "</tr>"
        for row in table.rows
    )
    caption = f"<caption>{escape(table.caption)}</caption>" if table.caption and not table.collapsed else ""
    html = f'<div class="table-wrap"><table{_attr("id", table.id)}>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    if table.collapsed:
        summary = f"{table.caption or 'Table'} ({len(table.rows)} rows)"
        return f"<details><summary>{escape(summary)}</summary>{html}</details>"
    return html


def _cell(cell: Cell, numeric: bool) -> str:
    classes = " ".join(c for c in ("num" if numeric else "", cell.tone) if c)
    data = _attr("data-key", cell.key)
    if cell.key and cell.value is not None:
        data += _attr("data-value", json.dumps(cell.value))
    return f"<td{_class(classes)}{data}>{escape(cell.text)}</td>"


def _class(classes: str) -> str:
    return _attr("class", classes)


def _attr(name: str, value: str) -> str:
    return f' {name}="{escape(value)}"' if value else ""
