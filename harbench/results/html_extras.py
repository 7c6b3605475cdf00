"""Two sections of the HTML report: the run's data for download, and a per-user drill-down per method.

* **Downloads.** A report of a published bundle links the bundle's files (jobs as Parquet and CSV, the raw samples,
  the manifest) relative to the HTML file, so the page and the bundle travel together. A report of a results
  store embeds the jobs as a CSV ``data:`` link up to :data:`EMBED_MAX_JOBS` jobs (the page stays one file); a
  larger run says how to publish it instead.
* **Per user.** Each method configuration gets a ``<details>`` block (no script: it opens offline, in any
  browser): one line per user and target with the mean over seeds of the accuracy metrics, the gain and the costs,
  and how many seeds it averages. The report's tables are over users; this is what a reader opens to see which
  users a method helps or harms.
"""

from __future__ import annotations

import base64
import html
import math
import os
import statistics
from pathlib import Path
from typing import Any, Sequence

from .tables import MetricColumn

EMBED_MAX_JOBS = 5_000  # a CSV of this many jobs is about 2 MB in the page
DRILL_METRICS = ("acc_seen", "acc_unseen", "gain_seen", "adapt_j", "adapt_s", "latency_ms_p50", "adapt_peak_mb")


def downloads_html(source: Any, run_id: int, html_path: str | Path, rows: Sequence[dict[str, Any]]) -> str:
    """The download section for run ``run_id`` of ``source`` (a bundle or a store), for a page at ``html_path``."""
    from .bundle import Bundle

    parts = ['<section id="downloads"><h2>Data</h2><ul class="downloads">']
    if isinstance(source, Bundle):
        here = Path(html_path).resolve().parent
        files = [("jobs.parquet", "every job, one row each (Parquet)"), ("jobs.csv", "every job, one row each (CSV)"),
                 ("samples.parquet", "the raw samples (latency repeats)")]
        for name, what in files:
            target = source.folder / "runs" / str(run_id) / name
            if target.is_file():
                href = Path(os.path.relpath(target.resolve(), here)).as_posix()
                parts.append(f'<li><a href="{html.escape(href)}" download>{html.escape(name)}</a> — {what}</li>')
        href = Path(os.path.relpath(source.path.resolve(), here)).as_posix()
        parts.append(f'<li><a href="{html.escape(href)}">manifest.json</a> — versions, machine, suite and the '
                     "SHA-256 of every file</li></ul>")
    elif len(rows) <= EMBED_MAX_JOBS:
        import tempfile

        from .export import export_rows, write_export

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "jobs.csv"
            write_export(export_rows(rows), "csv", path)
            data = base64.b64encode(path.read_bytes()).decode()
        parts.append(f'<li><a href="data:text/csv;base64,{data}" download="run-{run_id}-jobs.csv">'
                     f"run-{run_id}-jobs.csv</a> — every job, one row each (embedded in this page)</li></ul>")
    else:
        parts.append(f"</ul><p class=note>{len(rows):,} jobs are too many to embed: publish the run "
                     f"(harbench publish {run_id} -o DIR) and build the report from the bundle "
                     "(--results DIR) to link its Parquet and CSV files.</p>")
    parts.append("</section>")
    return "".join(parts)


def drilldown_html(rows: Sequence[dict[str, Any]], columns: Sequence[MetricColumn]) -> str:
    """A ``<details>`` block per method configuration: per user and target, the mean over seeds of each metric."""
    units = {c.name: c for c in columns}
    shown = [m for m in DRILL_METRICS if any(isinstance(r.get(m), (int, float)) for r in rows)]
    groups: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = {}
    for r in rows:
        if r.get("status") != "ok":
            continue
        label = f"{r['method']}[{r['variant']}]" if r.get("variant") else str(r["method"])
        groups.setdefault(label, {}).setdefault((str(r.get("user")), str(r.get("hardware"))), []).append(r)
    headers = ["user", "hardware", "seeds", *[_title(m, units.get(m)) for m in shown]]
    parts = ['<section id="per-user"><h2>Per user, per method</h2><p class=meta>each line: the mean over the '
             "user's seeds; open a method to see its users</p>"]
    for label in sorted(groups):
        users = groups[label]
        lines = []
        for (user, hardware), items in sorted(users.items()):
            line = [user, hardware, str(len(items))]
            for m in shown:
                values = [float(r[m]) for r in items if isinstance(r.get(m), (int, float)) and math.isfinite(r[m])]
                line.append(_figure(statistics.fmean(values), units.get(m)) if values else "—")
            lines.append(line)
        n_users = len({u for u, _ in users})
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in line) + "</tr>" for line in lines)
        parts.append(f'<details class="drill"><summary>{html.escape(label)} — {n_users} users</summary>'
                     f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
                     "</div></details>")
    parts.append("</section>")
    return "".join(parts)


def _title(name: str, column: MetricColumn | None) -> str:
    if column is None or not column.unit:
        return name
    return f"{name} ({'%' if column.percent else column.unit})"


def _figure(value: float, column: MetricColumn | None) -> str:
    if column is not None and column.percent:
        return f"{100 * value:.1f}"
    return f"{value:.3g}"
