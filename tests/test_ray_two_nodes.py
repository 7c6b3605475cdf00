"""Ray across hosts without a shared disk: a two-node cluster on this machine whose second node has its own cache
folder (``HARBENCH_WORKER_CACHE`` in that node's environment, as on a host that does not mount the results
folder). The start-up check names that node, node results travel through Ray's object store, each generic model
and prepare runs once across the cluster, and the rows equal a local run's."""

from __future__ import annotations

import os

import pytest

from harbench.plugins import Registry
from harbench.results.store import Store
from harbench.run.ray import WORKER_CACHE_ENV, _loopback
from harbench.suite import parse_suite

SUITE = """
name: two-nodes
datasets: [{name: synthetic-drift, params: {users: 4, windows: 8, sessions: 2, k: 3, unseen_windows: 3}}]
methods: [generic, {name: finetune-last, params: {epochs: 1}}]
hardware: [rpi4]
seeds: [0]
target_users: 2
generic: {epochs: 1}
"""


def _entries(folder) -> dict[str, str]:
    """Each weights entry's content digest (tensor names, dtypes, shapes and bytes; its metadata has timings)."""
    from safetensors import safe_open

    out = {}
    for path in folder.glob("*.safetensors"):
        with safe_open(str(path), framework="pt") as f:
            out[path.name] = (f.metadata() or {})["harbench_digest"]
    return out


def _rows(folder, run_id: int) -> list:
    return sorted((r["method"], r["hardware"], r["user"], r["seed"], r["acc_seen"], r["acc_unseen"])
                  for r in Store(folder).job_rows(run_id))


def test_a_node_without_the_shared_cache_gets_node_results_through_the_object_store(
        monkeypatch, tmp_path, capfd):
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    from harbench import plugins
    from harbench.run import Runner

    if ray.is_initialized():
        pytest.skip("another test left Ray running")
    registry = Registry()
    registry.load_entry_points(allowed=["harbench-raspberrypi"])  # rpi4: an estimated target
    if "rpi4" not in registry.names("hardware"):
        pytest.skip("harbench-raspberrypi is not installed")
    monkeypatch.setattr(plugins, "_registry", registry)
    suite = parse_suite(SUITE, "two-nodes.yaml", registry)

    local = Runner(suite, registry, Store(tmp_path / "local"), workers=1)
    expected = local.run()
    assert (expected.ok, expected.failed) == (4, 0)

    node_b_cache = tmp_path / "node-b-cache"
    with _loopback():
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        try:
            os.environ[WORKER_CACHE_ENV] = str(node_b_cache)  # the second node's processes inherit it
            try:
                node_b = cluster.add_node(num_cpus=1)
            finally:
                os.environ.pop(WORKER_CACHE_ENV)
            cluster.wait_for_nodes()  # both raylets registered before the actors are placed (one per node)
            head = cluster.head_node.node_id
            capfd.readouterr()
            on_ray = Runner(suite, registry, Store(tmp_path / "ray"), workers=2, executor="ray",
                            ray_address=cluster.address)
            summary = on_ray.run()
            # a local --ray run while that cluster is up starts an instance of its own (ray.init's default would
            # attach to the latest `ray start` cluster on the machine, and refuse the run's CPU count)
            ray.shutdown()
            alone = Runner(suite, registry, Store(tmp_path / "alone"), workers=2, executor="ray").run()
        finally:
            ray.shutdown()
            cluster.shutdown()
    assert (alone.ok, alone.failed) == (4, 0)
    assert _rows(tmp_path / "alone", alone.run_id) == _rows(tmp_path / "local", expected.run_id)
    err = capfd.readouterr().err
    assert (summary.ok, summary.failed) == (4, 0)

    # the start-up check names the blind node (by its Ray node id), and only that one
    lines = [line for line in err.splitlines() if "do not see the results folder's cache" in line]
    assert len(lines) == 1 and node_b.node_id[:12] in lines[0], err
    assert head[:12] not in lines[0]

    # each generic model and each prepare ran once across both nodes, and one adapt per user and method
    c = on_ray.counters
    assert (c.generic_trained, c.prepared, c.adapted) == (1, 2, 4), c
    assert _rows(tmp_path / "ray", summary.run_id) == _rows(tmp_path / "local", expected.run_id)

    # the driver's cache is the source of truth: the same entries as the local run's, the same tensors bit for bit, including
    # those computed on the second node; that node worked from its own folder (it received what it needed)
    driver, reference, b = (_entries(tmp_path / "ray" / "cache"), _entries(tmp_path / "local" / "cache"),
                            _entries(node_b_cache))
    assert driver == reference and len(reference) == 1 + 2 + 4
    assert b and set(b) <= set(reference)
    assert any(name.startswith("generic-") for name in b)  # it ran something that needs the generic model
    assert not list((tmp_path / "ray" / "cache").glob(".ray-share-*"))  # the start-up token is removed
