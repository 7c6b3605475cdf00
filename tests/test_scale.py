"""No needless work at scale: --dry-run and job keys start no meter, a warm run commits its cached records in one
transaction (and computes, measures and imports nothing for them), a computed job is committed before the next
one starts, and the store's batched commit is all-or-nothing. Speeds are measured in benchmarks/scaling.py."""

from __future__ import annotations

import sqlite3

import pytest

from harbench.builtin.hardware import Cpu, _energy_method
from harbench.measure import EnergyMeter
from harbench.records import JobRecord, JobSpec
from harbench.results.store import Store
from harbench.run import Runner, plan_counts
from harbench.run.cache import WeightCache
from harbench.run.job import JobNode
from harbench.suite import parse_suite

from .conftest import tiny_suite

SMALL_DATA = "{users: 4, windows: 8, sessions: 2, k: 3, unseen_windows: 3}"
MEASURED = ("{name: cpu, params: {min_duration_s: 0.0, min_count: 5, energy_min_s: 0.0, warmup: 1, energy: %s}}")


def small_suite(energy: bool = False, methods: str = "[generic, {name: finetune-last, params: {epochs: 1}}]") -> str:
    text = tiny_suite(methods=methods).replace("{users: 5, windows: 8, sessions: 2, k: 3, unseen_windows: 3}", SMALL_DATA)
    cpu = "{name: cpu, params: {min_duration_s: 0.0, min_count: 5, energy_min_s: 0.0, warmup: 1, energy: false}}"
    second = cpu.replace("warmup: 1", "warmup: 1, threads: 1")  # a second target (the built-ins have one kind)
    return text.replace(f"hardware: [{cpu}]", f"hardware: [{MEASURED % str(energy).lower()}, {second}]")


@pytest.fixture
def no_meter(monkeypatch):
    """Fail the test if anything starts codecarbon's tracker (the shared meter or a new one)."""
    def refuse(self, idle_s):
        raise AssertionError("an energy meter was started")

    monkeypatch.setattr(EnergyMeter, "_instance", None)
    monkeypatch.setattr(EnergyMeter, "_start", refuse)


def test_dry_run_counts_and_job_keys_start_no_meter(registry, tmp_path, no_meter):
    suite = parse_suite(small_suite(energy=True), "s.yaml", registry)
    counts = plan_counts(suite, registry, WeightCache(tmp_path / "cache"))
    assert counts.nodes["job"] == 2 * 2 * 2 and counts.cached["job"] == 0  # 2 methods x 2 users x 2 targets
    info = Cpu(**{"energy": True}).describe()
    assert info.mode == "measured" and info.extra["energy_method"] == _energy_method()
    assert "idle_w" not in info.power  # known once something was measured, not before
    assert EnergyMeter._instance is None


def test_the_probed_energy_method_is_the_one_the_meter_reports():
    pytest.importorskip("codecarbon")
    meter = EnergyMeter(idle_s=0.0)
    try:
        assert meter.method == _energy_method()
    finally:
        if meter.tracker is not None:
            meter.tracker.stop()


def test_computed_jobs_are_committed_one_at_a_time_and_a_warm_runs_cached_jobs_in_one_transaction(
        registry, tmp_path, monkeypatch):
    suite = parse_suite(small_suite(methods="[generic]"), "s.yaml", registry)
    store = Store(tmp_path / "r")
    events: list[tuple[str, str]] = []
    run, add_job, add_jobs = JobNode.run, Store.add_job, Store.add_jobs

    def started(self, job, *a, **k):
        events.append(("start", job.key))
        return run(self, job, *a, **k)

    def committed(self, run_id, rec, **k):
        add_job(self, run_id, rec, **k)
        events.append(("commit", rec.spec.key))

    with monkeypatch.context() as m:
        m.setattr(JobNode, "run", started)
        m.setattr(Store, "add_job", committed)
        cold = Runner(suite, registry, store).run()
    assert (cold.ok, cold.failed) == (4, 0)
    # durability: never a second job's work before the first one's record is in the store
    assert [kind for kind, _ in events] == ["start", "commit"] * 4
    assert [key for kind, key in events if kind == "start"] == [key for kind, key in events if kind == "commit"]

    calls: dict[str, list[int]] = {"add_job": [], "add_jobs": []}
    monkeypatch.setattr(Store, "add_job", lambda *a, **k: calls["add_job"].append(1))
    monkeypatch.setattr(Store, "add_jobs", lambda self, run_id, items: calls["add_jobs"].append(
        add_jobs(self, run_id, list(items))))
    monkeypatch.setattr(JobNode, "run", lambda *a, **k: pytest.fail("a cached job was computed"))
    monkeypatch.setattr(EnergyMeter, "_start", lambda *a: pytest.fail("a warm run started the energy meter"))
    warm_runner = Runner(suite, registry, store)
    warm = warm_runner.run()
    assert (warm.ok, warm.cached, warm.failed) == (4, 4, 0)
    assert calls == {"add_job": [], "add_jobs": [4]}  # one transaction for the four records, none alone
    c = warm_runner.counters
    assert (c.generic_trained, c.prepared, c.adapted, c.jobs_cached) == (0, 0, 0, 4)
    values = lambda rid: sorted((r["method"], r["hardware"], r["user"], r["acc_seen"]) for r in store.job_rows(rid))
    assert values(warm.run_id) == values(cold.run_id)


def _record(n: int) -> tuple[JobRecord, dict, dict]:
    spec = JobSpec("d", {}, "m", {"i": n}, "", "rpi4", {}, 0, f"u{n}")
    return JobRecord(spec, "ok", mode="estimated", metrics={"acc_seen": 0.5}), {}, {}


def test_a_batched_commit_is_all_or_nothing(tmp_path):
    store = Store(tmp_path)
    run_id = store.start_run("s", "s.yaml", "", "h", {})
    assert store.add_jobs(run_id, (_record(i) for i in range(500))) == 500
    assert len(store.job_rows(run_id)) == 500

    def broken():
        yield from (_record(i) for i in range(500, 510))
        raise OSError("disk gone")

    with pytest.raises(OSError):
        store.add_jobs(run_id, broken())
    con = sqlite3.connect(store.path)
    assert con.execute("SELECT count(*) FROM jobs").fetchone()[0] == 500  # none of the ten before the failure
    con.close()


def test_job_keys_are_the_content_hash_of_what_they_name(registry):
    """The per-target memo builds the same key as hashing the whole list (caches stay valid across versions)."""
    from harbench.hashing import code_version, content_hash
    from harbench.run.keys import NodeKeys, hardware_identity
    from harbench.run.plan import plan_jobs, units
    from harbench.run.targets import Targets

    suite = parse_suite(small_suite(), "s.yaml", registry)
    targets = Targets(suite, registry)
    keys = NodeKeys(suite, registry, targets.info)
    code = lambda kind, name: [registry.get(kind, name).distribution, registry.get(kind, name).version,
                               code_version(registry.get(kind, name).cls.__module__)]
    metrics = [[n, code("metric", n)] for n in suite.metrics]
    seen = set()
    for di, seed, mi, jobs in units(suite, plan_jobs(suite)):
        for job in jobs:
            expected = content_hash(["job", keys.adapt(di, seed, mi, job.user), job.hardware, job.hardware_params,
                                     code("hardware", job.hardware),
                                     hardware_identity(targets.info(job)), metrics])
            assert keys.job(di, seed, mi, job) == expected
            seen.add(expected)
    assert len(seen) == 8  # every job its own key
