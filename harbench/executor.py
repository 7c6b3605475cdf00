"""Local parallel execution: the run's plan as three waves of independent nodes in a process pool.

Wave 1 trains the generic models, wave 2 runs each method's ``prepare``, wave 3 runs the per-user units; waves 1
and 2 only fill the on-disk cache, so every node runs exactly once however many workers need its result.
Workers never touch the store: they return records, and the driver commits them as they arrive. Each worker
uses its share of the cores for torch, and host measurements hold the host lock exclusively (see hostlock.py).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import fields
from typing import Iterator

import torch

from .records import JobRecord

_runner = None  # this worker process's Runner


def _init_worker(suite_text: str, source: str, results: str, workers: int, threads: int, plugins: str) -> None:
    global _runner
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when to stop
    os.environ["HARBENCH_LOAD_PLUGINS"] = plugins  # exactly the distributions the driver loaded
    torch.set_num_threads(threads)
    from .plugins import get_registry
    from .runner import Runner
    from .store import Store
    from .suite import parse_suite

    registry = get_registry()
    _runner = Runner(parse_suite(suite_text, source, registry), registry, Store(results), workers=workers)


def _take_counters():
    from .runner import Counters

    counters, _runner.counters = _runner.counters, Counters()
    return counters


def _node(kind: str, *args):
    """A shared node; its failure is left for the units that need it to record."""
    try:
        _runner.generic(*args) if kind == "generic" else _runner.prepared(*args)
    except Exception:
        pass
    return _take_counters()


def _unit(di, seed, mi, jobs) -> tuple[list[JobRecord], object]:
    return list(_runner.run_unit(di, seed, mi, jobs)), _take_counters()


def _merge(total, part) -> None:
    for f in fields(total):
        if f.name == "timings":
            for k, v in part.timings.items():
                total.timings[k] = total.timings.get(k, 0.0) + v
        else:
            setattr(total, f.name, getattr(total, f.name) + getattr(part, f.name))


def _waves(runner, units):
    generics = {(di, seed, runner.suite.methods[mi].instance(runner.registry).backbone) for di, seed, mi, _ in units}
    return sorted(generics), sorted({(di, seed, mi) for di, seed, mi, _ in units})


def _init_args(runner) -> tuple:
    threads = max(1, (os.cpu_count() or 1) // runner.workers)
    plugins = ",".join(sorted(runner.registry.versions()))
    return (runner.suite.text, runner.suite.source, str(runner.store.folder.resolve()), runner.workers, threads, plugins)


def run_parallel(runner, units, stop) -> Iterator[JobRecord]:
    if runner.executor == "ray":
        yield from run_ray(runner, units, stop)
        return
    ctx = multiprocessing.get_context("spawn")  # fork after torch has started threads can deadlock
    with ProcessPoolExecutor(max_workers=runner.workers, mp_context=ctx, initializer=_init_worker,
                             initargs=_init_args(runner)) as pool:
        generics, prepares = _waves(runner, units)
        for kind, wave in (("generic", generics), ("prepare", prepares)):  # each wave completes before the next
            for future in [pool.submit(_node, kind, *args) for args in wave]:
                _merge(runner.counters, future.result())
            if stop.requested:
                return
        pending: set[Future] = {pool.submit(_unit, *u) for u in units}
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                records, counters = future.result()
                _merge(runner.counters, counters)
                yield from records
            if stop.requested:
                for future in pending:
                    future.cancel()
                pending = {f for f in pending if f.running()}
                stop.requested = True


def run_ray(runner, units, stop) -> Iterator[JobRecord]:
    """The same waves on a Ray cluster (a local instance when no address is given).

    Each actor is one worker process with its own Runner; a lost actor is restarted and its task retried. Records
    stream back to the driver, which alone writes the store.
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

        def node(self, kind, *args):
            return _node(kind, *args)

        def unit(self, *args):
            return _unit(*args)

    started_here = not ray.is_initialized()
    if started_here:
        # local instances listen on loopback only; a cluster keeps its own (token) authentication
        ray.init(address=runner.ray_address, include_dashboard=False, log_to_driver=False,
                 num_cpus=None if runner.ray_address else os.cpu_count(), configure_logging=False)
    try:
        # ActorPool hands each task to whichever actor is idle: units differ a lot in cost (a teacher training
        # vs a generic baseline), so a static round-robin leaves actors waiting on the slowest one
        pool = ActorPool([Worker.remote(*_init_args(runner)) for _ in range(runner.workers)])
        generics, prepares = _waves(runner, units)
        for kind, wave in (("generic", generics), ("prepare", prepares)):
            for counters in pool.map_unordered(lambda actor, args, kind=kind: actor.node.remote(kind, *args), wave):
                _merge(runner.counters, counters)
            if stop.requested:
                return
        for unit in units:
            pool.submit(lambda actor, u: actor.unit.remote(*u), unit)
        while pool.has_next() and not stop.requested:
            try:
                records, counters = pool.get_next_unordered(timeout=0.5)
            except TimeoutError:
                continue
            _merge(runner.counters, counters)
            yield from records
    finally:
        if started_here:
            ray.shutdown()
