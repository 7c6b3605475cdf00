"""Ray's local instance: every listening socket on loopback while a run is in flight, the pids it recorded, and
what the next start does with the processes a killed driver left behind."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harbench.results.store import Store
from harbench.run.ray import (
    PIDS_FILE,
    WORKER_CACHE_ENV,
    _descendants,
    _mark,
    _reads,
    _started,
    blind_line,
    clean_leftovers,
    worker_cache,
)
from harbench.suite import parse_suite

from .conftest import tiny_suite


def _family(pid: int) -> set[int]:
    """This process and every process below it (Ray's GCS, raylet, agents and workers are)."""
    return set(_descendants([pid]))


def _listening(pids: set[int]) -> list[tuple[str, int, int]]:
    """(address, port, pid) of every TCP socket these processes listen on: psutil, else /proc/net/tcp{,6}."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        return [(c.laddr.ip, c.laddr.port, c.pid) for c in psutil.net_connections("tcp")
                if c.status == psutil.CONN_LISTEN and c.pid in pids]
    inodes: dict[str, tuple[str, int]] = {}
    for name, width in (("tcp", 4), ("tcp6", 16)):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            hexaddr, hexport = fields[1].split(":")
            raw = bytes.fromhex(hexaddr)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, width, 4))  # /proc prints 32-bit words host-endian
            inodes[fields[9]] = (str(ipaddress.ip_address(raw)), int(hexport, 16))
    found = []
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                found.append((*inodes[target[8:-1]], pid))
    return found


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="lists sockets through Linux's /proc")
def test_a_local_ray_instance_listens_on_loopback_only(registry, tmp_path):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("another test left Ray running")
    from harbench.run import Runner

    suite = parse_suite(tiny_suite(methods="[generic]"), "tiny.yaml", registry)
    runner = Runner(suite, registry, Store(tmp_path / "r"), workers=1, executor="ray")
    out: dict = {}
    thread = threading.Thread(target=lambda: out.setdefault("summary", runner.run()))
    thread.start()
    seen: dict[tuple[str, int], int] = {}
    recorded = False
    while thread.is_alive():  # the run is in flight: Ray's processes are this process's descendants
        seen.update({(a, port): pid for a, port, pid in _listening(_family(os.getpid()))})
        recorded = recorded or (tmp_path / "r" / PIDS_FILE).exists()
        time.sleep(0.2)
    thread.join()
    assert out["summary"].ok == 2 and out["summary"].failed == 0
    assert len({pid for pid in seen.values()}) >= 3, f"too few listening Ray processes were seen: {seen}"
    exposed = {f"{a}:{port}": pid for (a, port), pid in seen.items() if not _loopback(a)}
    assert not exposed, f"listening beyond loopback: {exposed}"
    assert recorded  # while it ran, the instance's pids were in the results folder ...
    assert not (tmp_path / "r" / PIDS_FILE).exists()  # ... and a clean stop removes the record
    assert "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in os.environ  # the driver's environment is restored


def _record(folder: Path, driver: int, driver_started: int | None, processes: list[tuple[int, int | None]]) -> None:
    (folder / PIDS_FILE).write_text(json.dumps({"driver": {"pid": driver, "started": driver_started},
                                                "processes": [{"pid": p, "started": s} for p, s in processes]}))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads process start times from /proc")
def test_the_next_start_stops_what_a_dead_driver_left_and_nothing_else(tmp_path):
    dead = subprocess.Popen(["sleep", "0"])
    dead_started = _started(dead.pid)
    dead.wait()  # a driver that was killed: its pid no longer runs with that start time
    left = subprocess.Popen(["sleep", "60"])  # a Ray process it left behind
    reused = subprocess.Popen(["sleep", "60"])  # a process whose pid was recorded with another start time
    try:
        _record(tmp_path, dead.pid, dead_started, [(left.pid, _started(left.pid)), (reused.pid, 12345)])
        assert clean_leftovers(tmp_path) == [left.pid]
        assert left.wait(timeout=10) == -9
        assert reused.poll() is None  # not the process that was recorded: left alone
        assert not (tmp_path / PIDS_FILE).exists()

        # a driver that is still running (this test): its instance is not touched
        _record(tmp_path, os.getpid(), _started(os.getpid()), [(reused.pid, _started(reused.pid))])
        assert clean_leftovers(tmp_path) == []
        assert reused.poll() is None and (tmp_path / PIDS_FILE).exists()
    finally:
        for p in (left, reused):
            p.kill()
            p.wait()


def test_workers_whose_cache_is_not_the_drivers_are_named_in_one_line(tmp_path, monkeypatch):
    """The start-up check: an actor's cache (HARBENCH_WORKER_CACHE on its host, else the driver's path) holds
    the driver's token file only where it is the driver's folder; those that do not are named, in one line."""
    from harbench.run.nodes import WorkerSpec

    cache = tmp_path / "results" / "cache"
    marker = _mark(cache, "t0k3n")
    spec = WorkerSpec("", "", str(tmp_path / "results"), 2, 1, "harbench")
    monkeypatch.delenv(WORKER_CACHE_ENV, raising=False)
    assert _reads(worker_cache(spec), "t0k3n")  # the same disk: the driver's own folder
    monkeypatch.setenv(WORKER_CACHE_ENV, str(tmp_path / "elsewhere"))
    assert not _reads(worker_cache(spec), "t0k3n")  # another host's cache folder
    assert blind_line([("head (Ray node a)", True), ("head (Ray node a)", True)], cache) is None
    line = blind_line([("head (Ray node a)", True), ("node-b (Ray node b)", False), ("node-b (Ray node b)", False)],
                      cache)
    assert line is not None and "\n" not in line and line.count("node-b") == 1
    assert "head" not in line.split("do not see")[0]
    marker.unlink()
    assert not list(cache.glob(".ray-share-*"))


def test_cache_entries_travel_as_files_under_checked_names(tmp_path):
    """What an actor returns and the driver writes: whole entries by name; a name that is not a weights
    entry's (a path, another kind) is refused, so nothing from a worker lands outside the cache's files."""
    from harbench.run.cache import WeightCache

    a, b = WeightCache(tmp_path / "a"), WeightCache(tmp_path / "b")
    torch = pytest.importorskip("torch")
    a.written = []
    a.put("prepare", "0123abcd", {"w": torch.arange(6.0).reshape(2, 3)}, {"note": "x"})
    assert a.written == ["prepare-0123abcd.safetensors"]
    b.write_entry(a.written[0], a.read_entry(a.written[0]))
    got = b.get("prepare", "0123abcd")
    assert got is not None and torch.equal(got[0]["w"], torch.arange(6.0).reshape(2, 3)) and got[1] == {"note": "x"}
    assert b.read_entry("generic-ffff.safetensors") is None
    for bad in ("../x-00.safetensors", "job-00.json", "prepare-00.safetensors/../../x", "generic-zz.safetensors"):
        with pytest.raises(ValueError):
            b.write_entry(bad, b"")
