"""Scale and speed of the harness on a suite (default: suites/drift.yaml), printed as tables.

* dedup        — generic trainings, prepares and adapts executed vs the plan's unique nodes;
* cold vs warm — a second run served from the cache (target < 10 % of the cold run);
* scaling      — 1 worker vs all cores (target >= 1.7x on 2 cores for the non-measured part), Ray vs local;
* growth       — adding an estimated hardware target (< 5 % more time), doubling users (adapt part <= 2x).

Measured host targets hold the machine exclusively, so the scaling figures use the suite with its measured
targets removed (the "non-measured part"); everything is measured in one process, in one session, and the
figures are medians of ``--repeat`` runs. Usage: python benchmarks/scaling.py [SUITE] [--repeat N] [--no-ray]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import yaml
from tabulate import tabulate

from harbench.cache import WeightCache
from harbench.plugins import get_registry
from harbench.runner import Runner, plan_counts
from harbench.store import Store
from harbench.suite import parse_suite


def timed_run(doc: dict, results: str, **kw) -> tuple[float, Runner]:
    registry = get_registry()
    suite = parse_suite(yaml.safe_dump(doc), "bench.yaml", registry)
    runner = Runner(suite, registry, Store(results), **kw)
    t0 = time.perf_counter()
    runner.run()
    return time.perf_counter() - t0, runner


def cold(doc: dict, repeat: int, **kw) -> tuple[float, Runner]:
    times, runner = [], None
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as results:
            t, runner = timed_run(doc, results, **kw)
            times.append(t)
    return statistics.median(times), runner


def estimated_only(doc: dict) -> dict:
    registry = get_registry()
    keep = []
    for h in doc["hardware"]:
        name, params = (h, {}) if isinstance(h, str) else (h["name"], h.get("params", {}))
        if registry.get("hardware", name).cls(**params).describe().mode == "estimated":
            keep.append(h)
    return {**doc, "hardware": keep}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("suite", nargs="?", default="suites/drift.yaml")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    doc = yaml.safe_load(open(args.suite))
    registry = get_registry()
    cores = os.cpu_count() or 1

    with tempfile.TemporaryDirectory() as results:
        suite = parse_suite(yaml.safe_dump(doc), args.suite, registry)
        plan = plan_counts(suite, registry, WeightCache(os.path.join(results, "cache")))
        t_cold, r = timed_run(doc, results)
        t_warm, r2 = timed_run(doc, results)
    c = r.counters
    print("dedup (executed vs unique nodes in the plan)")
    print(tabulate([["generic", plan.nodes["generic"], c.generic_trained], ["prepare", plan.nodes["prepare"], c.prepared],
                    ["adapt", plan.nodes["adapt"], c.adapted]], headers=["node", "expected", "executed"], tablefmt="github"))
    print(f"\ncold vs warm: cold {t_cold:.1f} s, warm {t_warm:.1f} s ({100 * t_warm / t_cold:.1f} % of cold; "
          f"warm run trained {r2.counters.generic_trained} generic models and ran {r2.counters.prepared} prepares)")

    rows = []
    est = estimated_only(doc)
    if est["hardware"]:
        t1, _ = cold(est, args.repeat, workers=1)
        tn, _ = cold(est, args.repeat, workers=cores)
        rows.append([f"local, 1 vs {cores} workers (estimated targets only)", f"{t1:.1f}", f"{tn:.1f}", f"{t1 / tn:.2f}x"])
        if not args.no_ray:
            tr, _ = cold(est, args.repeat, workers=cores, executor="ray")
            rows.append([f"ray vs local, {cores} workers", f"{tn:.1f}", f"{tr:.1f}", f"{100 * (tr - tn) / tn:+.1f} %"])
    else:
        rows.append(["(no estimated target in the suite: scaling of the non-measured part not measurable)", "", "", ""])
    print("\nscaling")
    print(tabulate(rows, headers=["comparison", "A s", "B s", "ratio / change"], tablefmt="github"))

    growth = []
    base_t, base_r = cold(doc, args.repeat)
    extra = [h for h in ("rpi4", "rpi5", "jetson-xavier-agx") if h in registry.names("hardware")
             and h not in [x if isinstance(x, str) else x["name"] for x in doc["hardware"]]]
    if extra:
        t, _ = cold({**doc, "hardware": [*doc["hardware"], {"name": extra[0], "params": {}}]}, args.repeat)
        growth.append([f"+ estimated target {extra[0]}", f"{base_t:.1f}", f"{t:.1f}", f"{100 * (t - base_t) / base_t:+.1f} %"])
    d0 = doc["datasets"][0]
    users = (d0.get("params", {}) or {}).get("users", 16)
    targets = doc.get("target_users", 4)
    if isinstance(targets, int):
        bigger = {**doc, "target_users": 2 * targets,
                  "datasets": [{**d0, "params": {**(d0.get("params") or {}), "users": users + targets}}, *doc["datasets"][1:]]}
        t, r = cold(bigger, args.repeat)
        adapt_a = base_t - sum(base_r.counters.timings.values())
        adapt_b = t - sum(r.counters.timings.values())
        growth.append(["2x target users: job (adapt + measure) part", f"{adapt_a:.1f}", f"{adapt_b:.1f}", f"{adapt_b / adapt_a:.2f}x"])
    print("\ngrowth")
    print(tabulate(growth, headers=["change", "before s", "after s", "change"], tablefmt="github"))


if __name__ == "__main__":
    main()
