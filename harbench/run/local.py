"""Local parallel execution: the run's plan as a graph of nodes in a process pool.

A generic model's node is submitted first; when it finishes, the ``prepare`` nodes that need it; when a prepare
finishes, the per-user units that need it. Shared nodes only fill the on-disk cache, so every node runs exactly
once however many workers need its result, and no worker idles at a wave barrier while one slow node (a teacher
network's training, say) finishes. Workers are built from a :class:`~harbench.run.nodes.WorkerSpec` and never
touch the store: they return records and counters, which this module yields to the driver as they arrive. Host
measurements hold the host lock exclusively (see hostlock.py).
"""

from __future__ import annotations

import heapq
import itertools
import multiprocessing
import os
import signal
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Callable, Iterator

from ..console import one_line_warnings
from ..plugins import Registry
from ..records import JobRecord
from ..sandbox import die_with_parent
from ..suite import Suite
from .nodes import Counters, Worker, WorkerSpec
from .plan import Unit

Task = tuple[str, tuple]  # ("generic", (di, seed, backbone)) | ("prepare", (di, seed, mi)) | ("unit", (di, seed, mi, jobs))
Result = tuple[list[JobRecord], Counters]

_worker: Worker | None = None  # this worker process's nodes


def init_worker(spec: WorkerSpec, cache_folder: str | None = None, parent: int | None = None) -> None:
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when to stop
    die_with_parent()  # a killed driver leaves no worker behind to finish its task and write the cache
    one_line_warnings()  # a dataset's warning reaches the terminal as the CLI shows it, not with a source line
    if parent is not None and os.getppid() != parent:  # it died while this process was starting (importing torch)
        os._exit(0)
    _worker = Worker.from_spec(spec, cache_folder)


def current_worker() -> Worker:
    assert _worker is not None, "init_worker() runs first"
    return _worker


def run_task(kind: str, args: tuple) -> tuple[str, tuple, list[JobRecord], Counters]:
    """Run one node in this worker; a shared node's failure is left for the units that need it to record."""
    assert _worker is not None, "init_worker() runs first"
    records: list[JobRecord] = []
    if kind == "unit":
        records = list(_worker.run_unit(*args))
    else:
        try:
            _worker.generic(*args) if kind == "generic" else _worker.prepared(*args)
        except Exception:
            pass
    return kind, args, records, _worker.take_counters()


_RANK = {"generic": 0, "prepare": 1, "unit": 2}


class Graph:
    """Which nodes become ready when a node finishes: generic -> its prepares -> their units.

    Ready nodes wait in the driver, not in the pool's queue, and the next free worker takes the highest-ranked one:
    shared nodes before units, since they unlock more work and some (a teacher network's training) are long; with a
    FIFO queue a long ``prepare`` that became ready late would run alone at the end while the other workers idle.
    """

    def __init__(self, suite: Suite, registry: Registry, units: list[Unit]):
        self.suite = suite
        self.prepares: dict[tuple, list[Task]] = defaultdict(list)
        self.units: dict[tuple, list[Task]] = defaultdict(list)
        for di, seed, mi, jobs in units:
            backbone = registry.backbone(suite.methods[mi].name)
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

    def describe(self, kind: str, args: tuple) -> str:
        if kind == "generic":
            di, seed, backbone = args
            return (f"a worker trains (or loads) the generic {backbone} model on {self.suite.datasets[di].name} "
                    f"(seed {seed})")
        di, seed, mi = args
        m = self.suite.methods[mi]
        return f"a worker prepares (or loads) {m.name}{f'[{m.variant}]' if m.variant else ''} (seed {seed})"


def run_pool(spec: WorkerSpec, suite: Suite, registry: Registry, units: list[Unit], stop,
             note: Callable[[str], None], ray_address: str | None = None) -> Iterator[Result]:
    graph = Graph(suite, registry, units)
    ctx = multiprocessing.get_context("spawn")  # fork after torch has started threads can deadlock
    with ProcessPoolExecutor(max_workers=spec.workers, mp_context=ctx, initializer=init_worker,
                             initargs=(spec, None, os.getpid())) as pool:
        pending: set[Future] = set()
        while graph.ready or pending:
            while graph.ready and len(pending) < spec.workers and not stop.requested:
                kind, args = graph.pop()
                if kind != "unit":
                    note(graph.describe(kind, args))
                pending.add(pool.submit(run_task, kind, args))
            if not pending:
                break
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                kind, args, records, counters = future.result()
                yield records, counters
                graph.finished(kind, args)
