"""Drives a run: the store's run lifecycle, cached job outputs, the executors, commits, hooks and Ctrl-C.

Order of work: plan the jobs (``plan``); serve every job whose outputs are cached (nothing is loaded for them);
hand the remaining units to an executor — this process's :class:`~harbench.run.nodes.Worker`, a local process
pool (``local``) or Ray (``ray``) — which yields records and counters; commit each record to the store as it
arrives and call the hooks. Only the driver touches the store; a job that raises is recorded as failed and the
run goes on.
"""

from __future__ import annotations

import time
from typing import Callable, Generator

import torch

from ..plugins import Registry
from ..records import JobRecord, JobSpec, RunSummary
from ..results.store import Store
from ..suite import Suite
from . import warm
from .cache import WeightCache
from .environment import environment
from .keys import NodeKeys
from .limits import StopOnInterrupt
from .local import run_pool
from .nodes import Counters, Worker, WorkerSpec
from .plan import Unit, job_cached, plan_jobs, suite_hash, units
from .targets import Targets, info_dict
from .warm import served_record


class Runner:
    def __init__(self, suite: Suite, registry: Registry, store: Store, *, resume: bool = False,
                 progress: Callable[[str, int, int], None] | None = None, workers: int | None = None,
                 executor: str | None = None, ray_address: str | None = None, remeasure: bool = False):
        self.suite = suite
        self.registry = registry
        self.store = store
        self.cache = WeightCache(store.folder / "cache")
        self.resume = resume
        self.progress = progress or (lambda label, done, total: None)
        self._position = (0, 0)  # jobs finished / total, for progress notes about shared work
        self.counters = Counters()
        self.targets = Targets(suite, registry)
        self.workers = workers if workers is not None else suite.model.workers
        self.executor = executor or suite.model.executor
        self.ray_address = ray_address
        self.remeasure = remeasure
        self.threads = suite.model.threads
        self.keys = NodeKeys(suite, registry, self.targets.info)
        self._job_keys: dict[str, str] = {}  # JobSpec.key -> the job node's cache key

    def note(self, what: str) -> None:
        """Say what shared work is running now (the bar would otherwise sit still while a generic model trains)."""
        self.progress(what, *self._position)

    def spec(self) -> WorkerSpec:
        """What a worker process rebuilds the run from; its torch threads are the suite's, not a share of the
        cores: numerics never depend on scheduling."""
        return WorkerSpec(self.suite.text, self.suite.source, str(self.store.folder.resolve()), self.workers,
                          self.threads, ",".join(sorted(self.registry.versions())))

    # ---------------------------------------------------------------------------------------------- run
    def run(self) -> RunSummary:
        t0 = time.perf_counter()
        torch.set_num_threads(self.threads)
        self.cache.clean()  # temporary files of a killed writer
        return self._run(t0)

    def _run(self, t0: float) -> RunSummary:
        jobs = plan_jobs(self.suite)
        shash = suite_hash(self.suite)
        self.store.check()  # a damaged file is never written into
        previous = self.store.resumable_run(shash) if self.resume else None
        if previous is not None:
            run_id = int(previous["id"])
            self.store.reopen_run(run_id)
            done = self.store.done_keys(run_id)
            env = {}
        else:
            env = environment(self.registry)
            env["hardware"] = {h.name: info_dict(hw, self.targets.describe(hw)) for h, hw in self.targets.instances.items()}
            env["jobs_planned"] = len(jobs)  # so every view can tell a partial run from a complete one
            run_id = self.store.start_run(self.suite.name, self.suite.source, self.suite.text, shash, env)
            done = set()
        summary = RunSummary(run_id, self.suite.name, len(jobs), 0, 0, 0, results=str(self.store.folder))
        summary.ok = len(done)
        todo = [j for j in jobs if j.key not in done]
        finished = len(jobs) - len(todo)
        self._position = (finished, len(jobs))
        self.progress("starting", finished, len(jobs))
        served, rest = self._serve_cached(units(self.suite, todo))
        if previous is None:
            self._remember(jobs, shash, env)
        summary.cached = len(served)
        if served:  # records that already exist in the cache: one transaction for all of them, not one each
            self._commit_served(run_id, served, summary)
            finished += len(served)
            self._position = (finished, len(jobs))
            self.progress(f"{len(served)} jobs from the cache", finished, len(jobs))
        with StopOnInterrupt() as stop:
            executed = self._execute(rest, stop)
            try:
                for rec in executed:  # a computed job is committed alone, before the next one's work is taken
                    self._commit(run_id, rec, summary)
                    finished += 1
                    self._position = (finished, len(jobs))
                    self.progress(rec.spec.label(), finished, len(jobs))
                    if stop.requested and self.workers == 1:
                        break
            except KeyboardInterrupt:  # a second Ctrl-C: stop now, but leave a resumable run, not a `running` one
                stop.requested = stop.aborted = True
            finally:
                executed.close()  # stops the executor (and this process's sandbox) now, not when collected
        summary.interrupted = stop.requested
        summary.wall_s = time.perf_counter() - t0
        status = "interrupted" if stop.requested else "failed" if summary.failed else "complete"
        self.store.finish_run(run_id, status)
        self.registry.hook.harbench_run_finished(run=summary)
        return summary

    def _execute(self, rest: list[Unit], stop) -> Generator[JobRecord, None, None]:
        """Records of the units that are not cached, from the chosen executor; counters merged as they come."""
        if not rest:
            return
        if self.executor == "ray" or self.workers > 1:
            if self.executor == "ray":
                from .ray import run_ray as execute  # Ray is an optional extra: imported only when asked for
            else:
                execute = run_pool
            for records, counters in execute(self.spec(), self.suite, self.registry, rest, stop, self.note,
                                             ray_address=self.ray_address):
                self.counters.merge(counters)
                yield from records
            return
        worker = Worker(self.suite, self.registry, self.store.folder, targets=self.targets, cache=self.cache,
                        note=self.note)
        worker.counters = self.counters
        try:
            for unit in rest:
                if stop.requested:
                    break
                yield from worker.run_unit(*unit)
        finally:
            worker.close()

    def _commit(self, run_id: int, rec: JobRecord, summary: RunSummary) -> None:
        samples = rec.facts.pop("_samples", {})
        provenance = rec.facts.pop("_provenance", {})
        self.store.add_job(run_id, rec, provenance=provenance, samples=samples)
        self._committed(run_id, rec, summary, provenance, samples)

    def _commit_served(self, run_id: int, served: list[JobRecord], summary: RunSummary) -> None:
        items = [(rec, rec.facts.pop("_provenance", {}), rec.facts.pop("_samples", {})) for rec in served]
        self.store.add_jobs(run_id, items)
        for rec, provenance, samples in items:
            self._committed(run_id, rec, summary, provenance, samples)

    def _committed(self, run_id: int, rec: JobRecord, summary: RunSummary, provenance: dict, samples: dict) -> None:
        """After a record is in the store: the job cache (computed jobs only), the summary's counts, the hooks."""
        key = self._job_keys.get(rec.spec.key)
        if rec.status == "ok" and key and "cache" not in provenance:  # only the driver writes job nodes
            self.cache.put_json("job", key, {
                "mode": rec.mode, "metrics": rec.metrics, "seconds": rec.seconds, "run_id": run_id,
                "finished": time.time(), "facts": {**rec.facts, "_samples": samples, "_provenance": provenance}})
        if rec.status == "ok":
            summary.ok += 1
        elif rec.status == "skipped":
            summary.skipped += 1
        else:
            summary.failed += 1
            summary.failures.append(rec)
        self.counters.compute_s += rec.seconds
        self.registry.hook.harbench_job_finished(record=rec)

    # ------------------------------------------------------------------------------------ cached outputs
    def _serve_cached(self, todo_units: list[Unit]) -> tuple[list[JobRecord], list[Unit]]:
        """Split off the jobs whose outputs are cached: a warm run loads no data and trains nothing for them.

        Measured targets are served too (the numbers were measured on this same target, and the row says which
        run measured them); ``remeasure`` makes them run again.
        """
        served: list[JobRecord] = []
        rest = []
        for di, seed, mi, jobs in todo_units:
            left = []
            for job in jobs:
                try:
                    key = self.keys.job(di, seed, mi, job)
                except Exception:  # e.g. a dataset whose describe() fails: the unit records that failure
                    left.append(job)
                    continue
                self._job_keys[job.key] = key
                rec = self._cached_record(job, key)
                if rec is None:
                    left.append(job)
                else:
                    served.append(rec)
            if left:
                rest.append((di, seed, mi, left))
        return served, rest

    def _cached_record(self, job: JobSpec, key: str) -> JobRecord | None:
        remeasured = self.remeasure and self.targets.measured(job)
        rec = served_record(self.cache, job, key) if job_cached(self.cache, key, remeasured) else None
        if rec is not None:
            self.counters.jobs_cached += 1
        return rec

    def _remember(self, jobs: list[JobSpec], shash: str, env: dict) -> None:
        """Write the plan memo (``run/warm.py``) where every key it stands for can be checked without plugins."""
        if not getattr(self.registry, "from_environment", False) or self.remeasure:
            return
        hooks = {h for p in self.registry.plugins if p.status == "loaded" for h in p.hooks}
        if hooks & set(warm.RUN_HOOKS):
            return
        try:
            if any(self.keys.info(di).extra.get("fingerprint") for di in range(len(self.suite.datasets))):
                return  # file-backed data: its files may change between runs, describe() must see them
        except Exception:  # noqa: BLE001 -- a dataset that cannot describe itself: its unit records why
            return
        for hw in self.targets.instances.values():
            if self.targets.describe(hw).mode == "measured" and not hw.measures_host:
                return  # a remote device: describe() probes it
        warm.write(self.cache, self.suite, shash, env, jobs, self._job_keys)
