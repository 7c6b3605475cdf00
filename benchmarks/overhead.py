"""Harness overhead on the default suite: wall time minus the jobs' and shared nodes' own compute, as a percentage.

Run with ``make bench`` (or ``python benchmarks/overhead.py [SUITE]``). Uses a fresh results folder, so the first
pass is a cold run; a second pass shows the warm run, which the cache serves whole: it computes nothing, so all of
its (short) wall time is harness work and the percentage is not meaningful there. Target: overhead <= 5 % of the
cold run's wall time.
"""

from __future__ import annotations

import sys
import tempfile
import time

from tabulate import tabulate

from harbench.plugins import get_registry
from harbench.results.store import Store
from harbench.run import Runner
from harbench.suite import load_suite


def progress(label: str, done: int, total: int) -> None:
    """A line per finished job or shared node, as it happens: a benchmark of minutes is never silent."""
    print(f"  [{done:>4}/{total}] {label}", flush=True)


def measure(suite_path: str, results: str, name: str) -> list:
    print(f"==> {name} pass of {suite_path}", flush=True)
    registry = get_registry()
    t0 = time.perf_counter()
    suite = load_suite(suite_path, registry)
    runner = Runner(suite, registry, Store(results), workers=1, progress=progress)  # overhead: on a serial run
    summary = runner.run()
    wall = time.perf_counter() - t0
    c = runner.counters
    overhead = wall - c.compute_s
    share = f"{100 * overhead / wall:.1f} %" if c.compute_s > 0 else "n/a (nothing computed)"
    row = [summary.ok + summary.failed + summary.skipped, c.jobs_cached, f"{wall:.1f}", f"{c.compute_s:.1f}",
           f"{overhead:.2f}", share, c.generic_trained, c.prepared]
    print(f"==> {name}: {row[0]} jobs in {wall:.1f} s, harness overhead {share}", flush=True)
    return row


def main() -> None:
    suite = sys.argv[1] if len(sys.argv) > 1 else "suites/drift.yaml"
    with tempfile.TemporaryDirectory() as results:
        rows = [["cold", *measure(suite, results, "cold")], ["warm", *measure(suite, results, "warm")]]
    print(tabulate(rows, headers=["pass", "jobs", "from cache", "wall s", "compute s", "overhead s", "overhead", "generic trained",
                                  "prepared"], tablefmt="github"))


if __name__ == "__main__":
    main()
