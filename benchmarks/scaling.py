"""Scale and speed of the harness on a suite (default: suites/drift.yaml), printed as tables.

* dedup        — generic trainings, prepares and adapts executed vs the plan's unique nodes;
* cold vs warm — a second run served from the cache (target < 10 % of the cold run);
* scaling      — 1 worker vs all cores (target >= 1.7x on 2 cores for the non-measured part), Ray vs local;
* growth       — adding an estimated hardware target (< 5 % more time), cold and as an increment on a cached run;
                 doubling target users (adapt part <= 2x).

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

import torch
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
    ap.add_argument("--parts", default="dedup,scaling,growth", help="comma-separated: dedup (with cold vs warm), "
                    "scaling, growth")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    doc = yaml.safe_load(open(args.suite))
    if "dedup" in parts:
        dedup(doc, args.suite)
    if "scaling" in parts:
        scaling(doc, args.repeat, args.no_ray, os.cpu_count() or 1)
    if "growth" in parts:
        growth(doc, args.repeat)


def dedup(doc: dict, path: str) -> None:
    registry = get_registry()
    with tempfile.TemporaryDirectory() as results:
        suite = parse_suite(yaml.safe_dump(doc), path, registry)
        plan = plan_counts(suite, registry, WeightCache(os.path.join(results, "cache")))
        t_cold, r = timed_run(doc, results)
        t_warm, r2 = timed_run(doc, results)
    c, w = r.counters, r2.counters
    print("dedup (executed vs unique nodes in the plan)")
    print(tabulate([["generic", plan.nodes["generic"], c.generic_trained], ["prepare", plan.nodes["prepare"], c.prepared],
                    ["adapt", plan.nodes["adapt"], c.adapted]], headers=["node", "expected", "executed"], tablefmt="github"))
    print(f"\ncold vs warm: cold {t_cold:.1f} s, warm {t_warm:.1f} s ({100 * t_warm / t_cold:.1f} % of cold; the warm run "
          f"served {w.jobs_cached}/{plan.nodes['job']} jobs from the cache, trained {w.generic_trained} generic models, "
          f"ran {w.prepared} prepares and {w.adapted} adapts)")


def scaling(doc: dict, repeat: int, no_ray: bool, cores: int) -> None:
    rows = []
    est = estimated_only(doc)
    if est["hardware"]:
        t1, _ = cold(est, repeat, workers=1)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one core: the serial run above also has torch's intra-op threads on every core
        t1s, _ = cold(est, repeat, workers=1)
        torch.set_num_threads(threads)
        tn, _ = cold(est, repeat, workers=cores)
        rows.append([f"local, 1 vs {cores} workers (estimated targets only; the 1 worker with torch's {threads} "
                     "intra-op threads)", f"{t1:.1f}", f"{tn:.1f}", f"{t1 / tn:.2f}x"])
        rows.append([f"local, 1 worker on 1 thread vs {cores} workers", f"{t1s:.1f}", f"{tn:.1f}", f"{t1s / tn:.2f}x"])
        if not no_ray:
            tr, _ = cold(est, repeat, workers=cores, executor="ray")
            rows.append([f"ray vs local, {cores} workers", f"{tn:.1f}", f"{tr:.1f}", f"{100 * (tr - tn) / tn:+.1f} %"])
    else:
        rows.append(["(no estimated target in the suite: scaling of the non-measured part not measurable)", "", "", ""])
    print("\nscaling")
    print(tabulate(rows, headers=["comparison", "A s", "B s", "ratio / change"], tablefmt="github"))


def growth(doc: dict, repeat: int) -> None:
    registry = get_registry()
    rows = []
    base_t, base_r = cold(doc, repeat)
    estimated = estimated_only(doc)["hardware"]
    if estimated:  # the suite without its last estimated target, then with it: cold vs cold, and as an increment
        dropped = estimated[-1]
        fewer = {**doc, "hardware": [h for h in doc["hardware"] if h is not dropped]}
        t_fewer, _ = cold(fewer, repeat)
        label = dropped if isinstance(dropped, str) else dropped["name"]
        rows.append([f"+ estimated target {label} (cold runs)", f"{t_fewer:.1f}", f"{base_t:.1f}",
                     f"{100 * (base_t - t_fewer) / t_fewer:+.1f} %"])
        with tempfile.TemporaryDirectory() as results:
            t_first, _ = timed_run(fewer, results)
            t_inc, _ = timed_run(doc, results)
        rows.append([f"+ estimated target {label} (added to an existing run's cache)", f"{t_first:.1f}",
                     f"{t_first + t_inc:.1f}", f"{100 * t_inc / t_first:+.1f} %"])
    d0 = doc["datasets"][0]
    users = (d0.get("params", {}) or {}).get("users", 16)
    targets = doc.get("target_users", 4)
    if isinstance(targets, int):
        bigger = {**doc, "target_users": 2 * targets,
                  "datasets": [{**d0, "params": {**(d0.get("params") or {}), "users": users + targets}}, *doc["datasets"][1:]]}
        t, r = cold(bigger, repeat)
        a, b = base_r.counters.timings.get("adapt", 0.0), r.counters.timings.get("adapt", 0.0)
        rows.append([f"2x target users ({targets} -> {2 * targets}): adapt part", f"{a:.1f}", f"{b:.1f}", f"{b / a:.2f}x"])
        rows.append([f"2x target users ({targets} -> {2 * targets}): whole run", f"{base_t:.1f}", f"{t:.1f}",
                     f"{t / base_t:.2f}x"])
    print("\ngrowth")
    print(tabulate(rows, headers=["change", "before s", "after s", "change"], tablefmt="github"))


if __name__ == "__main__":
    main()
