"""Speed of result bundles (#34), printed as a table of medians: wall and CPU seconds, each command a subprocess.

* publish  — ``harbench publish`` of a fabricated 10^5-job run (target <= 30 s), and ``harbench report`` on the
             bundle against the same report on the store;
* claims   — ``harbench claims`` on every bundle committed under ``published/`` (target <= 5 s) in three states of
             the user cache: empty (the first harbench command of an environment: the full registry is loaded,
             torch included, and its snapshot written); with the registry snapshot any earlier command leaves but
             no summary (the plugins' summary hooks are loaded, without torch, and compute); warm (the second
             call: the summaries come from the cache).

Usage: python benchmarks/publish.py [--jobs N] [--repeat N] [--parts publish,claims] [--json RECORD.json]
       python benchmarks/publish.py --from benchmarks/records/publish.json   # the committed record's table

``--json`` stores the table with the machine, its load and the commit; ``--from`` prints a stored record and measures
nothing (docs/performance.md's table is generated from the committed record that way).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scaling import _child_cpu, fabricated  # noqa: E402  (the store benchmark's fabricated run)

from harbench.results.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HARBENCH = os.path.join(os.path.dirname(sys.executable), "harbench")


def timed(cmd: list[str], repeat: int, env: dict[str, str] | None = None, fresh: bool = False,
          prime: list[str] | None = None) -> list[str]:
    """Median wall and CPU seconds of ``repeat`` runs of ``cmd`` (``fresh``: each with an empty user cache, in which
    ``prime`` runs first, untimed)."""
    walls, cpus, rss = [], [], 0.0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as cache:
            if fresh:
                os.environ["HARBENCH_CACHE_DIR"] = cache
            try:
                if prime:
                    subprocess.run(prime, check=True, stdout=subprocess.DEVNULL)
                wall, peak, rc, cpu = _child_cpu(cmd)
            finally:
                if fresh:
                    os.environ.pop("HARBENCH_CACHE_DIR", None)
        if rc != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {rc}")
        walls.append(wall)
        cpus.append(cpu)
        rss = max(rss, peak)
    return [f"{statistics.median(walls):.2f}", f"{statistics.median(cpus):.2f}", f"{rss:,.0f}"]


def publish_part(n: int, repeat: int) -> list[list[str]]:
    rows = []
    with tempfile.TemporaryDirectory() as results:
        store = Store(results)
        run_id = store.start_run("fabricated", "fabricated.yaml", "name: fabricated\n", "x",
                                 {"jobs_planned": n, "hardware": {}})
        records = fabricated(n)
        while chunk := [item for _, item in zip(range(10_000), records)]:
            store.add_jobs(run_id, chunk)
        store.finish_run(run_id, "complete")
        out = os.path.join(results, "bundle")
        rows.append([f"harbench publish ({n:,} jobs)", *timed([HARBENCH, "publish", str(run_id), "--results",
                                                               results, "-o", out], repeat)])
        size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file()) / 2**20
        store_size = os.path.getsize(os.path.join(results, "harbench.sqlite")) / 2**20
        rows.append([f"  bundle {size:.1f} MB (store {store_size:.0f} MB)", "", "", ""])
        rows.append(["harbench report --format json (the store)",
                     *timed([HARBENCH, "report", "--results", results, "--format", "json"], repeat)])
        rows.append(["harbench report --format json (the bundle)",
                     *timed([HARBENCH, "report", "--results", out, "--format", "json"], repeat)])
    return rows


def claims_part(repeat: int) -> list[list[str]]:
    bundles = sorted(str(p.parent) for p in (ROOT / "published").glob("*/manifest.json"))
    cmd = [HARBENCH, "claims", *bundles]
    timed(cmd, 1)  # warm the user cache (the summaries of these rows)
    return [[f"harbench claims ({len(bundles)} committed bundles), empty user cache (first command)",
             *timed(cmd, repeat, fresh=True)],
            [f"harbench claims ({len(bundles)} committed bundles), registry snapshot, no summary cached",
             *timed(cmd, repeat, fresh=True, prime=[HARBENCH, "plugins"])],
            [f"harbench claims ({len(bundles)} committed bundles), warm", *timed(cmd, repeat)]]


def render(record: dict) -> str:
    """A record's table, headed by where and when it was measured."""
    head = (f"machine: {record['machine']}, {record['cores']} cores, load average {record['load_average'][0]:.1f} at "
            f"the start and {record['load_average'][1]:.1f} at the end; medians of {record['repeat']}; "
            f"{record['created']}, commit {record['commit'][:12]}")
    return head + "\n" + tabulate(record["rows"], headers=["what", "wall s", "CPU s", "peak RSS MB"], tablefmt="github")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--parts", default="publish,claims")
    ap.add_argument("--json", help="also store the record (table, machine, load, commit) here")
    ap.add_argument("--from", dest="source", help="print the table of a stored record; measure nothing")
    args = ap.parse_args()
    if args.source:
        print(render(json.loads(Path(args.source).read_text())))
        return
    from harbench.testing import measured_on

    parts = {p.strip() for p in args.parts.split(",")}
    start = measured_on()
    rows = []
    if "publish" in parts:
        rows += publish_part(args.jobs, args.repeat)
    if "claims" in parts:
        rows += claims_part(args.repeat)
    record = {"created": start["created"], "commit": start["commit"], "machine": start["processor"],
              "cores": start["cores"], "load_average": [start["load_average"], os.getloadavg()[0]],
              "repeat": args.repeat, "rows": rows}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
    print(render(record))


if __name__ == "__main__":
    main()
