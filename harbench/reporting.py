"""``harbench report``: assembles the tables, notes and paper summaries of a run, as text or as one HTML file.

Kept out of ``cli.py`` so that the command stays a thin parser and the same report can be built from Python.
"""

from __future__ import annotations

import json

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tabulate import tabulate

from .analysis import Condition, energy_note, filter_rows, parse_where
from .report import paper_summaries, render, summary_table, table_columns, units_note, user_level_note, user_level_table


@dataclass(frozen=True)
class ReportOptions:
    by: list[str] | None = None
    where: list[Condition] = field(default_factory=list)
    ci: bool = True
    metric: str = "acc_seen"

    @classmethod
    def parse(cls, *, by: str | None = None, where: Sequence[str] = (), ci: bool = True,
              metric: str = "acc_seen") -> "ReportOptions":
        columns = [c.strip() for c in by.split(",") if c.strip()] if by else None
        return cls(columns, parse_where(where), ci, metric)


@dataclass
class Report:
    run: dict[str, Any]
    rows: list[dict[str, Any]]
    options: ReportOptions
    summary: tuple[list[str], list[list[Any]]]
    user_level: tuple[list[str], list[list[Any]]]
    summaries: list[dict[str, Any]]
    notes: list[str]
    user_level_note: str = ""

    def text(self, fmt: str) -> str:
        """``json``/``csv`` give the main table only (machine-readable); ``github``/``latex`` give everything."""
        main = render(*self.summary, fmt)
        if fmt in ("json", "csv"):
            return main
        parts = [main, *self.notes, "", f"Per user ({self.options.metric})", render(*self.user_level, fmt),
                 self.user_level_note]
        for s in self.summaries:
            parts += ["", str(s["title"]), tabulate(s["rows"], headers=s["headers"], tablefmt=fmt)]
            if s.get("note"):
                parts.append(str(s["note"]))
        return "\n".join(parts)


def incomplete_note(run: Any, rows: list[dict[str, Any]]) -> str | None:
    """A run that was killed, interrupted or is still running says so in every view: its means cover only the
    jobs recorded so far, which may be a biased subset (the grid runs method by method)."""
    run = dict(run)
    env = json.loads(run.get("env") or "{}") if isinstance(run.get("env"), str) else (run.get("env") or {})
    planned = env.get("jobs_planned")
    status = run.get("status")
    if status == "complete" and (planned is None or len(rows) >= planned):
        return None
    if status == "failed" and (planned is None or len(rows) >= planned):
        return None  # complete, with failed jobs (listed as such)
    recorded = f"{len(rows)} of {planned}" if planned is not None else f"{len(rows)}"
    return (f"INCOMPLETE RUN ({status}): only {recorded} jobs are recorded, so these figures may not represent the "
            f"suite; finish it with `harbench run {run.get('suite_path') or 'SUITE'} --resume`.")


def build_report(run: Any, rows: list[dict[str, Any]], options: ReportOptions, registry: Any = None) -> Report:
    """Filter, then build every table from the same rows (so notes and tests always describe what is shown)."""
    rows = filter_rows(rows, options.where)
    if not rows:
        raise ValueError("no jobs match the --where filter" if options.where else "the run has no jobs")
    known = set().union(*(r.keys() for r in rows))
    bad = [c for c in options.by or [] if c not in known]
    if bad:
        raise ValueError(f"--by: unknown column(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
    if options.metric not in known:
        raise ValueError(f"--metric: unknown column {options.metric!r}")
    notes = [n for n in [incomplete_note(run, rows), energy_note(rows)] if n]
    if any(r.get("mode") == "estimated" and r.get("status") == "ok" for r in rows):
        notes.append("(est.): modelled by an estimated target, not measured.")
    columns = table_columns(rows, registry)
    notes.append(units_note(columns))
    return Report(
        run=dict(run), rows=rows, options=options,
        summary=summary_table(rows, columns, by=options.by, ci=options.ci, registry=registry),
        user_level=user_level_table(rows, by=options.by, metric=options.metric, registry=registry),
        summaries=paper_summaries(rows, registry), notes=notes,
        user_level_note=user_level_note(options.metric, registry),
    )


def write_html(report: Report, path: str | Path) -> str | None:
    """Write the HTML report; without matplotlib the page still has every table and says why figures are missing."""
    from .html import render_html
    from .plots import PlotsUnavailable, svg_figures

    missing = None
    try:
        figures = svg_figures(report.rows)
    except PlotsUnavailable as exc:
        figures, missing = {}, str(exc)
    page = render_html(run=report.run, summary=report.summary, user_level=report.user_level,
                       user_level_note=report.user_level_note, summaries=report.summaries, figures=figures,
                       notes=report.notes, figures_missing=missing)
    Path(path).write_text(page, encoding="utf-8")
    return missing
