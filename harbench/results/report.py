"""``harbench report``: assembles the tables, notes and paper summaries of a run, as text or as one HTML file.

Kept out of ``cli.py`` so that the command stays a thin parser and the same report can be built from Python.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

from tabulate import tabulate

from ..units import parse_amount
from .analysis import energy_methods, energy_note
from .budgets import Budget, parse_budget
from .decision import DecisionView, decide, render_text
from .export import export_rows
from .frame import Frame
from .lifetime import lifetime_notes, lifetime_summary
from .query import Condition, filter_rows, group_key_columns, parse_where
from .tables import (
    MetricColumn,
    metric_columns,
    render,
    summary_table,
    table_columns,
    units_note,
    user_level_note,
    user_level_table,
)


@dataclass(frozen=True)
class ReportOptions:
    by: list[str] | None = None
    where: list[Condition] = field(default_factory=list)
    ci: bool = True
    metric: str = "acc_seen"
    budgets: list[Budget] = field(default_factory=list)
    full: bool = False
    summaries: bool = True  # the plugins' paper summaries (False: numeric outputs, which never show them)
    columns: list[str] | None = None  # ``--columns``: only the full table, with these metrics in this order

    @classmethod
    def parse(cls, *, by: str | None = None, where: Sequence[str] = (), ci: bool = True,
              metric: str = "acc_seen", budgets: Sequence[str] = (), full: bool = False,
              registry: Any = None, summaries: bool = True, columns: str | None = None) -> "ReportOptions":
        groups = [c.strip() for c in by.split(",") if c.strip()] if by else None
        declared = metric_columns((), registry)
        chosen = [c.strip() for c in columns.split(",") if c.strip()] if columns is not None else None
        if chosen is not None and not chosen:
            raise ValueError("--columns: expected metric names, comma-separated (e.g. adapt_peak_mb,infer_peak_mb)")
        return cls(groups, parse_where(where_in_stored_units(where, declared)), ci, metric,
                   parse_budgets(budgets, declared), full, summaries and chosen is None, chosen)


def parse_budgets(texts: Sequence[str], declared: Sequence[MetricColumn]) -> list[Budget]:
    """``--budget``/``budgets:`` entries against the registered metrics (a fraction's bound is in points)."""
    fractions = [m.name for m in declared if m.percent]
    return [parse_budget(t, fractions, [m.name for m in declared]) for t in texts]


def where_in_stored_units(clauses: Sequence[str], declared: Sequence[MetricColumn]) -> list[str]:
    """``--where`` bounds on an accuracy-like metric follow :mod:`harbench.units` (``acc_seen>95pt``,
    ``acc_seen>95%`` or ``acc_seen>0.95frac``; a bare bound is refused with its two readings) and are rewritten to
    the stored fraction; other columns' values pass through in their own unit."""
    fractions = {m.name for m in declared if m.percent}
    out = []
    for clause in clauses:
        hit = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(!=|>=|<=|=|>|<)\s*(.+?)\s*$", clause)
        if not hit or hit.group(1) not in fractions:
            out.append(clause)
            continue
        column, op, value = hit.groups()
        values = []
        for v in value.split(","):
            amount = parse_amount(v, column, fraction=True, option="--where", clause=clause)
            values.append(repr(-amount.value if amount.sign == "-" else amount.value))
        out.append(f"{column}{op}{','.join(values)}")
    return out


@dataclass
class Report:
    """A run's report. Its tables are computed when first used (``--format json`` needs only the numeric table,
    the default text view no full table), each from the same filtered rows and their columns (one :class:`Frame`)."""

    run: dict[str, Any]
    rows: list[dict[str, Any]]
    options: ReportOptions
    notes: list[str]
    user_level_note: str = ""
    columns: list[MetricColumn] = field(default_factory=list)
    registry: Any = field(default=None, repr=False)

    @cached_property
    def frame(self) -> Frame:
        return Frame(self.rows)

    @cached_property
    def summary(self) -> tuple[list[str], list[list[Any]]]:
        return summary_table(self.rows, self.columns, by=self.options.by, ci=self.options.ci, registry=self.registry,
                             frame=self.frame)

    @cached_property
    def numeric(self) -> tuple[list[str], list[list[Any]]]:
        return numeric_table(self.rows, self.columns, self.options.by, self.options.ci, frame=self.frame)

    @cached_property
    def user_level(self) -> tuple[list[str], list[list[Any]]]:
        return user_level_table(self.rows, by=self.options.by, metric=self.options.metric, registry=self.registry)

    @cached_property
    def decision(self) -> DecisionView | None:
        """Targets in the suite's order (the run's environment lists them so), as ``harbench run`` prints them:
        rows arrive in the order jobs finished, which the number of workers changes."""
        env = self.run.get("env")
        env = json.loads(env or "{}") if isinstance(env, str) else (env or {})
        place = {name: i for i, name in enumerate(env.get("hardware") or {})}
        rows = sorted(self.rows, key=lambda r: place.get(r.get("hardware"), len(place)))
        return decide(rows, self.options.budgets)

    @cached_property
    def summaries(self) -> list[dict[str, Any]]:
        lifetime = lifetime_summary(self.rows)
        return [*(paper_summaries(self.rows, self.registry) if self.options.summaries else []),
                *([lifetime] if lifetime else [])]

    def text(self, fmt: str) -> str:
        """``json``/``csv``: the main table as numbers (mean, std, ci_low, ci_high, n per metric, in the stored
        unit); ``github``: the decision view, then the notes, the per-user table and the plugins' summaries (the
        main table too with ``full``); ``latex``: every table, escaped so that it compiles."""
        if fmt in ("json", "csv"):
            return render_numeric(*self.numeric, fmt)
        if fmt == "latex":
            from .latex import latex_report

            return latex_report(self)
        if self.options.columns is not None:  # the focused view: the chosen columns' table and what reads it
            return "\n".join(["Full table (mean ± std [95 % CI] over users and seeds)" if self.options.ci else
                              "Full table (mean ± std over users and seeds)", render(*self.summary, fmt),
                              *self.notes])
        parts = []
        if self.decision is not None:
            parts += [render_text(self.decision, fmt), ""]
        if self.options.full or self.decision is None:
            parts += ["Full table (mean ± std [95 % CI] over users and seeds)", render(*self.summary, fmt)]
        parts += self.notes
        parts += ["", f"Per user ({self.options.metric})", render(*self.user_level, fmt), self.user_level_note]
        for s in self.summaries:
            parts += ["", str(s["title"]), tabulate(s["rows"], headers=s["headers"], tablefmt=fmt)]
            if s.get("note"):
                parts.append(str(s["note"]))
        if not self.options.full:
            parts += ["", "(--full adds the full table: every metric per method × hardware)"]
        return "\n".join(parts)


def numeric_table(rows: list[dict[str, Any]], columns: Sequence[MetricColumn], by: list[str] | None = None,
                  ci: bool = True, frame: Frame | None = None) -> tuple[list[str], list[list[Any]]]:
    """The main table as numbers: per group and metric ``_mean``, ``_std``, ``_ci_low``, ``_ci_high`` (with ``ci``:
    the text table's interval, :meth:`.frame.Frame.cell`) and ``_n`` (users), in the metric's stored unit (fractions stay in [0, 1], as in ``export``);
    a label metric keeps its distinct values. Missing figures are None (JSON null, an empty CSV cell)."""
    keys = group_key_columns(by)
    stats = ["mean", "std", *(["ci_low", "ci_high"] if ci else []), "n"]
    headers = [*keys, "mode", "jobs", "failed", *[f"{m.name}_{s}" for m in columns for s in stats], "energy_method"]
    frame = frame if frame is not None and frame.rows is rows else Frame(rows)
    table = []
    groups = list(frame.groups(keys))
    cells = {m.name: frame.cells(m.name, [g[3] for g in groups], (0.0, 1.0) if getattr(m, "percent", False) else None)
             for m in columns}  # a column at once: one bootstrap per design
    for g, (key, items, ok, ok_index) in enumerate(groups):
        line: list[Any] = [*key, "/".join(sorted({r["mode"] for r in ok if r["mode"]})) or None, len(ok),
                           sum(r["status"] == "failed" for r in items)]
        for m in columns:
            texts = frame.texts(m.name)
            labels = sorted({texts[i] for i in ok_index.tolist() if i in texts}) if texts else []
            if labels:
                line += ["/".join(labels), *[None] * (len(stats) - 1)]
                continue
            e = cells[m.name][g]
            figures = {"mean": e.mean, "std": e.std if e.n > 1 else None, "ci_low": e.lo, "ci_high": e.hi, "n": e.n}
            line += [_number(figures[s]) for s in stats]
        line.append("/".join(energy_methods(ok)) or None)
        table.append(line)
    return headers, table


def _number(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def render_numeric(headers: list[str], table: list[list[Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([dict(zip(headers, row)) for row in table], indent=2)
    return render(headers, [["" if v is None else v for v in row] for row in table], "csv")


def incomplete_note(run: Any, rows: list[dict[str, Any]] | int, results: str | None = None) -> str | None:
    """A run that was killed, interrupted or is still running says so in every view: its means cover only the
    jobs recorded so far, which may be a biased subset (the grid runs method by method). ``rows``: ALL the run's
    rows (before any ``--where``), or their number; ``results``: the folder, so the resume hint can be pasted."""
    count = rows if isinstance(rows, int) else len(rows)
    run = dict(run)
    env = json.loads(run.get("env") or "{}") if isinstance(run.get("env"), str) else (run.get("env") or {})
    planned = env.get("jobs_planned")
    status = run.get("status")
    if status == "complete" and (planned is None or count >= planned):
        return None
    if status == "failed" and (planned is None or count >= planned):
        return None  # complete, with failed jobs (listed as such)
    recorded = f"{count} of {planned}" if planned is not None else f"{count}"
    return (f"INCOMPLETE RUN ({status}): only {recorded} jobs are recorded, so these figures may not represent the "
            f"suite; finish it with `harbench run {run.get('suite_path') or 'SUITE'} --resume"
            + (f" --results {results}`." if results else "`."))


def paper_summaries(rows: list[dict[str, Any]], registry: Any = None) -> list[dict[str, Any]]:
    """The plugins' paper-style summaries (``harbench_report_summary``) of these rows, in hook order.

    A summary built from rows that include ``estimated`` jobs gets a note saying so, whatever the plugin wrote.
    Answers are cached by their rows (and the plugins' code) in the user cache's ``views`` folder, and a full run
    computes its own rows' answers while its plugins are loaded: ``report`` after a run loads no plugin (no torch).
    """
    from ..registry_snapshot import SnapshotRegistry, folder
    from .viewcache import cached

    if not (registry is None or isinstance(registry, SnapshotRegistry) or getattr(registry, "from_environment", False)):
        return _paper_summaries(rows, registry)  # a registry its caller built: the cache's key does not describe it
    known = registry if registry is not None else _reading_registry()
    if isinstance(known, SnapshotRegistry) and not known.summary_needed(rows):
        return []  # no plugin with a summary hook is concerned: no digest of 10^5 rows for the cache's key
    hookimpls = getattr(getattr(getattr(known, "hook", None), "harbench_report_summary", None), "get_hookimpls", None)
    if hookimpls is not None and not hookimpls():
        return []  # a loaded registry in which no plugin implements the hook: nothing to compute or cache
    return cached(folder() / "views", "summaries", rows, None, lambda: _paper_summaries(rows, registry), keep=256)


def _reading_registry() -> Any:
    from ..registry_snapshot import reading_registry  # a valid snapshot: no plugin, no torch

    return reading_registry()


def _paper_summaries(rows: list[dict[str, Any]], registry: Any = None) -> list[dict[str, Any]]:
    if registry is None:
        registry = _reading_registry()
    needed = getattr(registry, "summary_needed", None)  # a snapshot knows without the plugins (or the export)
    if needed is not None and not needed(rows):
        return []
    export = export_rows(rows, registry)
    estimated = sorted({r["hardware"] for r in export if r.get("mode") == "estimated" and r.get("status") == "ok"})
    answers = []
    for answer in registry.hook.harbench_report_summary(rows=export):
        if not answer:
            continue
        answer = dict(answer)
        if estimated:
            mark = f"estimated figures included (modelled, not measured, on: {', '.join(estimated)})"
            answer["note"] = f"{answer.get('note') or ''}\n{mark}".strip()
        answers.append(answer)
    return answers


def build_report(run: Any, rows: list[dict[str, Any]], options: ReportOptions, registry: Any = None,
                 results: str | None = None) -> Report:
    """Filter, then build every table from the same rows (so notes and tests always describe what is shown).
    Whether the run is complete is judged on all its rows: a ``--where`` that selects some of them does not make
    a complete run "INCOMPLETE"."""
    incomplete = incomplete_note(run, len(rows), results)
    rows = filter_rows(rows, options.where)
    if not rows:
        raise ValueError("no jobs match the --where filter" if options.where else "the run has no jobs")
    known = set().union(*(r.keys() for r in rows))
    bad = [c for c in options.by or [] if c not in known]
    if bad:
        raise ValueError(f"--by: unknown column(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
    if options.metric not in known:
        raise ValueError(f"--metric: unknown column {options.metric!r}")
    notes = [n for n in [incomplete, energy_note(rows)] if n]
    if any(r.get("mode") == "estimated" and r.get("status") == "ok" for r in rows):
        notes.append("(est.): modelled by an estimated target, not measured.")
    notes += lifetime_notes(rows)  # per target: methods that do not fit in memory or cannot keep up
    columns = table_columns(rows, registry, every=True)
    if options.columns is not None:
        columns = chosen_columns(columns, options.columns)
    notes.append(units_note(columns))
    return Report(run=dict(run), rows=rows, options=options, notes=notes,
                  user_level_note=user_level_note(options.metric, registry), columns=columns, registry=registry)


def chosen_columns(columns: Sequence[MetricColumn], names: Sequence[str]) -> list[MetricColumn]:
    """``--columns``: the named metrics of the run, in the order given; a name the run does not hold is refused."""
    by_name = {m.name: m for m in columns}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"--columns: {', '.join(unknown)} not among the run's metrics; known: "
                         f"{', '.join(by_name)}")
    return [by_name[n] for n in names]


def write_html(report: Report, path: str | Path, source: Any = None) -> str | None:
    """Write the HTML report; without matplotlib the page still has every table and says why figures are missing.
    ``source``: the store or bundle the run was read from (the page links or embeds its data for download)."""
    from .html import render_html
    from .html_extras import downloads_html, drilldown_html
    from .plots import PlotsUnavailable, svg_figures

    missing = None
    try:
        figures = svg_figures(report.rows)
    except PlotsUnavailable as exc:
        figures, missing = {}, str(exc)
    page = render_html(run=report.run, summary=report.summary, user_level=report.user_level,
                       user_level_note=report.user_level_note, summaries=report.summaries, figures=figures,
                       notes=report.notes, figures_missing=missing, decision=report.decision,
                       downloads=downloads_html(source, int(report.run["id"]), path, report.rows)
                       if source is not None else "", drilldown=drilldown_html(report.rows, report.columns))
    Path(path).write_text(page, encoding="utf-8")
    return missing
