"""report.html as a person meets it: opened from disk in a real browser (Debian's chromium).

The page must load with no console error, no failed or external request and every figure
decoded, and the headline numbers a reader sees must be the ones in report.json. Needs
`chromium` (apt-get install chromium) and Playwright (a test dependency) to drive it.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_reporting import copy_run

from edgecompress.reporting.compare import write_comparison
from edgecompress.reporting.headline import HEADLINE_COLUMNS

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Debian's chromium is not installed (apt-get install chromium); "
        "the HTML report is only checked in a real browser",
    ),
]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright  # test dependency: pip install -e '.[test]'

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Visit:
    """One page opened from the file system, with everything that went wrong while loading it."""

    def __init__(self, browser, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.page.on(
            "console",
            lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None,
        )
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url} {r.failure}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.as_uri(), wait_until="load")

    def broken_images(self) -> list[str]:
        return self.page.evaluate(
            "[...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt)"
        )

    def close(self) -> None:
        self.page.close()


@pytest.fixture()
def visit(browser):
    opened: list[Visit] = []

    def open_(path: Path) -> Visit:
        opened.append(Visit(browser, path))
        return opened[-1]

    yield open_
    for page in opened:
        page.close()


def read_back(text: str) -> tuple[float, float]:
    """A number as a reader takes it off the page, and half a unit of its last digit.

    '152.8 KiB' -> (156467.2, 51.2); '94.50%' -> (0.945, 0.00005); '+0.50 pt' -> (0.5, 0.005).
    """
    match = re.fullmatch(r"([+-]?[\d,]*\.?\d+)\s*(B|KiB|MiB|GiB|%|x|pt)?", text.strip())
    assert match, f"not a number as shown: {text!r}"
    digits, unit = match[1].replace(",", ""), match[2]
    scale = {"KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "%": 0.01}.get(unit, 1)
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return float(digits) * scale, 0.5 * 10**-decimals * scale


# ------------------------------------------------------------------------------ the run's report


def test_report_opens_from_disk_with_no_error_and_every_figure_shown(visit, run_dir: Path) -> None:
    page = visit(run_dir / "report.html")

    assert page.problems == []
    assert page.requests == [(run_dir / "report.html").as_uri()] or all(
        url.startswith("data:image/png") for url in page.requests[1:]
    )
    assert page.broken_images() == []
    figures_in_markdown = sum(line.startswith("![") for line in (run_dir / "report.md").read_text().splitlines())
    assert page.page.locator("img").count() == figures_in_markdown >= 6
    assert page.page.title() == page.page.locator("h1").inner_text()


def test_headline_numbers_on_the_page_equal_the_json(visit, run_dir: Path, report: dict) -> None:
    page = visit(run_dir / "report.html").page
    assert "Measured on local: " in page.locator("#headline-section").inner_text()  # the one target, named once
    checked = 0
    for row in report["comparison"]:
        for column in HEADLINE_COLUMNS:
            value = row.get(column.key)
            cell = page.locator(f'td[data-key="{row["artifact"]}@{row["target"]}:{column.key}"]')
            if value is None or column.key == "target":
                assert cell.count() == 0 or cell.inner_text() == "—"
                continue
            assert cell.count() == 1, column.key
            shown = cell.inner_text()
            assert shown == column.format(value), column.key
            assert json.loads(cell.get_attribute("data-value")) == value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                assert shown == ("yes" if value is True else "no" if value is False else str(value))
            else:
                number, half_digit = read_back(shown)
                assert abs(number - value) <= half_digit * 1.0001 + 1e-12, (column.key, shown, value)
            checked += 1
    assert checked >= 12 * len(report["comparison"])


def test_glance_cards_state_each_artifact_against_the_baseline(visit, run_dir: Path, report: dict) -> None:
    page = visit(run_dir / "report.html").page
    compressed = [row for row in report["comparison"] if row["artifact"] != report["baseline"]]
    cards = page.locator(".card")
    assert cards.count() == len(compressed)
    for row in compressed:
        card = page.locator(f'.card[data-key="{row["artifact"]}@{row["target"]}:glance"]')
        assert card.locator(".value").inner_text() == f"{row['smaller_x_file']:.2f}x smaller"
        assert f"{100 * row['accuracy']:.2f}%" in card.locator(".detail").inner_text()


def test_per_class_table_shows_the_recall_of_every_class(visit, run_dir: Path, report: dict) -> None:
    page = visit(run_dir / "report.html").page
    block = report["per_class"][0]
    table = page.locator(f"table#classes-{block['target']}")
    assert table.is_visible()
    rows = table.locator("tbody tr")
    assert rows.count() == len(block["classes"])
    for index, entry in enumerate(block["classes"]):
        cells = rows.nth(index).locator("td")
        assert cells.nth(0).inner_text() == entry["name"]
        assert cells.nth(2).inner_text() == f"{100 * entry['recall'][block['baseline']]:.2f}%"


def test_folded_tables_open_on_click(visit, run_dir: Path) -> None:
    page = visit(run_dir / "report.html").page
    folded = page.locator("details").first
    table = folded.locator("table")
    assert not table.is_visible()
    folded.locator("summary").click()
    assert table.is_visible() and table.locator("tbody tr").count() >= 1


def test_the_page_reads_as_a_picture(browser, run_dir: Path, tmp_path: Path) -> None:
    """A full-page screenshot that is tall and not blank, with the headline table fully in view."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto((run_dir / "report.html").as_uri(), wait_until="load")
    overflow = page.evaluate(
        "(() => { const t = document.querySelector('table#headline');"
        " return t.getBoundingClientRect().width - t.parentElement.clientWidth; })()"
    )
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert pixels.shape[0] > 2500 and pixels.std() > 10
    assert overflow <= 0  # the headline table needs no sideways scrolling on a laptop screen


def test_a_report_that_needs_outside_files_is_caught(visit, run_dir: Path, tmp_path: Path) -> None:
    """The checks above would notice a report that only works next to its figures or online."""
    copy = copy_run(run_dir, tmp_path)
    html = (copy / "report.html").read_text()
    leaky = html.replace(
        "</main>", '<img src="figures/latency.png" alt="file"><img src="https://example.com/x.png" alt="net"></main>'
    )
    (copy / "report.html").write_text(leaky)

    page = visit(copy / "report.html")

    assert len([p for p in page.problems if "Content Security Policy" in p]) >= 2
    assert set(page.broken_images()) == {"file", "net"}


# ------------------------------------------------------------------------------ several runs


def test_comparison_page_loads_and_shows_the_json_numbers(visit, run_dir: Path, report: dict, tmp_path: Path) -> None:
    other = copy_run(run_dir, tmp_path / "second")
    comparison, files = write_comparison([run_dir, other], tmp_path / "out")

    page = visit(files[1])

    assert page.problems == [] and page.broken_images() == []
    assert page.page.locator("img").count() == len(comparison.figures) == 2
    for run in comparison.runs:
        for row in run.report["comparison"]:
            cell = page.page.locator(f'td[data-key="{run.label}/{row["artifact"]}@{row["target"]}:accuracy"]')
            assert cell.inner_text() == f"{100 * row['accuracy']:.2f}%"
