"""``harbench claims``: every paper's claim table, from published bundles (or stores), as Markdown, JSON or LaTeX.

The tables are the plugins' own summaries (``harbench_report_summary``, through :func:`.report.paper_summaries`,
the hook ``harbench report`` prints): this module computes no statistic, it only gathers each run's answers and
renders them. The Markdown output is what ``docs/claims/*.md`` holds; a test regenerates those pages from the
committed bundles and fails when one differs (so a page never states a table the bundle does not give).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tabulate import tabulate

from .source import RunSource, open_results


@dataclass(frozen=True)
class RunClaims:
    """One run's claim tables: the plugins' summaries of its rows, and what identifies the run."""

    source: str  # the bundle's (or results folder's) name
    run_id: int
    suite: str
    suite_hash: str | None
    jobs: int
    digest: str | None  # the bundle's manifest digest (None for a store): which bundle the tables came from
    tables: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "run": self.run_id, "suite": self.suite, "suite_hash": self.suite_hash,
                "jobs": self.jobs, "bundle_digest": self.digest, "tables": self.tables}


def gather(paths: Sequence[str | Path], registry: Any = None) -> list[RunClaims]:
    """The claim tables of every run of every bundle in ``paths`` (a store: its latest run)."""
    from .report import paper_summaries

    out = []
    from .bundle import MANIFEST, BundleError, is_bundle

    for path in paths:
        if not is_bundle(path) and not (Path(path) / "harbench.sqlite").is_file():
            raise BundleError(f"{path}: not a bundle (a folder with {MANIFEST}, written by harbench publish) nor a "
                              "results folder")
        source = open_results(path)
        manifest = getattr(source, "manifest", None)
        runs = [r["id"] for r in manifest["runs"]] if manifest else [source.resolve_run("latest")["id"]]
        for run_id in sorted(runs):
            run = source.resolve_run(run_id)
            rows = source.job_rows(int(run_id))
            tables = [_plain(t) for t in paper_summaries(rows, registry)]
            out.append(RunClaims(_name(source), int(run_id), str(run["suite"]), run["suite_hash"], len(rows),
                                 manifest.get("manifest_digest") if manifest else None, tables))
    return out


def _name(source: RunSource) -> str:
    return source.folder.resolve().name


def _plain(table: dict[str, Any]) -> dict[str, Any]:
    """A summary as JSON-safe values (a plugin may put numpy numbers in its cells)."""
    return json.loads(json.dumps({"title": str(table.get("title", "")), "headers": list(table.get("headers", [])),
                                  "rows": [list(r) for r in table.get("rows", [])],
                                  "note": str(table.get("note") or "")}, default=str))


def render(claims: Sequence[RunClaims], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([c.to_json() for c in claims], indent=2)
    if fmt == "latex":
        return _latex(claims)
    if fmt == "markdown":
        return _markdown(claims)
    raise ValueError(f"--format {fmt!r}: expected markdown, json or latex")


def _heading(c: RunClaims) -> str:
    digest = f", bundle digest `{c.digest[:12]}`" if c.digest else ""
    return f"{c.source}: run {c.run_id} ({c.suite}, {c.jobs} jobs, suite hash `{(c.suite_hash or '—')[:12]}`{digest})"


def _markdown(claims: Sequence[RunClaims]) -> str:
    names = ", ".join(dict.fromkeys(c.source for c in claims))
    parts = [f"# Claim tables: {names}",
             f"Printed by `harbench claims` from the published bundle(s) {names}: the plugins' own summaries of each "
             "run (`harbench_report_summary`), nothing edited by hand."]
    for c in claims:
        parts.append(f"## {_heading(c)}")
        if not c.tables:
            parts.append("No plugin states a claim on this run's rows (no `harbench_report_summary` answered).")
        for t in c.tables:
            parts.append(f"### {t['title']}")
            parts.append(tabulate(t["rows"], headers=t["headers"], tablefmt="github", disable_numparse=True))
            if t["note"]:
                parts.append("\n\n".join(line for line in t["note"].splitlines() if line.strip()))
    return "\n\n".join(parts) + "\n"


def _latex(claims: Sequence[RunClaims]) -> str:
    from .latex import paragraph, table

    parts = []
    for c in claims:
        parts.append(paragraph(_heading(c).replace("`", "")))
        for t in c.tables:
            parts += [paragraph(t["title"]), table(t["headers"], t["rows"]), paragraph(t["note"])]
    return "\n\n".join(p for p in parts if p) + "\n"
