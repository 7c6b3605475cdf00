"""A warm run serves a cached plan without plugins or torch (#23), and stores what the full run would have stored.

The plan memo (``harbench/run/warm.py``) is checked against everything a job key depends on outside the suite;
each test below changes one of those things and shows that the run then takes the full path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harbench import plugins
from harbench.records import JobSpec
from harbench.results.store import Store
from harbench.run import Runner
from harbench.suite import load_suite

from .conftest import plugin_module, tiny_suite

ESTIMATED = tiny_suite(methods="[generic]").replace("hardware: [", "hardware: [rpi5]\n#")  # nothing measured

WATCHER = textwrap.dedent("""
    from harbench import hookimpl

    @hookimpl
    def harbench_report_summary(rows):
        return {"title": f"WATCHER saw {len(rows)} jobs", "headers": ["jobs"], "rows": [[len(rows)]], "note": ""}
""")

PROBE = textwrap.dedent("""
    import json, sys
    from harbench.cli import main
    try:
        main(json.loads(sys.argv[1]), prog_name="harbench", standalone_mode=False)
        code = 0
    except SystemExit as exc:
        code = exc.code
    print("PROBE " + json.dumps({"torch": "torch" in sys.modules, "code": code}))
""")


def harbench(args: list[str], env: dict[str, str]) -> tuple[dict, str]:
    """``harbench ARGS`` in a fresh interpreter: whether it imported torch, its exit code, its output."""
    res = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    line = [x for x in res.stdout.splitlines() if x.startswith("PROBE ")][-1]
    return json.loads(line[len("PROBE "):]), res.stdout


def stored(results: Path, run_id: int) -> dict[str, tuple]:
    return {(r["method"], r["variant"], r["user"], r["hardware"], r["seed"]): (
        r["status"], r["mode"], r["acc_seen"], r["acc_unseen"], r["latency_ms_p50"], r["provenance"]["hardware"])
        for r in Store(results).job_rows(run_id)}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A cold run of a tiny suite (one estimated and one measured target) in a fresh interpreter, which writes
    the registry snapshot and the plan memo."""
    root = tmp_path_factory.mktemp("warm")
    suite = root / "suite.yaml"
    suite.write_text(tiny_suite().replace("hardware: [", "hardware: [rpi5, "))
    (root / "watcher_summary.py").write_text(WATCHER)
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "HARBENCH_CACHE_DIR": str(root / "snapshots"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": path, "HARBENCH_PLUGINS": "watcher_summary"}
    env.pop("HARBENCH_NO_PLAN_MEMO", None)
    args = ["run", str(suite), "--results", str(root / "results"), "-q"]
    cold, out = harbench(args, env)
    assert cold == {"torch": True, "code": 0}
    return suite, root / "results", env, args, out


def as_the_command_line(world, monkeypatch) -> None:
    """This process sees the plugins and settings the command line saw (the memo's key depends on them)."""
    env = world[2]
    for name in ("HARBENCH_CACHE_DIR", "HARBENCH_PLUGINS"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.syspath_prepend(str(world[0].parent))


def test_a_warm_run_imports_no_torch_and_stores_what_the_full_run_stored(world):
    suite, results, env, args, cold_out = world
    warm, warm_out = harbench(args, env)
    assert warm == {"torch": False, "code": 0}, warm_out
    assert "8 of them from the cache" in warm_out  # 2 methods x 2 users x 2 targets
    store = Store(results)
    first, second = (dict(store.resolve_run(i)) for i in (1, 2))
    assert stored(results, 1) == stored(results, 2) and len(stored(results, 2)) == 8
    for field in ("suite", "suite_path", "suite_yaml", "suite_hash"):
        assert first[field] == second[field]
    assert second["status"] == "complete"
    env1, env2 = json.loads(first["env"]), json.loads(second["env"])
    for field in ("host", "python", "torch", "harbench", "plugins", "torch_threads", "hardware", "jobs_planned"):
        assert env1[field] == env2[field], field
    decision = lambda out: out[:out.index("\nrun ")]  # noqa: E731 -- the closing answer, without the run line
    assert decision(cold_out) == decision(warm_out)
    # the report shows a plugin's summary (its hook, asked for every run) from the cache the run filled: no
    # plugin loaded, no torch; the answer is the hook's, computed over this run's rows
    report, out = harbench(["report", "latest", "--results", str(results)], env)
    assert report == {"torch": False, "code": 0} and "WATCHER saw 8 jobs" in out, out
    # the full path (the memo disabled) stores the same rows as the warm one
    full, _ = harbench(args, {**env, "HARBENCH_NO_PLAN_MEMO": "1"})
    assert full == {"torch": True, "code": 0}
    assert stored(results, 3) == stored(results, 2)


def test_anything_a_key_depends_on_sends_the_run_down_the_full_path(world, tmp_path, monkeypatch):
    """serve() answers None — the full run runs — for another suite text, another HARBENCH_ setting, a new device
    profile, or a job whose cached outputs are gone; and then it writes nothing."""
    from harbench.run import warm

    suite, results, env, _, _ = world
    as_the_command_line(world, monkeypatch)
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    text = suite.read_text()
    runs = len(Store(copy).runs())
    assert warm.serve(Store(copy), str(suite), text + "\n# another text\n") is None
    monkeypatch.setenv("HARBENCH_DATA", str(tmp_path / "elsewhere"))
    assert warm.serve(Store(copy), str(suite), text) is None
    monkeypatch.delenv("HARBENCH_DATA")
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    monkeypatch.setenv("HARBENCH_PROFILE_DIR", str(profiles))
    key = warm.memo_key(str(suite), text)
    (profiles / "rpi5.yaml").write_text("name: rpi5\n")  # a profile dropped in: estimated targets may change
    assert warm.memo_key(str(suite), text) != key
    monkeypatch.delenv("HARBENCH_PROFILE_DIR")
    assert len(Store(copy).runs()) == runs
    served = warm.serve(Store(copy), str(suite), text)  # untouched: served
    assert served is not None and served.cached == 8 and len(Store(copy).runs()) == runs + 1
    sorted((copy / "cache").glob("job-*.json"))[0].unlink()
    assert warm.serve(Store(copy), str(suite), text) is None and len(Store(copy).runs()) == runs + 1
    monkeypatch.setenv("HARBENCH_NO_PLAN_MEMO", "1")
    shutil.rmtree(copy)
    shutil.copytree(results, copy)
    assert warm.serve(Store(copy), str(suite), text) is None


def test_the_memo_rebuilds_the_plan(world, monkeypatch):
    """Each JobSpec comes back from the memo's tables of datasets, methods and targets, with its own key."""
    from harbench.run import plan_jobs, warm
    from harbench.run.cache import WeightCache

    suite_path, results, env, _, _ = world
    as_the_command_line(world, monkeypatch)
    reg = environment_registry(monkeypatch)
    suite = load_suite(suite_path, reg)
    memo = WeightCache(results / "cache").get_json("plan", warm.memo_key(suite.source, suite.text))
    jobs = warm._jobs(memo)
    assert [j.key for j, _ in jobs] == [j.key for j in plan_jobs(suite)]
    assert all(isinstance(j, JobSpec) for j, _ in jobs) and len({k for _, k in jobs}) == len(jobs) == 8


def memos(results: Path) -> list[Path]:
    return sorted((results / "cache").glob("plan-*.json"))


def environment_registry(monkeypatch):
    """The registry this environment loads, installed for the test only (the previous one comes back after)."""
    monkeypatch.setattr(plugins, "_registry", None)
    reg = plugins.get_registry()
    assert reg.from_environment
    return reg


def test_no_memo_for_a_registry_a_caller_changed_or_a_plugin_with_run_hooks(world, tmp_path, write_suite,
                                                                           monkeypatch):
    assert len(memos(world[1])) == 1  # the environment's registry, through the command line: a memo
    path = write_suite(ESTIMATED)
    reg = environment_registry(monkeypatch)
    finished = []
    reg.add_plugin(plugin_module("watcher", harbench_job_finished=lambda record: finished.append(record)),
                   "watcher", "1.0")
    assert not reg.from_environment  # changed by its caller: not what the snapshot describes
    reg.from_environment = True  # even so: a job_finished hook would not be called by a warm run
    Runner(load_suite(path, reg), reg, Store(tmp_path / "b")).run()
    assert finished and memos(tmp_path / "b") == []


def test_no_memo_for_file_backed_data(tmp_path, write_suite, monkeypatch):
    """A dataset whose describe() carries a fingerprint reads files that may change: describe() must run."""
    reg = environment_registry(monkeypatch)
    base = reg.get("dataset", "synthetic-drift").cls

    class Files(base):  # type: ignore[misc, valid-type]
        name = "files-backed"

        def describe(self):
            info = super().describe()
            info.extra["fingerprint"] = "f00d"
            return info

    reg.items["dataset"]["files-backed"] = type(reg.items["dataset"]["synthetic-drift"])(
        "dataset", "files-backed", Files, "test", "1.0")
    reg.from_environment = True
    text = ESTIMATED.replace("name: synthetic-drift", "name: files-backed")
    Runner(load_suite(write_suite(text), reg), reg, Store(tmp_path / "r")).run()
    assert Store(tmp_path / "r").job_rows(1) and memos(tmp_path / "r") == []
