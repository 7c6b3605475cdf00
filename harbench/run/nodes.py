"""The worker side of a run: the nodes (dataset splits, generic model, method prepare, one user's jobs) executed
in this process, from a small picklable :class:`WorkerSpec`.

A worker never sees the driver or the store: it reads and writes the cache (shared nodes run once however many
workers need them) and returns job records and :class:`Counters`; the driver alone commits records and calls the
run hooks. The same class runs a ``workers: 1`` suite in the driver's process.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..api import DatasetInfo, Method, MethodContext, MethodState, Splits, UserData
from ..models import build_backbone
from ..plugins import Registry, get_registry
from ..records import JobRecord, JobSpec
from ..sandbox import ModelSpec, PrepareRequest, Sandbox, weights_bytes
from ..suite import Resolved, Suite, parse_suite
from ..training import accuracy, fit, make_optimizer, predict
from .cache import WeightCache
from .evaluate import SharedAdapt, failed, names
from .hostlock import HostLock, no_lock
from .job import JobNode
from .keys import NodeKeys, generic_key, prepare_key
from .leakage import check_splits
from .limits import time_limit
from .targets import Targets

# stored with every job whatever `metrics:` lists: how its energy was obtained
PROVENANCE_METRICS = ("energy_method",)

CAPABILITIES: dict[str, Callable[[DatasetInfo, UserData | None], bool]] = {
    "labels": lambda info, user: True,
    "blocks": lambda info, user: True,  # every built-in backbone is block-structured
    "context-drift": lambda info, user: any(c.drift for c in info.contexts),
}


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

    def merge(self, part: "Counters") -> None:
        for f in dataclasses.fields(self):
            if f.name == "timings":
                for k, v in part.timings.items():
                    self.timings[k] = self.timings.get(k, 0.0) + v
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(part, f.name))


@dataclass(frozen=True)
class WorkerSpec:
    """All a worker process needs to rebuild the run's nodes: the suite's text, not the driver's objects."""

    suite_text: str
    source: str
    results: str  # the results folder: its cache/ and .locks/
    workers: int
    threads: int
    plugins: str  # the distributions the driver loaded, comma-separated


def protected_paths(suite: Suite, results: str | Path) -> list[str]:
    """What ``isolation: strict`` keeps a job's processes from reading: ``$HARBENCH_DATA``, every dataset's
    ``path`` (and ``manifest``'s folder) and the results folder (its cache holds other methods' models)."""
    out = [Path(results)]
    if os.environ.get("HARBENCH_DATA"):
        out.append(Path(os.environ["HARBENCH_DATA"]).expanduser())
    for d in suite.datasets:
        for key in ("path", "manifest"):
            value = d.params.get(key)
            if isinstance(value, str) and value:
                path = Path(value).expanduser()
                out.append(path.parent if key == "manifest" else path)
    return [str(p.resolve()) for p in out]


class Worker:
    def __init__(self, suite: Suite, registry: Registry, results: str | Path, *, workers: int = 1,
                 targets: Targets | None = None, cache: WeightCache | None = None,
                 note: Callable[[str], None] | None = None, locks: str | Path | None = None):
        self.suite = suite
        self.registry = registry
        self.cache = cache or WeightCache(Path(results) / "cache")
        self.targets = targets or Targets(suite, registry)
        self.keys = NodeKeys(suite, registry, self.targets.info)
        self.note = note or (lambda what: None)
        self.counters = Counters()
        names_ = list(suite.metrics) + [m for m in PROVENANCE_METRICS
                                        if m not in suite.metrics and m in registry.names("metric")]
        self.metrics = {m: registry.get("metric", m).cls() for m in names_}
        self.lock = HostLock(Path(locks or Path(results) / ".locks")).hold if workers > 1 else no_lock
        self.threads = suite.model.threads
        self.sandbox = Sandbox(registry, suite.model.isolation, self.targets, protected_paths(suite, results))
        self._splits: dict[tuple, Splits] = {}
        self._generics: dict[tuple, tuple] = {}
        self._states: dict[tuple, tuple[Method, MethodState]] = {}
        self.jobs = JobNode(suite, registry, self.cache, self.targets, self.metrics, self.sandbox)

    @classmethod
    def from_spec(cls, spec: WorkerSpec, cache_folder: str | None = None) -> "Worker":
        """In a fresh worker process: load exactly the driver's plugins and parse the suite again.

        ``cache_folder``: this host's own node cache when it is not the results folder's (a Ray worker on a host
        without the driver's disk); its host lock then lives in that folder's ``.locks`` too."""
        os.environ["HARBENCH_LOAD_PLUGINS"] = spec.plugins
        torch.set_num_threads(spec.threads)
        registry = get_registry()
        suite = parse_suite(spec.suite_text, spec.source, registry)
        if cache_folder is None:
            return cls(suite, registry, spec.results, workers=spec.workers)
        return cls(suite, registry, spec.results, workers=spec.workers, cache=WeightCache(cache_folder),
                   locks=Path(cache_folder) / ".locks")

    def take_counters(self) -> Counters:
        """What this worker did since the last call (the driver merges them)."""
        counters, self.counters = self.counters, Counters()
        return counters

    def close(self) -> None:
        self.sandbox.close()

    # ------------------------------------------------------------------------------------- shared work
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
            with self.lock(False), time_limit(self.suite.model.timeout_s, "training the generic model"):
                self._generics[key] = self._generic(self.suite.datasets[di], seed, splits, backbone)
        return self._generics[key]

    def prepared(self, di: int, seed: int, mi: int) -> tuple[Method, MethodState]:
        key = (di, seed, mi)
        if key not in self._states:
            m = self.suite.methods[mi]
            method: Method = m.instance(self.registry)
            generic, _, gkey = self.generic(di, seed, method.backbone)
            splits = self.splits(di, seed)
            with self.lock(False), time_limit(self.suite.model.timeout_s, f"prepare of method {m.name!r}"):
                self._states[key] = (method, self._prepare(m, method, generic, gkey, splits, seed))
        return self._states[key]

    def run_unit(self, di: int, seed: int, mi: int, jobs: list[JobSpec]):
        """Yield one record per job of a unit; a failure of shared work fails (or skips) all of them."""
        try:
            splits = self.splits(di, seed)
        except Exception as exc:
            yield from (failed(job, exc, stage="dataset") for job in jobs)
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
            yield from (failed(job, exc, stage="prepare") for job in jobs)
            return
        # measured targets first: they must run adapt themselves; estimated targets then reuse that result
        jobs = sorted(jobs, key=lambda j: (j.user, not self.targets.measured(j)))
        shared = SharedAdapt()
        try:
            for job in jobs:
                hw = self.targets.of(job)
                exclusive = hw.measures_host and self.targets.measured(job)
                shared.key = self.keys.adapt(di, seed, mi, job.user)
                with self.lock(exclusive):
                    rec = self.jobs.run(job, method, state, generic, generic_acc.get(job.user), splits, seed, shared,
                                        self.counters)
                yield rec
        finally:  # the last user's job process ends with its unit
            shared.close()

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
        if cached is None:
            with self.cache.computing("generic", key):  # another run on this cache may be training it right now
                cached = self.cache.get("generic", key)
                if cached is None:
                    self._train_generic(model, d, seed, splits, backbone)
                    self.cache.put("generic", key, model.state_dict(), {"backbone": backbone})
                    self.counters.generic_trained += 1
        if cached is not None:
            model.load_state_dict(cached[0])
            self.counters.generic_cached += 1
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
            p.grad = None
        acc = {u: accuracy(t.test_seen.y, predict(model, t.test_seen.x)) for u, t in splits.targets.items()}
        return model, acc, key

    def _train_generic(self, model, d: Resolved, seed: int, splits: Splits, backbone: str) -> None:
        recipe = self.suite.model.generic
        self.note(f"training the generic {backbone} model on {d.name} (seed {seed})")
        t0 = time.perf_counter()
        fit(model, splits.population, epochs=recipe.epochs, batch_size=recipe.batch_size,
            optimizer=make_optimizer(model.parameters(), "adam", recipe.lr),
            generator=torch.Generator().manual_seed(seed))
        self._timed("generic", time.perf_counter() - t0)
        bad = [n for n, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
        if bad:  # never cache it: every job below would fail, blaming its method
            raise ValueError(f"the generic {backbone} model trained on dataset {d.name!r} has non-finite weights "
                             f"({names(bad)}); check the suite's generic recipe (lr, epochs)")

    def _prepare(self, m: Resolved, method: Method, generic, gkey: str, splits: Splits, seed: int) -> MethodState:
        key = prepare_key(m, gkey, seed, self.registry)
        cached = self.cache.get("prepare", key)
        if cached is None:
            with self.cache.computing("prepare", key):  # computed once however many processes need it
                cached = self.cache.get("prepare", key)
                if cached is None:
                    return self._compute_prepare(key, m, method, generic, splits, seed)
        self.counters.prepare_cached += 1
        return MethodState(tensors=cached[0], meta=cached[1])

    def _compute_prepare(self, key: str, m: Resolved, method: Method, generic, splits: Splits,
                         seed: int) -> MethodState:
        info = splits.info
        ctx = MethodContext(seed=seed, info=info)
        self.note(f"prepare of {m.name}{f'[{m.variant}]' if m.variant else ''} (seed {seed})")
        t0 = time.perf_counter()
        request = PrepareRequest(m.name, dict(method.params),
                                 ModelSpec(method.backbone, info.channels, info.num_classes, weights_bytes(generic)),
                                 splits.population, ctx, seed, self.threads)
        state = self.sandbox.prepare(request)  # in a job process: its hooks and patches end with it
        self._timed("prepare", time.perf_counter() - t0)
        self.cache.put("prepare", key, state.tensors, state.meta)
        self.counters.prepared += 1
        return state

    def _timed(self, what: str, seconds: float) -> None:
        self.counters.compute_s += seconds
        self.counters.timings[what] = self.counters.timings.get(what, 0.0) + seconds
