"""The same node graph on a Ray cluster (a local instance when no address is given).

Each actor is one worker process built from the run's :class:`~harbench.run.nodes.WorkerSpec`; Ray's
``ActorPool`` hands each ready node to whichever actor is idle, a lost actor is restarted and its task retried.
Records and counters stream back to the driver, which alone writes the store.

A local instance started here binds every component (GCS, raylet, object manager, runtime-env and metrics agents,
the workers and this driver's own core worker) to 127.0.0.1, runs without the dashboard and without usage stats,
and records its processes' PIDs in the results folder, so the next start cleans up what a killed driver left.
Against a cluster, the workers must see the driver's results folder (its node cache): each actor looks for a
token file the driver wrote there and the run says in one line when some do not.
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
from .local import Graph, Result, init_worker, run_task
from .nodes import WorkerSpec
from .plan import Unit

PIDS_FILE = ".ray-pids.json"  # in the results folder: the processes of the local instance a driver started
# Ray's loopback-only mode (its default on macOS/Windows): the node's address is 127.0.0.1 and every server binds it
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
        def __init__(self, spec):
            init_worker(spec)

        def task(self, kind, args):
            return run_task(kind, args)

        def sees(self, path: str, token: str) -> tuple[str, bool]:
            return socket.gethostname(), _reads(Path(path), token)

    results = Path(spec.results)
    started_here = not ray.is_initialized()
    with _loopback() if started_here and not ray_address else _nothing():
        if started_here:
            if ray_address:  # a cluster keeps its own (token) authentication
                ray.init(address=ray_address, include_dashboard=False, log_to_driver=False, configure_logging=False)
            else:
                clean_leftovers(results)
                ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False,
                         num_cpus=os.cpu_count(), configure_logging=False)
                record_processes(results)
        try:
            actors = [Worker.remote(spec) for _ in range(spec.workers)]  # type: ignore[attr-defined]
            blind = shared_cache_check(ray, actors, results / "cache")
            if blind:
                print(f"warning: {blind}", file=sys.stderr)
            graph = Graph(suite, registry, units)
            pool = ActorPool(actors)
            while (graph.ready or pool.has_next()) and not stop.requested:
                while graph.ready and pool.has_free():
                    pool.submit(lambda actor, t: actor.task.remote(*t), graph.pop())
                try:
                    kind, args, records, counters = pool.get_next_unordered(timeout=0.5)
                except TimeoutError:
                    continue
                yield records, counters
                graph.finished(kind, args)
        finally:
            if started_here:
                ray.shutdown()
                if not ray_address:
                    (results / PIDS_FILE).unlink(missing_ok=True)


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


def _reads(path: Path, token: str) -> bool:
    try:
        return (path / f".ray-share-{token}").read_text() == token
    except OSError:
        return False


def shared_cache_check(ray, actors: list, cache: Path) -> str | None:
    """Whether every actor sees the driver's cache folder (one token file written here, read there); a line
    saying which hosts do not, or None. Workers that cannot see it recompute shared nodes on their host."""
    token = uuid.uuid4().hex
    cache.mkdir(parents=True, exist_ok=True)
    marker = cache / f".ray-share-{token}"
    marker.write_text(token)
    try:
        seen = ray.get([a.sees.remote(str(cache.resolve()), token) for a in actors])
    finally:
        marker.unlink(missing_ok=True)
    blind = sorted({host for host, ok in seen if not ok})
    if not blind:
        return None
    return (f"Ray workers on {', '.join(blind)} do not see the results folder's cache {cache} (no shared disk): "
            "each of those hosts trains its own generic models and prepares (the same results, computed again); "
            "mount the results folder at the same path on every host to run each node once")
