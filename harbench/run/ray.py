"""The same node graph on a Ray cluster (a local instance when no address is given).

Each actor is one worker process built from the run's :class:`~harbench.run.nodes.WorkerSpec`; Ray's
``ActorPool`` hands each ready node to whichever actor is idle, a lost actor is restarted and its task retried.
Records and counters stream back to the driver, which alone writes the store.

A local instance started here binds every component (GCS, raylet, object manager, runtime-env and metrics agents,
the workers and this driver's own core worker) to 127.0.0.1, runs without the dashboard and without usage stats,
and records its processes' PIDs in the results folder, so the next start cleans up what a killed driver left.
Against a cluster, each actor checks whether its host's node cache (``HARBENCH_WORKER_CACHE`` there, else the
driver's path) is the driver's cache folder: a token file the driver wrote there. Where it is not (no shared
disk), the run says so in one line, and node results travel through Ray's object store instead: the driver's
cache stays the source of truth — an actor on such a host returns the entries it computed (generic model,
prepare, adapted models) and the driver writes them into its cache; every later task carries references to the
entries it needs, which an actor whose cache lacks them fetches and writes into its own cache before it runs.
So each shared node runs once across the cluster. The store, the job cache and the plan stay on the driver.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from ..plugins import Registry
from ..suite import Suite
from .cache import WeightCache
from .keys import NodeKeys
from .local import Graph, Result, current_worker, init_worker, run_task
from .nodes import WorkerSpec
from .plan import Unit

PIDS_FILE = ".ray-pids.json"  # in the results folder: the processes of the local instance a driver started
# Ray's loopback-only mode (its default on macOS/Windows): the node's address is 127.0.0.1 and every server binds it
WORKER_CACHE_ENV = "HARBENCH_WORKER_CACHE"  # on a worker's host: where that host's own node cache is
_LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def run_ray(spec: WorkerSpec, suite: Suite, registry: Registry, units: list[Unit], stop,
            note: Callable[[str], None], ray_address: str | None = None) -> Iterator[Result]:
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise ValueError("executor 'ray' needs the ray extra: pip install 'harbench[ray]'") from None

    @ray.remote(max_restarts=2, max_task_retries=2)
    class Worker:
        def __init__(self, spec, token):
            self.cache = worker_cache(spec)
            self.shared = _reads(self.cache, token)  # this host sees the driver's cache folder
            # the driver's path: as a local pool's worker (its host lock in the results folder); else this host's
            init_worker(spec, None if self.cache == Path(spec.results) / "cache" else str(self.cache))

        def task(self, kind, args, needs):
            return remote_task(kind, args, needs, self.shared, ray.get)

        def where(self) -> tuple[str, bool]:
            return f"{socket.gethostname()} (Ray node {ray.get_runtime_context().get_node_id()[:12]})", self.shared

    results = Path(spec.results)
    started_here = not ray.is_initialized()
    with _loopback() if started_here and not ray_address else _nothing():
        if started_here:
            if ray_address:  # a cluster keeps its own (token) authentication
                ray.init(address=ray_address, include_dashboard=False, log_to_driver=False, configure_logging=False)
            else:
                clean_leftovers(results)
                # address="local": a new instance of our own, never the latest `ray start` cluster on this machine
                # (ray.init's default), which another run or a test may have started
                ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False,
                         num_cpus=os.cpu_count(), configure_logging=False)
                record_processes(results)
        cache = WeightCache(results / "cache")
        token = uuid.uuid4().hex
        # the token stays while the run does: a restarted actor checks it again and, on a host without the disk,
        # returns its entries (it receives references only where some actor was without it at start-up)
        marker = _mark(cache.folder, token)
        try:
            # spread over the cluster's nodes (one per node first), so that every host's cores take part; each
            # actor reserves a CPU while it lives where the cluster has one for each (a node never runs more
            # actors than it has CPUs), else Ray's default (none held: every actor still starts)
            cpus = {"num_cpus": 1} if ray.cluster_resources().get("CPU", 0) >= spec.workers else {}
            actors = [Worker.options(scheduling_strategy="SPREAD", **cpus)  # type: ignore[attr-defined]
                      .remote(spec, token) for _ in range(spec.workers)]
            seen = ray.get([a.where.remote() for a in actors])
            line = blind_line(seen, cache.folder)
            if line:
                print(f"note: {line}", file=sys.stderr)
            ship = Shipping(ray, cache, NodeKeys(suite, registry, _no_targets), suite, registry) if line else None
            graph = Graph(suite, registry, units)
            pool = ActorPool(actors)
            while (graph.ready or pool.has_next()) and not stop.requested:
                while graph.ready and pool.has_free():
                    pool.submit(lambda actor, t: actor.task.remote(*t, ship.needs(*t) if ship else {}), graph.pop())
                try:
                    kind, args, records, counters, entries = pool.get_next_unordered(timeout=0.5)
                except TimeoutError:
                    continue
                for name, data in entries:  # computed on a host without the shared disk: the driver keeps it
                    if not (cache.folder / name).exists():
                        cache.write_entry(name, data)
                yield records, counters
                graph.finished(kind, args)
        finally:
            marker.unlink(missing_ok=True)
            if started_here:
                ray.shutdown()
                if not ray_address:
                    (results / PIDS_FILE).unlink(missing_ok=True)


# ------------------------------------------------------------- hosts without the results folder's disk


def _no_targets(job):
    raise AssertionError("shipping needs no job keys")  # generic, prepare and adapt keys only


def worker_cache(spec: WorkerSpec) -> Path:
    """This host's node cache: ``HARBENCH_WORKER_CACHE`` where set on the worker's host (its Ray node's
    environment), else the driver's path (the results folder's ``cache``), which is the driver's own cache only
    where the disk is shared; the start-up token says which."""
    return Path(os.environ.get(WORKER_CACHE_ENV) or Path(spec.results) / "cache")


def remote_task(kind: str, args: tuple, needs: dict[str, Any], shared: bool, get: Callable[[Any], bytes]):
    """One node on a Ray actor. Before it runs, the entries it needs (``needs``: entry name -> an ObjectRef the
    driver put in the object store) that this host's cache lacks are fetched and written there, so the worker
    reads a cache folder as everywhere else; after it, a host without the shared disk returns the entries it
    wrote (generic model, prepare, adapted models) for the driver's cache."""
    cache = current_worker().cache
    for name, ref in needs.items():
        if not (cache.folder / name).exists():
            cache.write_entry(name, get(ref))
    cache.written = None if shared else []
    try:
        kind, args, records, counters = run_task(kind, args)
        entries = [(name, data) for name in dict.fromkeys(cache.written or [])
                   if (data := cache.read_entry(name)) is not None]
    finally:
        cache.written = None
    return kind, args, records, counters, entries


class Shipping:
    """The driver's side: which cache entries a task needs (its own and its parents'), each put in Ray's object
    store once from the driver's cache, the source of truth, and handed to every task as a reference (an actor
    fetches it only when its host lacks the entry)."""

    def __init__(self, ray, cache: WeightCache, keys: NodeKeys, suite: Suite, registry: Registry):
        self.ray, self.cache, self.keys, self.suite, self.registry = ray, cache, keys, suite, registry
        self.refs: dict[str, Any] = {}  # generic models and prepares: shared by many tasks

    def _names(self, kind: str, args: tuple) -> list[str]:
        di, seed = args[0], args[1]
        if kind == "generic":
            return [WeightCache.entry_name("generic", self.keys.generic(di, seed, args[2]))]
        mi = args[2]
        backbone = self.registry.backbone(self.suite.methods[mi].name)
        names = [WeightCache.entry_name("generic", self.keys.generic(di, seed, backbone)),
                 WeightCache.entry_name("prepare", self.keys.prepare(di, seed, mi))]
        if kind == "unit":
            names += [WeightCache.entry_name("adapt", self.keys.adapt(di, seed, mi, user))
                      for user in dict.fromkeys(j.user for j in args[3])]
        return names

    def needs(self, kind: str, args: tuple) -> dict[str, Any]:
        try:
            names = self._names(kind, args)
        except Exception:  # noqa: BLE001 -- a dataset that cannot describe itself: the task records why
            return {}
        out = {}
        for name in names:
            ref = self.refs.get(name)
            if ref is None:
                data = self.cache.read_entry(name)
                if data is None:
                    continue  # not computed (yet, or it failed): the task computes or records it
                ref = self.ray.put(data)
                if not name.startswith("adapt-"):  # an adapted model serves one unit: not kept
                    self.refs[name] = ref
            out[name] = ref
        return out


# ------------------------------------------------------------------------------------ loopback only


@contextmanager
def _loopback() -> Iterator[None]:
    """Ray's environment for a loopback-only instance, for as long as it runs (the processes it starts inherit
    it); a Ray imported before this still reads its constant at call time, so that is set too."""
    saved = {k: os.environ.get(k) for k in _LOOPBACK_ENV}
    os.environ.update(_LOOPBACK_ENV)
    from ray._private import ray_constants

    was = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = was
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _nothing() -> Iterator[None]:
    yield


# ------------------------------------------------------------------------- what a killed driver left


def _started(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22): a PID with another start
    time is another process that reused the number."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _children(pid: int) -> list[int]:
    """Children of every thread of ``pid`` (Linux lists a child under the thread that started it)."""
    out: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []
    for task in tasks:
        try:
            out.extend(int(p) for p in (task / "children").read_text().split())
        except OSError:
            pass
    return out


def _descendants(pids: list[int]) -> list[int]:
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(c for c in _children(pid) if c not in out)
    return out


def record_processes(results: Path) -> None:
    """Write the local instance's processes (and the driver's own PID) to ``results/.ray-pids.json``."""
    import ray

    node = ray._private.worker._global_node
    pids = [p.process.pid for infos in getattr(node, "all_processes", {}).values() for p in infos
            if getattr(p, "process", None) is not None]
    entries = [{"pid": pid, "started": _started(pid)} for pid in _descendants(pids)]
    results.mkdir(parents=True, exist_ok=True)
    tmp = results / f"{PIDS_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"driver": {"pid": os.getpid(), "started": _started(os.getpid())},
                               "processes": entries}))
    tmp.replace(results / PIDS_FILE)


def clean_leftovers(results: Path) -> list[int]:
    """Stop the Ray processes a dead driver left behind (only those it recorded, only while they are the same
    processes: same PID and start time), and forget the record. A live driver's instance is left alone."""
    path = results / PIDS_FILE
    try:
        record: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return []
    driver = record.get("driver", {})
    if driver.get("pid") and _started(int(driver["pid"])) == driver.get("started"):
        return []  # that driver is still running
    recorded = [(int(e["pid"]), e.get("started")) for e in record.get("processes", [])]
    alive = [pid for pid, started in recorded if started is not None and _started(pid) == started]
    victims = [p for p in _descendants(alive) if _started(p) is not None]  # workers they started since
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    path.unlink(missing_ok=True)
    return victims


# -------------------------------------------------------------------------------- a shared cache?


def _mark(cache: Path, token: str) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    marker = cache / f".ray-share-{token}"
    marker.write_text(token)
    return marker


def _reads(path: Path, token: str) -> bool:
    try:
        return (path / f".ray-share-{token}").read_text() == token
    except OSError:
        return False


def blind_line(seen: list[tuple[str, bool]], cache: Path) -> str | None:
    """One line naming the workers (host and Ray node) whose cache is not the driver's folder, or None."""
    blind = sorted({where for where, shared in seen if not shared})
    if not blind:
        return None
    return (f"Ray workers on {', '.join(blind)} do not see the results folder's cache {cache} (no shared disk): "
            "generic models, prepares and adapted models computed there come back to this cache and reach "
            "them through Ray's object store (each node still runs once)")
