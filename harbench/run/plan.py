"""The plan of a suite: its jobs (the grid), their units of work, the run's identity, and ``--dry-run`` counts.

Everything here is linear in the grid and runs nothing: no data is loaded, no model trained, no job executed, so
``--dry-run`` and the driver share it without building a runner.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from ..hashing import content_hash
from ..plugins import Registry
from ..records import JobSpec
from ..suite import Suite
from .cache import WeightCache
from .keys import NodeKeys
from .targets import Targets

Unit = tuple[int, int, int, list[JobSpec]]  # (dataset index, seed, method index, the jobs of one user)


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a plan's objects are built: they form no cycles, and its
    collections, which grow with the number of live objects, made planning superlinear (2.3x the time at 10^5
    jobs, measured). Reference counting still frees everything; the collector resumes as it was."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def plan_jobs(suite: Suite) -> list[JobSpec]:
    jobs = []
    with _no_gc():
        for di, d in enumerate(suite.datasets):
            for seed in suite.model.seeds:
                for m in suite.methods:
                    for user in suite.targets[di]:
                        for h in suite.hardware:
                            jobs.append(JobSpec(d.name, d.params, m.name, m.params, m.variant, h.name, h.params,
                                                seed, user))
    return jobs


def suite_hash(suite: Suite) -> str:
    """The run's identity for ``--resume``: what the suite asks for, not how its file is written."""
    return content_hash([suite.name, [r.__dict__ for r in suite.datasets], [r.__dict__ for r in suite.methods],
                         [r.__dict__ for r in suite.hardware], suite.model.seeds, suite.targets,
                         suite.model.generic.model_dump()])


def units(suite: Suite, todo: list[JobSpec]) -> list[Unit]:
    """Independent units of work: one method configuration's jobs for one user of a (dataset, seed).

    One pass over the jobs (grid order kept): a job's dataset and method entries are found by the identity of
    the resolved parameter objects the plan put in it, so grouping is linear in the grid."""
    with _no_gc():
        return _units(suite, todo)


def _units(suite: Suite, todo: list[JobSpec]) -> list[Unit]:
    dataset_of = {id(d.params): di for di, d in enumerate(suite.datasets)}
    method_of = {id(m.params): mi for mi, m in enumerate(suite.methods)}
    groups: dict[tuple, list[JobSpec]] = {}
    for j in todo:
        di = dataset_of.get(id(j.dataset_params))
        mi = method_of.get(id(j.method_params))
        if di is None or mi is None:  # a spec built elsewhere: find its entries by value
            di = next(i for i, d in enumerate(suite.datasets) if d.name == j.dataset and d.params == j.dataset_params)
            mi = next(i for i, m in enumerate(suite.methods) if m.name == j.method and m.params == j.method_params)
        groups.setdefault((di, j.seed, mi, j.user), []).append(j)
    # grid order: the groups come in it when the jobs do (the plan's order); sort only when they do not
    seed_pos = {seed: n for n, seed in enumerate(suite.model.seeds)}
    user_pos = {di: {user: n for n, user in enumerate(users)} for di, users in suite.targets.items()}
    unknown = (len(suite.datasets),)  # a key outside the grid goes last, in the order it came

    def rank(key: tuple) -> tuple:
        di, seed, mi, user = key
        s, u = seed_pos.get(seed), user_pos.get(di, {}).get(user)
        return unknown if s is None or u is None else (di, s, mi, u)

    ranks = [rank(key) for key in groups]
    items = list(groups.items())
    if any(a > b for a, b in zip(ranks, ranks[1:])):
        items = [item for _, item in sorted(zip(ranks, items), key=lambda pair: pair[0])]
    return [(di, seed, mi, jobs) for (di, seed, mi, user), jobs in items]


def job_cached(cache: WeightCache, key: str, remeasured: bool, listing: set[str] | None = None) -> bool:
    """Whether a job's outputs are served from the cache; ``remeasured``: a measured target under --remeasure;
    ``listing``: the cache folder's names read once (:meth:`WeightCache.listing`) instead of one ``stat``."""
    if remeasured:
        return False
    if listing is None:
        return cache.has_json("job", key)
    return WeightCache.entry_name("job", key, json=True) in listing


@dataclass
class PlanCounts:
    nodes: dict[str, int]
    cached: dict[str, int]


def plan_counts(suite: Suite, registry: Registry, cache: WeightCache, remeasure: bool = False) -> PlanCounts:
    """How many nodes of each kind a cold run executes, and how many this run takes from the cache (--dry-run).

    A generic model or prepare counts as cached when its entry exists or when no job below it needs to run.
    Each measured target adapts for itself (it measures the adapt phase); estimated targets share one adapt.
    The cache folder is listed once; a target's mode is looked up once per target (the plan shares one
    parameters object per target), so a job costs its key's hash and a set look-up.
    """
    with _no_gc():
        return _plan_counts(suite, registry, cache, remeasure)


def _plan_counts(suite: Suite, registry: Registry, cache: WeightCache, remeasure: bool) -> PlanCounts:
    targets = Targets(suite, registry)
    keys = NodeKeys(suite, registry, targets.info)
    listing = cache.listing()
    modes: dict[tuple[str, int], tuple[Any, bool]] = {}

    def measured(j: JobSpec) -> bool:
        memo = modes.get((j.hardware, id(j.hardware_params)))
        if memo is None or memo[0] is not j.hardware_params:
            memo = modes[(j.hardware, id(j.hardware_params))] = (j.hardware_params, targets.measured(j))
        return memo[1]

    nodes = {"generic": 0, "prepare": 0, "adapt": 0, "job": 0}
    cached = dict.fromkeys(nodes, 0)
    needed_generic: dict[str, bool] = {}
    needed_prepare: dict[str, bool] = {}
    for di, seed, mi, jobs in units(suite, plan_jobs(suite)):
        backbone = registry.backbone(suite.methods[mi].name)
        gkey, pkey = keys.generic(di, seed, backbone), keys.prepare(di, seed, mi)
        n_measured = todo = to_adapt = 0
        for j in jobs:
            is_measured = measured(j)
            n_measured += is_measured
            if not job_cached(cache, keys.job(di, seed, mi, j), remeasure and is_measured, listing):
                todo += 1
                to_adapt += is_measured
        if todo and not to_adapt and WeightCache.entry_name("adapt", keys.adapt(di, seed, mi, jobs[0].user)) \
                not in listing:
            to_adapt = 1  # the estimated targets' shared adapt
        total_adapt = max(1, n_measured)
        nodes["job"] += len(jobs)
        cached["job"] += len(jobs) - todo
        nodes["adapt"] += total_adapt
        cached["adapt"] += total_adapt - to_adapt
        needed_generic[gkey] = needed_generic.get(gkey, False) or bool(todo)
        needed_prepare[pkey] = needed_prepare.get(pkey, False) or bool(todo)
    for kind, needed in (("generic", needed_generic), ("prepare", needed_prepare)):
        nodes[kind] = len(needed)
        cached[kind] = sum(WeightCache.entry_name(kind, key) in listing or not need for key, need in needed.items())
    return PlanCounts(nodes, cached)
