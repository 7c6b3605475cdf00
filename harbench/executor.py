"""Local parallel execution: the run's plan as a graph of nodes in a process pool.

A generic model's node is submitted first; when it finishes, the ``prepare`` nodes that need it; when a prepare
finishes, the per-user units that need it. Shared nodes only fill the on-disk cache, so every node runs exactly
once however many workers need its result, and no worker idles at a wave barrier while one slow node (a teacher
network's training, say) finishes. Workers never touch the store: they return records, and the driver commits
them as they arrive. Each worker uses its share of the cores for torch, and host measurements hold the host lock
exclusively (see hostlock.py).
"""

from __future__ import annotations

import heapq
import itertools
import multiprocessing
import os
import signal
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import fields
from typing import Any, Iterator

import torch

from .records import JobRecord

_runner = None  # this worker process's Runner

Task = tuple[str, tuple]  # ("generic", (di, seed, backbone)) | ("prepare", (di, seed, mi)) | ("unit", (di, seed, mi, jobs))


def _init_worker(suite_text: str, source: str, results: str, workers: int, threads: int, plugins: str) -> None:
    global _runner
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when to stop
    from .sandbox import die_with_parent

    die_with_parent()  # a killed driver leaves no worker behind to finish its task and write the cache
    os.environ["HARBENCH_LOAD_PLUGINS"] = plugins  # exactly the distributions the driver loaded
    torch.set_num_threads(threads)
    from .plugins import get_registry
    from .runner import Runner
    from .store import Store
    from .suite import parse_suite

    registry = get_registry()
    _runner = Runner(parse_suite(suite_text, source, registry), registry, Store(results), workers=workers)


def _task(kind: str, args: tuple) -> tuple[str, tuple, list[JobRecord], Any]:
    """Run one node in this worker; a shared node's failure is left for the units that need it to record."""
    from .runner import Counters

    records: list[JobRecord] = []
    if kind == "unit":
        records = list(_runner.run_unit(*args))
    else:
        try:
            _runner.generic(*args) if kind == "generic" else _runner.prepared(*args)
        except Exception:
            pass
    counters, _runner.counters = _runner.counters, Counters()
    return kind, args, records, counters


def _merge(total, part) -> None:
    for f in fields(total):
        if f.name == "timings":
            for k, v in part.timings.items():
                total.timings[k] = total.timings.get(k, 0.0) + v
        else:
            setattr(total, f.name, getattr(total, f.name) + getattr(part, f.name))


class _Graph:
    """Which nodes become ready when a node finishes: generic -> its prepares -> their units.

    Ready nodes wait in the driver, not in the pool's queue, and the next free worker takes the highest-ranked one:
    shared nodes before units, since they unlock more work and some (a teacher network's training) are long; with a
    FIFO queue a long ``prepare`` that became ready late would run alone at the end while the other workers idle.
    """

    def __init__(self, runner, units):
        self.prepares: dict[tuple, list[Task]] = defaultdict(list)
        self.units: dict[tuple, list[Task]] = defaultdict(list)
        for di, seed, mi, jobs in units:
            backbone = runner.registry.get("method", runner.suite.methods[mi].name).cls.backbone
            if (di, seed, mi) not in self.units:
                self.prepares[(di, seed, backbone)].append(("prepare", (di, seed, mi)))
            self.units[(di, seed, mi)].append(("unit", (di, seed, mi, jobs)))

        self.ready: list[tuple[int, int, Task]] = []
        self._seq = itertools.count()
        for key in self.prepares:
            self._push(("generic", key))

    def _push(self, task: Task) -> None:
        heapq.heappush(self.ready, (_RANK[task[0]], next(self._seq), task))

    def pop(self) -> Task:
        return heapq.heappop(self.ready)[2]

    def finished(self, kind: str, args: tuple) -> None:
        for task in self.prepares[args] if kind == "generic" else self.units[args] if kind == "prepare" else []:
            self._push(task)


_RANK = {"generic": 0, "prepare": 1, "unit": 2}


def _describe_node(runner, kind: str, args: tuple) -> str:
    if kind == "generic":
        di, seed, backbone = args
        return f"a worker trains (or loads) the generic {backbone} model on {runner.suite.datasets[di].name} (seed {seed})"
    di, seed, mi = args
    m = runner.suite.methods[mi]
    return f"a worker prepares (or loads) {m.name}{f'[{m.variant}]' if m.variant else ''} (seed {seed})"


def _init_args(runner) -> tuple:
    threads = runner.threads  # the suite's, not the worker count's share: numerics never depend on scheduling
    plugins = ",".join(sorted(runner.registry.versions()))
    return (runner.suite.text, runner.suite.source, str(runner.store.folder.resolve()), runner.workers, threads, plugins)


def run_parallel(runner, units, stop) -> Iterator[JobRecord]:
    if runner.executor == "ray":
        yield from run_ray(runner, units, stop)
        return
    graph = _Graph(runner, units)
    ctx = multiprocessing.get_context("spawn")  # fork after torch has started threads can deadlock
    with ProcessPoolExecutor(max_workers=runner.workers, mp_context=ctx, initializer=_init_worker,
                             initargs=_init_args(runner)) as pool:
        pending: set[Future] = set()
        while graph.ready or pending:
            while graph.ready and len(pending) < runner.workers and not stop.requested:
                kind, args = graph.pop()
                if kind != "unit":
                    runner.note(_describe_node(runner, kind, args))
                pending.add(pool.submit(_task, kind, args))
            if not pending:
                break
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                kind, args, records, counters = future.result()
                _merge(runner.counters, counters)
                yield from records
                graph.finished(kind, args)


def run_ray(runner, units, stop) -> Iterator[JobRecord]:
    """The same graph on a Ray cluster (a local instance when no address is given).

    Each actor is one worker process with its own Runner; Ray's ``ActorPool`` hands each ready node to whichever
    actor is idle, a lost actor is restarted and its task retried. Records stream back to the driver, which alone
    writes the store.
    """
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise ValueError("executor 'ray' needs the ray extra: pip install 'harbench[ray]'") from None

    @ray.remote(max_restarts=2, max_task_retries=2)
    class Worker:
        def __init__(self, *init):
            _init_worker(*init)

        def task(self, kind, args):
            return _task(kind, args)

    started_here = not ray.is_initialized()
    if started_here:
        # local instances listen on loopback only; a cluster keeps its own (token) authentication
        ray.init(address=runner.ray_address, include_dashboard=False, log_to_driver=False,
                 num_cpus=None if runner.ray_address else os.cpu_count(), configure_logging=False)
    try:
        graph = _Graph(runner, units)
        pool = ActorPool([Worker.remote(*_init_args(runner)) for _ in range(runner.workers)])
        while (graph.ready or pool.has_next()) and not stop.requested:
            while graph.ready and pool.has_free():
                pool.submit(lambda actor, t: actor.task.remote(*t), graph.pop())
            try:
                kind, args, records, counters = pool.get_next_unordered(timeout=0.5)
            except TimeoutError:
                continue
            _merge(runner.counters, counters)
            yield from records
            graph.finished(kind, args)
    finally:
        if started_here:
            ray.shutdown()
