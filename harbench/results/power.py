"""``harbench validate --power SUITE``: how many users would decide the claims an earlier run left inconclusive.

The plugins' summaries judge their claims in declared families and return the verdicts (``"verdicts"``: each
:meth:`harbench.Verdict.to_dict`); an inconclusive verdict with a claimed size carries the users that 80 % power
would need at the observed spread (:mod:`harbench.stats.power`). This view reads the latest run of the suite and
lists them, so a long run is sized before it starts.
"""

from __future__ import annotations

import math
from typing import Any

from tabulate import tabulate

from .report import paper_summaries
from .store import Store

HEADERS = ["family", "claim", "verdict", "users × seeds", "adj. p", "users for 80 % power"]


def power_rows(summaries: list[dict[str, Any]]) -> list[list[Any]]:
    out = []
    for s in summaries:
        for v in s.get("verdicts") or []:
            if v.get("outcome") in ("fact", "no verdict"):
                continue
            needed = v.get("users_needed")
            if v.get("outcome") != "inconclusive":
                want = "decided"
            elif v.get("claimed") is None:
                want = "no claimed size: nothing to power"
            elif needed is None or (isinstance(needed, float) and math.isnan(needed)):
                want = "more seeds needed (the seed-to-seed spread dominates)" if v.get("seeds", 0) > 1 else "—"
            else:
                want = f"~{int(needed)}"
            p = v.get("p_adjusted")
            out.append([v.get("family") or s.get("title", ""), v.get("claim"), v.get("outcome"),
                        f"{v.get('users')} × {v.get('seeds')}", "—" if p is None else f"{p:.3g}", want])
    return out


def power_report(suite: str, results: str) -> str:
    """The table for the latest run of ``suite`` (its name) in ``results``; one line when there is nothing."""
    store = Store(results)
    run = store.resolve_run(suite)
    rows = store.job_rows(int(run["id"]))
    table = power_rows(paper_summaries(rows))
    head = f"run {run['id']} of {suite}: "
    if not table:
        return head + "no plugin summary judged a claim in this run (nothing to estimate)"
    return (head + "users that 80 % power would need at the observed spread, per claim (noncentral t at the "
            "family's Bonferroni level; docs/statistics.md)\n" + tabulate(table, headers=HEADERS, tablefmt="github"))
