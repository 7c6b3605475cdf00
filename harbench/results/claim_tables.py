"""``harbench claims``: every paper's claim table, from published bundles (or stores), as Markdown, JSON or LaTeX.

The tables are the plugins' own summaries (``harbench_report_summary``, through :func:`.report.paper_summaries`,
the hook ``harbench report`` prints): this module computes no statistic, it only gathers each run's answers and
renders them. The Markdown output is what ``docs/claims/*.md`` holds; a test regenerates those pages from the
committed bundles and fails when one differs (so a page never states a table the bundle does not give).

**Pooling.** A study too large for one run is run in folds (the population rotated so that every subject is a
target once: ``docs/fidelity-round-3.md``). Its runs are *pooled*: their rows are concatenated and each plugin's
summary judges them once, so a claim's users are every fold's targets. The summaries key a user by dataset,
dataset parameters, seed and user, so pooling is sound only when no (dataset, parameters, method, parameters,
hardware, seed, user) job is in two runs; :func:`pool_rows` refuses that in one line. A bundle published with
``harbench publish --pool`` says so in its manifest (``pool: true``) and is always read pooled; ``harbench claims
--pool`` pools whatever it is given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tabulate import tabulate

from .pooling import pool_rows
from .source import RunSource, open_results


@dataclass(frozen=True)
class RunClaims:
    """One run's claim tables: the plugins' summaries of its rows, and what identifies the run."""

    source: str  # the bundle's (or results folder's) name
    run_ids: tuple[int, ...]  # one run, or the runs pooled into these tables
    suite: str
    suite_hash: str | None
    jobs: int
    digest: str | None  # the bundle's manifest digest (None for a store): which bundle the tables came from
    tables: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "runs": list(self.run_ids), "pooled": len(self.run_ids) > 1,
                "suite": self.suite, "suite_hash": self.suite_hash,
                "jobs": self.jobs, "bundle_digest": self.digest, "tables": self.tables}


def gather(paths: Sequence[str | Path], registry: Any = None, pool: bool = False) -> list[RunClaims]:
    """The claim tables of every run of every bundle in ``paths`` (a store: its latest run).

    ``pool``: every run of every path judged together (one set of tables); otherwise a bundle published with
    ``--pool`` is judged as one, and any other run alone."""
    from .bundle import MANIFEST, BundleError, is_bundle

    pooled: list[tuple[RunSource, dict[str, Any] | None, int]] = []
    out = []
    for path in paths:
        if not is_bundle(path) and not (Path(path) / "harbench.sqlite").is_file():
            raise BundleError(f"{path}: not a bundle (a folder with {MANIFEST}, written by harbench publish) nor a "
                              "results folder")
        source = open_results(path)
        manifest = getattr(source, "manifest", None)
        runs = [(source, manifest, int(r)) for r in sorted(
            [r["id"] for r in manifest["runs"]] if manifest else [source.resolve_run("latest")["id"]])]
        if pool:
            pooled += runs
        elif manifest and manifest.get("pool"):
            out.append(_judge(runs, registry))
        else:
            out += [_judge([run], registry) for run in runs]
    if pooled:
        out.append(_judge(pooled, registry))
    return out


def _judge(runs: list[tuple[RunSource, dict[str, Any] | None, int]], registry: Any) -> RunClaims:
    """One set of claim tables over the rows of ``runs`` (a single run, or several pooled)."""
    from .report import paper_summaries

    infos = [source.resolve_run(run_id) for source, _, run_id in runs]
    parts = [(f"{_name(source)} run {run_id}", source.job_rows(run_id)) for source, _, run_id in runs]
    rows = pool_rows(parts) if len(parts) > 1 else parts[0][1]
    names = list(dict.fromkeys(_name(source) for source, _, _ in runs))
    hashes = {info["suite_hash"] for info in infos}
    digests = {manifest.get("manifest_digest") for _, manifest, _ in runs if manifest}
    tables = [_plain(t) for t in paper_summaries(rows, registry)]
    return RunClaims(", ".join(names), tuple(run_id for _, _, run_id in runs),
                     " + ".join(dict.fromkeys(str(info["suite"]) for info in infos)),
                     hashes.pop() if len(hashes) == 1 else None, len(rows),
                     digests.pop() if len(digests) == 1 and len(names) == 1 else None, tables)


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
    runs = (f"run {c.run_ids[0]}" if len(c.run_ids) == 1
            else f"runs {', '.join(str(r) for r in c.run_ids)} pooled")
    suite_hash = f", suite hash `{c.suite_hash[:12]}`" if c.suite_hash else ""
    return f"{c.source}: {runs} ({c.suite}, {c.jobs} jobs{suite_hash}{digest})"


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
