"""The HTML report in a real browser: it fits a laptop screen (no horizontal overflow of the page or of the main
table), every figure is there and drawn, and the decision view comes first.

Needs playwright (pip) and a Chromium binary: Debian's ``/usr/bin/chromium`` (``apt-get install -y chromium``), or
``HARBENCH_CHROMIUM=/path/to/chrome``; without them the test skips and says so.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from harbench.cli import main

from .test_decision import planted_run

LAPTOP = {"width": 1366, "height": 768}


def _chromium() -> str:
    path = os.environ.get("HARBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path or not Path(path).exists():
        pytest.skip("needs a Chromium binary: apt-get install -y chromium (or HARBENCH_CHROMIUM=/path/to/chrome)")
    return path


FIGURES_SCRIPT = """() => {
    const doc = document.documentElement, main = document.querySelector('table.main');
    const cells = [...main.querySelectorAll('tbody td')];
    const line = parseFloat(getComputedStyle(cells[0]).lineHeight) || 16;
    return {pageWidth: doc.scrollWidth, viewport: doc.clientWidth,
            mainRight: main.getBoundingClientRect().right,
            tallest: Math.max(...cells.map(c => c.getBoundingClientRect().height)), line: line,
            figures: [...document.querySelectorAll('figure')].map(f => {
                const svg = f.querySelector('svg'), r = svg ? svg.getBoundingClientRect() : null;
                return {id: f.id, width: r ? r.width : 0, height: r ? r.height : 0,
                        right: r ? r.right : 0}; }),
            first: document.querySelector('section').id,
            verdicts: [...document.querySelectorAll('.verdict')].map(v => v.textContent)};
}"""


OVERFLOW = """() => {
    const doc = document.documentElement, view = doc.clientWidth;
    // a table inside a .scroll box (the plugins' wide summary tables) scrolls inside it, not the page: the box
    // must fit; the decision view's tables are in no such box and must fit whole
    const boxes = [...document.querySelectorAll('table, figure svg, h2, h3, p, details, .scroll')]
        .filter(e => !e.parentElement.closest('.scroll')).map(e => {
        const r = e.getBoundingClientRect();
        return {tag: e.tagName, text: (e.textContent || '').slice(0, 40), right: r.right, left: r.left,
                clipped: e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX === 'hidden'}; });
    const decision = [...document.querySelectorAll('#decision table')].map(t => ({right: t.getBoundingClientRect().right}));
    return {pageWidth: doc.scrollWidth, viewport: view, decision: decision,
            outside: boxes.filter(b => b.right > view + 1 || b.left < -1), clipped: boxes.filter(b => b.clipped)};
}"""


def _render(results, tmp_path, script: str, shot: str) -> dict:
    """``harbench report --html`` of ``results``, opened in headless Chromium at 1366 px: ``script``'s answer, and
    a full-page screenshot ``shot`` beside the page."""
    pytest.importorskip("matplotlib")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright: pip install playwright")
    chromium = _chromium()
    page_path = tmp_path / "report.html"
    res = CliRunner().invoke(main, ["report", "--results", str(results), "--html", str(page_path)])
    assert res.exit_code == 0, res.output
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport=LAPTOP)
            page.goto(page_path.as_uri())
            layout = page.evaluate(script)
            page.screenshot(path=str(tmp_path / shot), full_page=True)
        finally:
            browser.close()
    return layout


def test_html_report_at_the_default_suites_size_fits_1366_px(tmp_path):
    """8 method configurations with long variant names, 4 targets: the interval and "front" columns were cut off
    and the page scrolled sideways."""
    from .figure_rows import default_suite_store

    default_suite_store(tmp_path / "r")
    layout = _render(tmp_path / "r", tmp_path, OVERFLOW, "default.png")
    assert layout["decision"] and all(b["right"] <= layout["viewport"] for b in layout["decision"]), layout
    assert layout["pageWidth"] <= layout["viewport"], layout["outside"][:5]
    assert not layout["outside"], layout["outside"][:5]
    assert not layout["clipped"], layout["clipped"][:5]


def test_html_report_fits_a_laptop_screen_with_every_figure(tmp_path):
    planted_run(tmp_path / "r")
    layout = _render(tmp_path / "r", tmp_path, FIGURES_SCRIPT, "report.png")
    assert layout["pageWidth"] <= layout["viewport"], layout  # nothing scrolls sideways
    assert layout["mainRight"] <= layout["viewport"], layout  # the main table is not cut off on the right
    assert layout["tallest"] < 2 * layout["line"] + 8, layout  # every cell of the main table is one line high
    ids = {f["id"] for f in layout["figures"]}
    assert {"fig-energy", "fig-latency", "fig-robustness", "fig-gains"} <= ids, ids
    for f in layout["figures"]:
        assert f["width"] > 300 and f["height"] > 150 and f["right"] <= layout["viewport"], f  # drawn, on screen
    assert layout["first"] == "decision"
    assert any(v.startswith("on rpi5: tbft[block=fc] is within 1 pt") for v in layout["verdicts"]), layout
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"
