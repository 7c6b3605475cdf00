"""Scale and speed of the harness on a suite (default: suites/drift.yaml), printed as tables.

* dedup        — generic trainings, prepares and adapts executed vs the plan's unique nodes;
* cold vs warm — a second run served from the cache (target < 10 % of the cold run);
* scaling      — 1 worker vs all cores (target >= 1.7x on 2 cores for the non-measured part), Ray vs local;
* growth       — adding an estimated hardware target (< 5 % more time), cold and as an increment on a cached run;
                 doubling target users (adapt part <= 2x).

* plan         — plan growth: grouping and counting (--dry-run) a 1x, 4x, 16x grid of estimated-target jobs
                 (targets: 100,000 jobs in < 5 s, time(4x) / time(1x) <= 5);
* store        — committing 10^5 fabricated job records (one transaction per job vs batched), then ``harbench
                 report``, ``export`` and ``compare`` on that run as subprocesses (wall time and peak memory);
* warm         — the default suite's warm run (everything cached): ``harbench run`` and ``harbench report``
                 end to end (target <= 1 s), and whether each imported torch;
* ray2         — Ray on a two-node cluster started on this machine vs the local executor (needs ray).

Measured host targets hold the machine exclusively, so the scaling figures use the suite with its measured
targets removed (the "non-measured part"); everything is measured in one process, in one session, and the
figures are medians of ``--repeat`` runs. Usage: python benchmarks/scaling.py [SUITE] [--repeat N] [--no-ray]
[--parts dedup,scaling,growth,plan,store,warm,ray2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from tabulate import tabulate

from harbench.plugins import get_registry
from harbench.results.store import Store
from harbench.run import Runner, plan_counts
from harbench.run.cache import WeightCache
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
                    "scaling, growth, plan, store, warm, ray2")
    ap.add_argument("--warm-results", default=None, help="a results folder whose cache already holds SUITE (warm "
                    "part; default: a cold run first)")
    ap.add_argument("--store-jobs", type=int, default=100_000, help="job records fabricated for the store part")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    doc = yaml.safe_load(open(args.suite))
    print(f"machine: {machine()}\n")
    if "plan" in parts:
        plan_growth(args.repeat)
    if "store" in parts:
        store_scale(args.store_jobs)
    if "warm" in parts:
        warm_run(doc, args.suite, args.repeat, args.warm_results)
    if "ray2" in parts:
        ray_two_nodes(doc, args.suite)
    if "dedup" in parts:
        dedup(doc, args.suite)
    if "scaling" in parts:
        scaling(doc, args.repeat, args.no_ray, os.cpu_count() or 1)
    if "growth" in parts:
        growth(doc, args.repeat)


def machine() -> str:
    import platform

    from harbench.run.environment import processor

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{processor()}, {os.cpu_count()} cores, {platform.platform()}, load average {load:.1f} at start"


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


# ------------------------------------------------------------------------------ issue #25: scale


def grid_doc(target_users: int) -> dict:
    """50 jobs per target user: 5 learning rates of finetune-last x 2 estimated targets x 5 seeds; tiny data."""
    return {"name": "grid", "datasets": [{"name": "synthetic-drift", "params": {
                "users": target_users + 4, "windows": 4, "sessions": 1, "k": 1, "unseen_windows": 1}}],
            "methods": [{"name": "finetune-last", "params": {"epochs": 1, "lr": lr}} for lr in
                        (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)],
            "hardware": ["rpi4", "rpi5"], "seeds": [0, 1, 2, 3, 4], "target_users": target_users,
            "generic": {"epochs": 1}}


def plan_growth(repeat: int) -> None:
    """Grouping (units) and --dry-run counting of a 1x, 4x, 16x grid; nothing runs."""
    from harbench.run.plan import plan_jobs, units

    registry = get_registry()
    rows, times = [], {}
    with tempfile.TemporaryDirectory() as results:  # once untimed: hashing the plugins' sources, describe()
        plan_counts(parse_suite(yaml.safe_dump(grid_doc(4)), "grid.yaml", registry), registry,
                    WeightCache(os.path.join(results, "cache")))
    for factor in (1, 4, 16):
        doc = grid_doc(125 * factor)
        suite = parse_suite(yaml.safe_dump(doc), "grid.yaml", registry)
        group, count = [], []
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as results:
                t0 = time.perf_counter()
                jobs = plan_jobs(suite)
                n_units = len(units(suite, jobs))
                t1 = time.perf_counter()
                counts = plan_counts(suite, registry, WeightCache(os.path.join(results, "cache")))
                t2 = time.perf_counter()
            group.append(t1 - t0)
            count.append(t2 - t1)
        times[factor] = statistics.median(group) + statistics.median(count)
        rows.append([f"{factor}x", f"{len(jobs):,}", f"{n_units:,}", f"{counts.nodes['job']:,}",
                     f"{statistics.median(group):.2f}", f"{statistics.median(count):.2f}", f"{times[factor]:.2f}"])
    print("plan growth (grid of estimated-target jobs; target: 100,000 jobs grouped and counted in < 5 s, "
          "time(4x) / time(1x) <= 5)")
    print(tabulate(rows, headers=["grid", "jobs", "units", "counted", "plan + group s", "--dry-run counts s",
                                  "total s"], tablefmt="github"))
    print(f"time(4x) / time(1x) = {times[4] / times[1]:.2f}, time(16x) / time(4x) = {times[16] / times[4]:.2f}\n")


def fabricated(n: int, seed: int = 0):
    """n job records as a run would commit them: 10 method configurations x 4 targets x users x 2 seeds."""
    import random

    from harbench.records import JobRecord, JobSpec

    rng = random.Random(seed)
    methods = [("finetune-last", {"epochs": e}) for e in range(1, 11)]
    targets = ["cpu", "rpi4", "rpi5", "jetson-xavier-agx"]
    users = max(1, n // (len(methods) * len(targets) * 2))
    i = 0
    for s in (0, 1):
        for m, mp in methods:
            for u in range(users):
                for h in targets:
                    if i == n:
                        return
                    i += 1
                    acc = min(1.0, max(0.0, 0.5 + 0.03 * mp["epochs"] + rng.gauss(0, 0.05)))
                    metrics = {"acc_seen": acc, "acc_unseen": acc - 0.1, "f1_seen": acc - 0.02, "f1_unseen": acc - 0.12,
                               "gain_seen": acc - 0.5, "adapt_s": 0.1 * mp["epochs"] * (1 + rng.random()),
                               "adapt_j": mp["epochs"] * (1 + rng.random()), "latency_ms_p50": 1 + rng.random(),
                               "latency_ms_p90": 2 + rng.random(), "latency_ms_p99": 3 + rng.random(),
                               "infer_mj": rng.random(), "params": 10_000.0, "model_kb": 40.0, "flops": 1e6,
                               "energy_method": "codecarbon-estimate" if h == "cpu" else "roofline-estimate"}
                    spec = JobSpec("synthetic-drift", {"users": users}, m, mp, f"epochs={mp['epochs']}", h, {}, s,
                                   f"u{u:05d}")
                    rec = JobRecord(spec, "ok", mode="measured" if h == "cpu" else "estimated", metrics=metrics,
                                    facts={"optimizer_steps": mp["epochs"]}, seconds=0.1)
                    samples = {"latency_s": [1e-3 + 1e-5 * rng.random() for _ in range(20)]} if h == "cpu" else {}
                    yield rec, {"hardware": {"name": h, "mode": rec.mode}}, samples


def _child(cmd: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) and exit status of one command."""
    wall, rss, rc, _ = _child_cpu(cmd)
    return wall, rss, rc


_MEASURE = """import json, os, sys
quiet = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0) for fd in (1, 2)]
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], dict(os.environ), file_actions=quiet)
_, status, usage = os.wait4(pid, 0)
print(json.dumps([usage.ru_maxrss, os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime]))"""


def _child_cpu(cmd: list[str]) -> tuple[float, float, int, float]:
    """:func:`_child` and the command's CPU seconds (user + system: on a loaded machine, what it cost).

    The command is started by a small Python process that reports its peak RSS: a child of this process (torch
    loaded) would count this process's resident pages, shared until its ``exec``, as its own."""
    import json
    import subprocess

    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - t0
    rss, rc, cpu = json.loads(out)
    return wall, rss / 1024, rc, cpu


def store_scale(n: int) -> None:
    """Write rate per job and batched, then the reading commands on an n-row run."""
    import sys

    harbench = os.path.join(os.path.dirname(sys.executable), "harbench")
    rows = []
    with tempfile.TemporaryDirectory() as results:
        store = Store(results)
        suite_text = yaml.safe_dump(grid_doc(4))
        run_id = store.start_run("fabricated", "fabricated.yaml", suite_text, "x", {"jobs_planned": n, "hardware": {}})
        records = fabricated(n)
        single = min(1000, n // 10)
        t0 = time.perf_counter()
        for _ in range(single):
            rec, prov, samples = next(records)
            store.add_job(run_id, rec, prov, samples)
        t_single = time.perf_counter() - t0
        t0 = time.perf_counter()
        batched = 0
        while True:
            chunk = [item for _, item in zip(range(10_000), records)]
            if not chunk:
                break
            batched += store.add_jobs(run_id, chunk)
        t_batch = time.perf_counter() - t0
        store.finish_run(run_id, "complete")
        rows.append([f"commit, one transaction per job ({single:,} jobs)", f"{t_single:.2f}",
                     f"{single / t_single:,.0f} jobs/s", ""])
        rows.append([f"commit, batched ({batched:,} jobs, 10,000 per transaction)", f"{t_batch:.2f}",
                     f"{batched / t_batch:,.0f} jobs/s", ""])
        size = os.path.getsize(os.path.join(results, "harbench.sqlite")) / 2**20
        load = os.getloadavg()[0]
        base = [str(run_id), "--results", results]
        streamed = ("import sys; from harbench.results.export import export_run; from harbench.results.store import "
                    "Store; export_run(Store(sys.argv[1]), int(sys.argv[2]), 'csv', sys.argv[3])")
        for label, cmd in [
            ("harbench report", [harbench, "report", *base]),
            ("harbench report --format json", [harbench, "report", *base, "--format", "json"]),
            ("harbench report --format csv", [harbench, "report", *base, "--format", "csv"]),
            ("harbench report --full", [harbench, "report", *base, "--full"]),
            *[(f"harbench export --format {fmt}", [harbench, "export", *base, "--format", fmt, "-o",
                                                   os.path.join(results, f"out.{fmt}")])
              for fmt in ("csv", "json", "parquet")],
            ("export_run(..., 'csv') (streamed from the store)", [sys.executable, "-c", streamed, results, str(run_id),
                                                                 os.path.join(results, "streamed.csv")]),
            ("harbench compare (the run against itself)", [harbench, "compare", *base[:1], *base, "--fail-on",
                                                           "acc_seen:-1pt,latency_ms_p50:+10%"]),
        ]:
            _child([harbench, "list", "metrics"])  # again: an edit to the tree meanwhile invalidates the snapshot
            wall, rss, rc, cpu = _child_cpu(cmd)
            rows.append([label, f"{wall:.1f}", f"peak RSS {rss:,.0f} MB", f"exit {rc}, CPU {cpu:.1f} s"])
    print(f"store at scale ({n:,} fabricated job records, {size:,.0f} MB store; load average {load:.1f} -> "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(tabulate(rows, headers=["what", "s", "rate / memory", ""], tablefmt="github"))
    print()


def warm_run(doc: dict, path: str, repeat: int, results: str | None = None) -> None:
    """A run whose every job is cached, end to end: the ``harbench run`` command (interpreter start, the plan memo,
    one transaction, the cached closing answer), and ``harbench report`` after it; whether either imported torch."""
    import subprocess
    import sys

    harbench = os.path.join(os.path.dirname(sys.executable), "harbench")
    probe = ("import sys; from harbench.cli import main\ntry: main(sys.argv[1:], prog_name='harbench')\n"
             "except SystemExit: pass\nprint('TORCH', 'torch' in sys.modules)")

    def torch_loaded(args: list[str]) -> bool:
        out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True).stdout
        return "TORCH True" in out

    with tempfile.TemporaryDirectory() as scratch:
        folder = results or scratch
        if results is None:
            print(f"warm run: a cold run of {path} first (minutes) ...", flush=True)
        subprocess.run([harbench, "run", path, "--results", folder, "-q"], check=True, stdout=subprocess.DEVNULL)
        rows = []
        for args in (["run", path, "--results", folder, "-q"], ["report", "latest", "--results", folder]):
            times = []
            for _ in range(max(repeat, 5)):
                t, _, status = _child([harbench, *args])
                if status:
                    raise SystemExit(f"harbench {' '.join(args)} exited {status}")
                times.append(t)
            rows.append([f"harbench {args[0]}", f"{statistics.median(times):.2f}", f"{min(times):.2f}",
                         f"{max(times):.2f}", len(times), torch_loaded(args)])
    print(f"warm run of {path}, every job cached (target <= 1 s); load average {os.getloadavg()[0]:.1f}")
    print(tabulate(rows, headers=["command (end to end)", "median s", "min s", "max s", "runs", "torch imported"],
                   tablefmt="github"))
    print()


def ray_two_nodes(doc: dict, path: str) -> None:
    """Ray on a two-node cluster on this machine (two raylets, one CPU each) vs the local executor, 2 workers,
    estimated targets. The second node has its own cache folder (HARBENCH_WORKER_CACHE in its environment), as a
    host without the results folder's disk: node results travel through Ray's object store. Same results, each
    shared node once (tests/test_ray_two_nodes.py checks it on a tiny suite)."""
    try:
        from ray.cluster_utils import Cluster
    except ImportError:
        print("ray2: ray is not installed\n")
        return
    import contextlib
    import io
    import sys

    from harbench.run.ray import WORKER_CACHE_ENV, _loopback

    est = estimated_only(doc)
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b, \
            tempfile.TemporaryDirectory() as node_b:
        t_local, local = timed_run(est, a, workers=2)
        err = io.StringIO()
        with _loopback():
            cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
            os.environ[WORKER_CACHE_ENV] = node_b  # the second node's processes inherit it
            try:
                cluster.add_node(num_cpus=1)
            finally:
                os.environ.pop(WORKER_CACHE_ENV)
            cluster.wait_for_nodes()
            try:
                with contextlib.redirect_stderr(err):
                    t_ray, on_ray = timed_run(est, b, workers=2, executor="ray", ray_address=cluster.address)
            finally:
                import ray

                ray.shutdown()
                cluster.shutdown()
        acc = lambda folder: sorted((r["method"], r["variant"], r["hardware"], r["user"], r["seed"], r["acc_seen"],
                                     r["acc_unseen"]) for r in Store(folder).job_rows(1))
        same = acc(a) == acc(b)
        on_b = len(list(Path(node_b).glob("*.safetensors")))
    sys.stderr.write(err.getvalue())
    blind = "named" if "do not see the results folder's cache" in err.getvalue() else "NOT named"
    lc, rc = local.counters, on_ray.counters
    print("ray, two nodes on this machine, the second with its own cache folder, vs local (2 workers, estimated "
          f"targets; the start-up check {blind} the second node; {on_b} entries in its cache)")
    print(tabulate([["local", f"{t_local:.1f}", lc.generic_trained, lc.prepared, lc.adapted, ""],
                    ["ray, 2 nodes", f"{t_ray:.1f}", rc.generic_trained, rc.prepared, rc.adapted,
                     f"identical results: {same}"]],
                   headers=["executor", "s", "generic", "prepare", "adapt", ""], tablefmt="github"))
    print()


if __name__ == "__main__":
    main()
