"""Runs a resolved suite: shared work once (generic model, method prepare), then one job per grid cell.

Order of work: per (dataset, seed) load and leakage-check the splits; per backbone train (or load) the generic
model; per method configuration run (or load) ``prepare``; per user and hardware target run the job. Each job is
committed to the store as it finishes; a job that raises is recorded as failed and the run goes on.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import os
import platform
import signal
import socket
import threading
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from . import __version__
from .api import AdaptFacts, AdaptResult, DatasetInfo, JobOutputs, Method, MethodContext, MethodState, Splits, UserData
from .cache import WeightCache
from .hashing import content_hash
from .hostlock import HostLock, no_lock
from .leakage import check_splits
from .models import build_backbone, count_params
from .nodes import NodeKeys, generic_key, prepare_key  # noqa: F401  (generic_key, prepare_key: public here too)
from .plugins import Registry
from .records import JobRecord, JobSpec, RunSummary
from .sandbox import AdaptFailed, AdaptRequest, Sandbox, weights_bytes
from .store import Store, finite_or_none
from .stream import label_free_stream
from .suite import Resolved, Suite
from .training import accuracy, fit, flops_per_window, make_optimizer, predict


@dataclass
class Counters:
    """How much shared work actually executed (the rest came from the cache)."""

    generic_trained: int = 0
    generic_cached: int = 0
    prepared: int = 0
    prepare_cached: int = 0
    adapted: int = 0
    adapt_reused: int = 0  # estimated targets served by this run's adapt of the same user
    adapt_cached: int = 0  # ... or by an adapted model from the cache
    jobs_cached: int = 0  # whole job outputs served from the cache (nothing loaded, trained or measured)
    compute_s: float = 0.0  # time spent in the measured/compute phases (training, prepare, jobs)
    timings: dict[str, float] = field(default_factory=dict)  # dataset, generic, prepare; adapt (inside the jobs)


PROVENANCE_METRICS = ("energy_method",)

CAPABILITIES: dict[str, Callable[[DatasetInfo, UserData | None], bool]] = {
    "labels": lambda info, user: True,
    "blocks": lambda info, user: True,  # every built-in backbone is block-structured
    "context-drift": lambda info, user: any(c.drift for c in info.contexts),
}


def environment(registry: Registry) -> dict[str, Any]:
    commit = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=os.path.dirname(__file__)).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "host": socket.gethostname(), "platform": platform.platform(), "python": sys.version.split()[0],
        "torch": torch.__version__, "harbench": __version__, "plugins": registry.versions(),
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "git_commit": commit,
    }


def suite_hash(suite: Suite) -> str:
    return content_hash([suite.name, [r.__dict__ for r in suite.datasets], [r.__dict__ for r in suite.methods],
                         [r.__dict__ for r in suite.hardware], suite.model.seeds, suite.targets,
                         suite.model.generic.model_dump()])


def plan_jobs(suite: Suite) -> list[JobSpec]:
    jobs = []
    for di, d in enumerate(suite.datasets):
        for seed in suite.model.seeds:
            for m in suite.methods:
                for user in suite.targets[di]:
                    for h in suite.hardware:
                        jobs.append(JobSpec(d.name, d.params, m.name, m.params, m.variant, h.name, h.params, seed, user))
    return jobs


@dataclass
class PlanCounts:
    nodes: dict[str, int]
    cached: dict[str, int]


def plan_counts(suite: Suite, registry: Registry, cache: WeightCache, remeasure: bool = False) -> PlanCounts:
    """How many nodes of each kind a cold run executes, and how many this run takes from the cache (--dry-run).

    A generic model or prepare counts as cached when its entry exists or when no job below it needs to run.
    Each measured target adapts for itself (it measures the adapt phase); estimated targets share one adapt.
    """
    runner = Runner(suite, registry, Store(cache.folder.parent), workers=1, remeasure=remeasure)
    runner.cache = cache
    keys = runner.keys
    nodes = {"generic": 0, "prepare": 0, "adapt": 0, "job": 0}
    cached = dict.fromkeys(nodes, 0)
    needed_generic: dict[str, bool] = {}
    needed_prepare: dict[str, bool] = {}
    for di, seed, mi, jobs in runner._units(plan_jobs(suite)):
        backbone = registry.get("method", suite.methods[mi].name).cls.backbone
        gkey, pkey = keys.generic(di, seed, backbone), keys.prepare(di, seed, mi)
        todo = [j for j in jobs if not runner._served_from_cache(j, keys.job(di, seed, mi, j))]
        measured = [j for j in jobs if runner._describe(runner._hw(j)).mode == "measured"]
        to_adapt = [j for j in todo if j in measured]
        if todo and not to_adapt and not cache.has("adapt", keys.adapt(di, seed, mi, jobs[0].user)):
            to_adapt.append(None)  # the estimated targets' shared adapt
        total_adapt = max(1, len(measured))
        nodes["job"] += len(jobs)
        cached["job"] += len(jobs) - len(todo)
        nodes["adapt"] += total_adapt
        cached["adapt"] += total_adapt - len(to_adapt)
        needed_generic[gkey] = needed_generic.get(gkey, False) or bool(todo)
        needed_prepare[pkey] = needed_prepare.get(pkey, False) or bool(todo)
    for kind, needed in (("generic", needed_generic), ("prepare", needed_prepare)):
        nodes[kind] = len(needed)
        cached[kind] = sum(cache.has(kind, key) or not need for key, need in needed.items())
    return PlanCounts(nodes, cached)


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
        self.hardware = {h: h.instance(registry) for h in suite.hardware}
        self._hw_info: dict[int, Any] = {}  # describe() once per target: it may read files or probe sensors
        # provenance is not optional: how energy was obtained is stored whatever `metrics:` lists
        names = list(suite.metrics) + [m for m in PROVENANCE_METRICS if m not in suite.metrics and m in registry.names("metric")]
        self.metrics = {m: registry.get("metric", m).cls() for m in names}
        self.workers = workers if workers is not None else suite.model.workers
        self.executor = executor or suite.model.executor
        self.ray_address = ray_address
        self.remeasure = remeasure
        self.keys = NodeKeys(suite, registry, lambda job: self._describe(self._hw(job)))
        self._job_keys: dict[str, str] = {}  # JobSpec.key -> the job node's cache key
        self.lock = HostLock(store.folder / ".locks").hold if self.workers > 1 else no_lock
        self._splits: dict[tuple, Splits] = {}
        self._generics: dict[tuple, tuple] = {}
        self._states: dict[tuple, tuple[Method, MethodState]] = {}
        self.threads = suite.model.threads
        self._generic_bytes: dict[int, tuple[Any, bytes]] = {}
        self.sandbox = Sandbox(registry, suite.model.isolation)

    # ---------------------------------------------------------------------------------------------- run
    def run(self) -> RunSummary:
        t0 = time.perf_counter()
        torch.set_num_threads(self.threads)
        self.cache.clean()  # temporary files of a killed writer
        try:
            return self._run(t0)
        finally:
            self.sandbox.close()

    def _run(self, t0: float) -> RunSummary:
        jobs = plan_jobs(self.suite)
        shash = suite_hash(self.suite)
        self.store.check()  # a damaged file is never written into
        previous = self.store.resumable_run(shash) if self.resume else None
        if previous is not None:
            run_id = int(previous["id"])
            self.store.reopen_run(run_id)
            done = self.store.done_keys(run_id)
        else:
            env = environment(self.registry)
            env["hardware"] = {h.name: _info_dict(hw, self._describe(hw)) for h, hw in self.hardware.items()}
            env["jobs_planned"] = len(jobs)  # so every view can tell a partial run from a complete one
            run_id = self.store.start_run(self.suite.name, self.suite.source, self.suite.text, shash, env)
            done = set()
        summary = RunSummary(run_id, self.suite.name, len(jobs), 0, 0, 0)
        summary.ok = len(done)
        todo = [j for j in jobs if j.key not in done]
        finished = len(jobs) - len(todo)
        self._position = (finished, len(jobs))
        self.progress("starting", finished, len(jobs))
        served, units = self._serve_cached(self._units(todo))
        summary.cached = len(served)
        with _StopOnInterrupt() as stop:
            if (self.workers > 1 or self.executor == "ray") and units:
                from .executor import run_parallel

                executed = run_parallel(self, units, stop)
            else:
                executed = (rec for unit in units if not stop.requested for rec in self.run_unit(*unit))
            for rec in itertools.chain(served, executed):
                self._commit(run_id, rec, summary)
                finished += 1
                self._position = (finished, len(jobs))
                self.progress(rec.spec.label(), finished, len(jobs))
                if stop.requested and self.workers == 1:
                    break
        summary.interrupted = stop.requested
        summary.wall_s = time.perf_counter() - t0
        status = "interrupted" if stop.requested else "failed" if summary.failed else "complete"
        self.store.finish_run(run_id, status)
        self.registry.hook.harbench_run_finished(run=summary)
        return summary

    def _commit(self, run_id: int, rec: JobRecord, summary: RunSummary) -> None:
        samples = rec.facts.pop("_samples", {})
        provenance = rec.facts.pop("_provenance", {})
        self.store.add_job(run_id, rec, provenance=provenance, samples=samples)
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

    # ------------------------------------------------------------------------------------- shared work
    def _units(self, todo: list[JobSpec]) -> list[tuple[int, int, int, list[JobSpec]]]:
        """Independent units of work: one method configuration's jobs for one user of a (dataset, seed).

        One pass over the jobs (grid order kept): a job's dataset and method entries are found by the identity of
        the resolved parameter objects the plan put in it, so grouping is linear in the grid."""
        dataset_of = {id(d.params): di for di, d in enumerate(self.suite.datasets)}
        method_of = {id(m.params): mi for mi, m in enumerate(self.suite.methods)}
        groups: dict[tuple, list[JobSpec]] = {}
        for j in todo:
            di = dataset_of.get(id(j.dataset_params))
            mi = method_of.get(id(j.method_params))
            if di is None or mi is None:  # a spec built elsewhere: find its entries by value
                di = next(i for i, d in enumerate(self.suite.datasets) if d.name == j.dataset and d.params == j.dataset_params)
                mi = next(i for i, m in enumerate(self.suite.methods) if m.name == j.method and m.params == j.method_params)
            groups.setdefault((di, j.seed, mi, j.user), []).append(j)
        order = {(di, seed, mi, user): n for n, (di, seed, mi, user) in enumerate(
            (di, seed, mi, user) for di in range(len(self.suite.datasets)) for seed in self.suite.model.seeds
            for mi in range(len(self.suite.methods)) for user in self.suite.targets[di])}
        return [(di, seed, mi, jobs) for (di, seed, mi, user), jobs in
                sorted(groups.items(), key=lambda kv: order.get(kv[0], len(order)))]

    def _serve_cached(self, units):
        """Split off the jobs whose outputs are cached: a warm run loads no data and trains nothing for them.

        Measured targets are served too (the numbers were measured on this same target, and the row says which
        run measured them); ``remeasure`` makes them run again.
        """
        served: list[JobRecord] = []
        rest = []
        for di, seed, mi, jobs in units:
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

    def _served_from_cache(self, job: JobSpec, key: str) -> bool:
        remeasured = self.remeasure and self._describe(self._hw(job)).mode == "measured"
        return not remeasured and self.cache.has_json("job", key)

    def _cached_record(self, job: JobSpec, key: str) -> JobRecord | None:
        data = self.cache.get_json("job", key) if self._served_from_cache(job, key) else None
        if data is None:
            return None
        facts = data["facts"]
        facts["_provenance"]["cache"] = {"key": key, "run_id": data["run_id"], "finished": data["finished"],
                                         "seconds": data["seconds"]}
        self.counters.jobs_cached += 1
        return JobRecord(job, "ok", mode=data["mode"], metrics=data["metrics"], facts=facts, seconds=0.0)

    def splits(self, di: int, seed: int) -> Splits:
        key = (di, seed)
        if key not in self._splits:
            self.sandbox.start()  # forked before this process holds any data: adapt never sees the test splits
            d = self.suite.datasets[di]
            t0 = time.perf_counter()
            splits = d.instance(self.registry).load(seed, self.suite.targets[di])
            self._timed("dataset", time.perf_counter() - t0)
            check_splits(splits, d.name)
            self._splits[key] = splits
        return self._splits[key]

    def generic(self, di: int, seed: int, backbone: str):
        key = (di, seed, backbone)
        if key not in self._generics:
            splits = self.splits(di, seed)
            with self.lock(False), _time_limit(self.suite.model.timeout_s, "training the generic model"):
                self._generics[key] = self._generic(self.suite.datasets[di], seed, splits, backbone)
        return self._generics[key]

    def prepared(self, di: int, seed: int, mi: int) -> tuple[Method, MethodState]:
        key = (di, seed, mi)
        if key not in self._states:
            m = self.suite.methods[mi]
            method: Method = m.instance(self.registry)
            generic, _, gkey = self.generic(di, seed, method.backbone)
            splits = self.splits(di, seed)
            with self.lock(False), _time_limit(self.suite.model.timeout_s, f"prepare of method {m.name!r}"):
                self._states[key] = (method, self._prepare(m, method, generic, gkey, splits, seed))
        return self._states[key]

    def run_unit(self, di: int, seed: int, mi: int, jobs: list[JobSpec]):
        """Yield one record per job of a unit; a failure of shared work fails (or skips) all of them."""
        try:
            splits = self.splits(di, seed)
        except Exception as exc:
            yield from (_failed(job, exc, stage="dataset") for job in jobs)
            return
        method: Method = self.suite.methods[mi].instance(self.registry)
        reason = self._skip_reason(method, splits.info, jobs[0])
        if reason:
            yield from (JobRecord(job, "skipped", error=reason) for job in jobs)
            return
        try:
            generic, generic_acc, _ = self.generic(di, seed, method.backbone)
            method, state = self.prepared(di, seed, mi)
        except Exception as exc:
            yield from (_failed(job, exc, stage="prepare") for job in jobs)
            return
        # measured targets first: they must run adapt themselves; estimated targets then reuse that result
        jobs = sorted(jobs, key=lambda j: (j.user, self._describe(self._hw(j)).mode != "measured"))
        reusable: dict[str, AdaptResult] = {}
        evaluations: dict[str, tuple] = {}
        for job in jobs:
            hw = self._hw(job)
            exclusive = hw.measures_host and self._describe(hw).mode == "measured"
            with self.lock(exclusive):
                yield self._job(job, method, state, generic, generic_acc.get(job.user), splits, seed,
                                _SharedAdapt(reusable, evaluations, self.keys.adapt(di, seed, mi, job.user)))

    def _skip_reason(self, method: Method, info: DatasetInfo, job: JobSpec) -> str | None:
        for cap in sorted(method.requires):
            check = CAPABILITIES.get(cap)
            if check is None:
                return f"method {method.name!r} requires unknown capability {cap!r}"
            if not check(info, None):
                return f"method {method.name!r} requires {cap!r}, which dataset {info.name!r} does not provide"
        reason = method.skip(info)
        if reason:
            return reason
        for answer in self.registry.hook.harbench_skip_job(job=job):
            if answer:
                return str(answer)
        return None

    def _generic(self, d: Resolved, seed: int, splits: Splits, backbone: str):
        info = splits.info
        recipe = self.suite.model.generic
        key = generic_key(d, seed, list(splits.targets), backbone, recipe.model_dump(), info)
        torch.manual_seed(seed)
        model = build_backbone(backbone, info.channels, info.num_classes)
        cached = self.cache.get("generic", key)
        if cached is not None:
            model.load_state_dict(cached[0])
            self.counters.generic_cached += 1
        else:
            self.note(f"training the generic {backbone} model on {d.name} (seed {seed})")
            t0 = time.perf_counter()
            fit(model, splits.population, epochs=recipe.epochs, batch_size=recipe.batch_size,
                optimizer=make_optimizer(model.parameters(), "adam", recipe.lr),
                generator=torch.Generator().manual_seed(seed))
            self._timed("generic", time.perf_counter() - t0)
            bad = [n for n, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
            if bad:  # never cache it: every job below would fail, blaming its method
                raise ValueError(f"the generic {backbone} model trained on dataset {d.name!r} has non-finite weights "
                                 f"({_names(bad)}); check the suite's generic recipe (lr, epochs)")
            self.cache.put("generic", key, model.state_dict(), {"backbone": backbone})
            self.counters.generic_trained += 1
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
            p.grad = None
        acc = {u: accuracy(t.test_seen.y, predict(model, t.test_seen.x)) for u, t in splits.targets.items()}
        return model, acc, key

    def _prepare(self, m: Resolved, method: Method, generic, gkey: str, splits: Splits, seed: int) -> MethodState:
        key = prepare_key(m, gkey, seed, self.registry)
        cached = self.cache.get("prepare", key)
        if cached is not None:
            self.counters.prepare_cached += 1
            return MethodState(tensors=cached[0], meta=cached[1])
        torch.manual_seed(seed)
        ctx = MethodContext(seed=seed, info=splits.info)
        self.note(f"prepare of {m.name}{f'[{m.variant}]' if m.variant else ''} (seed {seed})")
        t0 = time.perf_counter()
        state = method.prepare(copy.deepcopy(generic), splits.population, ctx)  # the shared model stays untouched
        self._timed("prepare", time.perf_counter() - t0)
        if not isinstance(state, MethodState):
            raise TypeError(f"method {m.name!r}: prepare() returned {type(state).__name__}, expected harbench.MethodState")
        self.cache.put("prepare", key, state.tensors, state.meta)
        self.counters.prepared += 1
        return state

    def note(self, what: str) -> None:
        """Say what shared work is running now (the bar would otherwise sit still while a generic model trains)."""
        self.progress(what, *self._position)

    def _timed(self, what: str, seconds: float) -> None:
        self.counters.compute_s += seconds
        self.counters.timings[what] = self.counters.timings.get(what, 0.0) + seconds

    # ---------------------------------------------------------------------------------------------- a job
    def _hw(self, job: JobSpec):
        ref = next(h for h in self.suite.hardware if h.name == job.hardware and h.params == job.hardware_params)
        return self.hardware[ref]

    def _describe(self, hw):
        if id(hw) not in self._hw_info:
            self._hw_info[id(hw)] = hw.describe()
        return self._hw_info[id(hw)]

    def _job(self, job: JobSpec, method: Method, state: MethodState, generic, generic_acc, splits: Splits, seed: int,
             shared: "_SharedAdapt"):
        t0 = time.perf_counter()
        try:
            with _time_limit(self.suite.model.timeout_s):
                rec = self._job_body(job, method, state, generic, generic_acc, splits, seed, shared)
        except MemoryError:
            rec = JobRecord(job, "failed", error="job: MemoryError: the job exhausted memory")
        except Exception as exc:
            rec = _failed(job, exc, stage="job")
        rec.seconds = time.perf_counter() - t0
        return rec

    def _job_body(self, job, method, state, generic, generic_acc, splits: Splits, seed: int,
                  shared: "_SharedAdapt") -> JobRecord:
        """Adapt on the target (or reuse the user's adapt result for an estimated target), evaluate, measure."""
        info = splits.info
        target = splits.targets[job.user]
        hw = self._hw(job)
        hw_info = self._describe(hw)
        estimated = hw_info.mode == "estimated"
        adapt = self._device_view(target.adapt, method, seed, job.user, info)
        user = UserData(job.user, info.context(target.adapt_context), adapt)
        ctx = MethodContext(seed=seed, info=info, hardware=hw_info, radio_joules_per_byte=hw.radio_joules_per_byte())

        def shape_probe(result: AdaptResult) -> None:
            """One forward on the returned model, so a target that estimates from traced calls sees the input
            shape (the method itself ran in another process); a host-measured target does not pay for it."""
            if not hw.measures_host:
                with torch.no_grad():
                    result.model.eval()(adapt.x[:1])

        reused = None
        if estimated:  # adapt is deterministic per seed: an estimate models it from an earlier run's facts
            reused = shared.results.get(job.user) or self._cached_adapt(shared.key, generic)
        if reused is not None:
            def replay() -> AdaptResult:
                shape_probe(reused)
                return reused

            result, adapt_cost = hw.run_adapt(replay)
            self.counters.adapt_reused += job.user in shared.results
        else:
            request = AdaptRequest(
                method=job.method, params=dict(method.params), backbone=method.backbone, channels=info.channels,
                classes=info.num_classes, generic=self._weights(generic), state=state, user=user, ctx=ctx,
                torch_seed=int(content_hash([seed, job.user], 8), 16), threads=self.threads)
            self.counters.adapted += 1
            t_adapt = time.perf_counter()
            try:
                result, adapt_cost, verdict = self.sandbox.adapt(request, hw.run_adapt, shape_probe,
                                                                 defer=hw.measures_host)
            finally:  # part of the job's own time already: kept apart from compute_s, for the growth benchmark
                self.counters.timings["adapt"] = self.counters.timings.get("adapt", 0.0) + time.perf_counter() - t_adapt
            if verdict.generic:
                raise RuntimeError(f"method {job.method!r} modified the shared generic model ({_names(verdict.generic)}); "
                                   "adapt must work on a copy")
            if verdict.state:
                raise RuntimeError(f"method {job.method!r} modified its prepared state ({_names(verdict.state)}); "
                                   "adapt must treat it as read-only")
        if not isinstance(result, AdaptResult):
            raise TypeError(f"method {job.method!r}: adapt() returned {type(result).__name__}, expected harbench.AdaptResult")
        shared.results.setdefault(job.user, result)
        model = result.model.eval()
        _check_model(model, info, target.test_seen.x[:1], job.method)
        if reused is None:
            self._put_adapt(shared.key, result, generic)
        (pred_seen, prob_seen), (pred_unseen, prob_unseen), model_stats = shared.evaluate(job.user, result, target)
        outputs = JobOutputs(
            info=info,
            y_seen=target.test_seen.y, pred_seen=pred_seen,
            y_unseen=target.test_unseen.y if len(target.test_unseen) else torch.zeros(0, dtype=torch.long),
            pred_unseen=pred_unseen,
            generic_acc_seen=generic_acc, adapt=adapt_cost, facts=result.facts,
            inference=hw.run_inference(model, target.test_seen.x[:1]),
            model_stats=model_stats, prob_seen=prob_seen, prob_unseen=prob_unseen,
        )
        metrics = {}
        for name, metric in self.metrics.items():
            metrics[name] = finite_or_none(metric.compute(outputs))
        facts = dict(result.facts.extra)
        facts["_samples"] = {"latency_s": outputs.inference.latency_s}
        facts["_provenance"] = {"hardware": _info_dict(hw, hw_info), "energy_method": adapt_cost.energy_method,
                                "method_version": self.registry.get("method", job.method).version,
                                "adapt_extra": adapt_cost.extra, "inference_extra": outputs.inference.extra}
        facts.update({"optimizer_steps": result.facts.optimizer_steps, "forward_samples": result.facts.forward_samples,
                      "backward_samples": result.facts.backward_samples})
        return JobRecord(job, "ok", mode=hw_info.mode, metrics=metrics, facts=facts)


    def _weights(self, generic) -> bytes:
        """The generic model's weights as sent to the sandbox, serialised once per generic model."""
        cached = self._generic_bytes.get(id(generic))
        if cached is None or cached[0] is not generic:
            cached = self._generic_bytes[id(generic)] = (generic, weights_bytes(generic))
        return cached[1]

    def _device_view(self, adapt, method: Method, seed: int, user: str, info: DatasetInfo):
        """Labelled methods get the dataset's k windows per class; label-free ones the device's unlabelled stream."""
        if not method.label_free:
            return adapt
        return label_free_stream(adapt, seed, user, self.suite.model.label_free_windows,
                                 stride=int(info.extra.get("stride", info.window)))

    def _cached_adapt(self, key: str, generic) -> AdaptResult | None:
        cached = self.cache.get("adapt", key)
        if cached is None:
            return None
        model = copy.deepcopy(generic)
        try:
            model.load_state_dict(cached[0], strict=True)
            facts = AdaptFacts(**cached[1]["facts"])
        except (RuntimeError, TypeError, KeyError):  # written by another version of the harness: adapt again
            return None
        self.counters.adapt_cached += 1
        return AdaptResult(model, facts)

    def _put_adapt(self, key: str, result: AdaptResult, generic) -> None:
        """Cached only when the adapted model has the generic model's architecture, which the cache rebuilds it
        from (a method that returns another architecture, e.g. a distilled student, re-adapts instead)."""
        if self.cache.has("adapt", key) or type(result.model) is not type(generic):
            return
        theirs, ours = result.model.state_dict(), generic.state_dict()
        if theirs.keys() != ours.keys() or any(theirs[k].shape != ours[k].shape for k in ours):
            return
        self.cache.put("adapt", key, theirs, {"facts": dataclasses.asdict(result.facts)})


@dataclass
class _SharedAdapt:
    """A unit's adapt results and their evaluations by user, and the cache key of this job's adapt node."""

    results: dict[str, AdaptResult]
    evaluations: dict[str, tuple]
    key: str

    def evaluate(self, user: str, result: AdaptResult, target) -> tuple[tuple, tuple, dict]:
        """(predictions, class probabilities) of each test split and model statistics, computed once per adapted
        model however many targets report them."""
        done = self.evaluations.get(user)
        if done is not None and done[0] is result:
            return done[1]
        model, example = result.model, target.test_seen.x[:1]
        pred_seen = _checked_predictions(model, target.test_seen.x, "seen")
        unseen = _checked_predictions(model, target.test_unseen.x, "unseen")
        outputs = (pred_seen, unseen, _model_stats(model, example))
        if self.results.get(user) is result:
            self.evaluations[user] = (result, outputs)
        return outputs


class JobTimeout(Exception):
    pass


class _time_limit:
    """Raise :class:`JobTimeout` after ``seconds`` (an interval timer; main thread only). An infinite or absurdly
    long limit (over ~3 years, which the timer cannot hold) means none."""

    def __init__(self, seconds: float | None, what: str = "the job"):
        if seconds is not None and (not math.isfinite(seconds) or seconds > 1e8):
            seconds = None
        self.seconds = seconds if threading.current_thread() is threading.main_thread() else None
        self.what = what

    def _expired(self, signum, frame):
        f = frame
        while f is not None:  # never interrupt an import: a half-imported module breaks every later job
            if f.f_code.co_filename.startswith("<frozen importlib"):
                signal.setitimer(signal.ITIMER_REAL, 0.05)
                return
            f = f.f_back
        raise JobTimeout(f"{self.what} exceeded its time limit of {self.seconds:g} s (timeout_s)")

    def __enter__(self):
        if self.seconds:
            self.previous = signal.signal(signal.SIGALRM, self._expired)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.seconds:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)


class _StopOnInterrupt:
    """The first Ctrl-C lets the current job finish and stops the run; a second one aborts at once."""

    def __init__(self):
        self.requested = False

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self.active:
            signal.signal(signal.SIGINT, self.previous)


def _failed(job: JobSpec, exc: BaseException, stage: str) -> JobRecord:
    """A method's exception raised in the sandbox keeps its own type name and traceback."""
    if isinstance(exc, AdaptFailed):
        if exc.type_name == "MemoryError":
            return JobRecord(job, "failed", error=f"{stage}: MemoryError: the job exhausted memory",
                             traceback=exc.remote_traceback)
        return JobRecord(job, "failed", error=f"{stage}: {exc.type_name}: {exc}", traceback=exc.remote_traceback)
    return JobRecord(job, "failed", error=f"{stage}: {type(exc).__name__}: {exc}",
                     traceback="".join(traceback.format_exception(exc)))


def _names(keys: list[str], most: int = 4) -> str:
    shown = ", ".join(keys[:most])
    return shown + (f" and {len(keys) - most} more" if len(keys) > most else "")


def _info_dict(hw, i) -> dict[str, Any]:
    return {"name": i.name, "processor": i.processor, "memory_gb": i.memory_gb, "mode": i.mode,
            "power": dict(i.power), "extra": dict(i.extra), "params": dict(hw.params)}


def _checked_predictions(model: torch.nn.Module, x: torch.Tensor, split: str,
                         batch: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Class predictions and probabilities (softmax of the logits, (N, C)) on a test split; logits that are not
    finite fail the job (argmax of NaN is class 0, which would pass as a poor but real accuracy)."""
    if not len(x):
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, 0)
    with torch.no_grad():
        logits = torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)])
    bad = int((~torch.isfinite(logits)).any(dim=1).sum())
    if bad:
        raise ValueError(f"the personalized model's outputs are not finite on {bad} of {len(x)} test windows "
                         f"({split} context)")
    return logits.argmax(dim=1), torch.softmax(logits.to(torch.float64), dim=1)


def _check_model(model: torch.nn.Module, info: DatasetInfo, example: torch.Tensor, method: str) -> None:
    for name, p in model.state_dict().items():
        if p.is_floating_point() and not torch.isfinite(p).all():
            raise ValueError(f"method {method!r} returned a model with non-finite weights in {name!r}")
    with torch.no_grad():
        out = model.eval()(example)
    if tuple(out.shape) != (1, info.num_classes):
        raise ValueError(f"method {method!r} returned a model whose output shape is {tuple(out.shape)}, "
                         f"expected (1, {info.num_classes})")


def _model_stats(model: torch.nn.Module, example: torch.Tensor) -> dict[str, float]:
    kb = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 1024
    try:
        flops = flops_per_window(model, example)
    except Exception:
        flops = math.nan
    return {"params": count_params(model), "model_kb": kb, "flops": flops}
