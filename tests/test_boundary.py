"""The device boundary (issue #36): no plugin code runs beside the data or other jobs' state, no process outlives
its job, no plugin output goes unchecked, a dying plugin fails loudly.

The attacks are ``tests/data/planted/boundary_cheats.py``: a third-party plugin written from the public API.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harbench.results.store import Store
from harbench.run import Runner
from harbench.sandbox.isolation import landlock_abi
from harbench.suite import parse_suite

from .conftest import FAST_CPU

PLANTED = Path(__file__).parent / "data" / "planted"
DATA = "{users: 6, windows: 10, sessions: 2, k: 4, unseen_windows: 3, contexts: [home, labels]}"
METRICS = "[acc_seen, acc_unseen, f1_seen, f1_unseen, params, model_kb, flops]"
CLEAN = ["generic", "{name: finetune-last, params: {epochs: 3}}"]


@pytest.fixture
def cheats(registry, monkeypatch):
    monkeypatch.syspath_prepend(str(PLANTED))
    monkeypatch.setenv("HARBENCH_PLUGINS", "boundary_cheats")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(PLANTED), os.environ.get("PYTHONPATH")])))
    registry.load_modules(["boundary_cheats"])
    return registry


def suite(methods: list[str], *, hardware: str = FAST_CPU, metrics: str = METRICS, workers: int = 1) -> str:
    return f"""
name: boundary
datasets: [{{name: synthetic-drift, params: {DATA}}}]
methods: [{", ".join(methods)}]
hardware: [{hardware}]
metrics: {metrics}
seeds: [0]
target_users: 2
workers: {workers}
generic: {{epochs: 2}}
"""


def run(registry, text, results):
    summary = Runner(parse_suite(text, "boundary.yaml", registry), registry, Store(results)).run()
    rows = {(r["method"], r["user"], r["hardware"]): r for r in Store(results).job_rows(summary.run_id)}
    return summary, rows


def numbers(rows, methods=("generic", "finetune-last")):
    out = {}
    for key, r in rows.items():
        if key[0] in methods:
            assert r["status"] == "ok", (key, r["error"])
            out[key] = {m: r.get(m) for m in ("acc_seen", "acc_unseen", "f1_seen", "f1_unseen", "params", "flops")}
    return out


def cli_run(text: str, results: Path) -> dict:
    """A run as a user starts it: a fresh ``harbench run`` process (whose sandbox root is forked before any data
    exists in it), with the planted plugin from the fixture's environment."""
    (results.parent / f"{results.name}.yaml").write_text(text)
    done = subprocess.run([sys.executable, "-m", "harbench.cli", "run", str(results.parent / f"{results.name}.yaml"),
                           "--results", str(results), "-q"], env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    store = Store(results)
    return {(r["method"], r["user"], r["hardware"]): r for r in store.job_rows(int(store.resolve_run("latest")["id"]))}


def test_global_changes_and_spies_in_prepare_and_the_model_reach_nothing(cheats, tmp_path):
    """Hooks, monkeypatches, dtype, threads and RNG set in prepare or adapt end with their job's process; the
    test splits are not in prepare's process nor where the model is evaluated; a model's pickling hooks never run
    in the host. Every clean job's numbers are identical to a clean run's, cold and warm.

    The runs are fresh ``harbench run`` processes: run in-process inside a pytest worker, the sandbox's root would
    be forked from a process that still holds earlier tests' data (the spy once found some in the full suite)."""
    clean = cli_run(suite(CLEAN), tmp_path / "clean")
    cheaters = ["cheat-prepare-hook", "cheat-prepare-patches", "cheat-prepare-spy", "cheat-model-spy"]
    text = suite(cheaters + CLEAN)  # the cheats run first, in the same host process and sandbox
    dirty = cli_run(text, tmp_path / "dirty")
    assert numbers(dirty) == numbers(clean)
    spy = [r for k, r in dirty.items() if k[0] == "cheat-prepare-spy"]
    assert spy and all(r["status"] == "ok" and r["facts"]["found"] == 0 and r["facts"]["labels"] == 0 for r in spy), [(r["status"], r["error"], r["facts"]) for r in spy]
    generic = {k[1]: r["acc_seen"] for k, r in dirty.items() if k[0] == "generic"}
    thief = {k[1]: r["acc_seen"] for k, r in dirty.items() if k[0] == "cheat-model-spy"}
    assert thief == generic  # found no labels: it answered as the generic model does
    warm = cli_run(text, tmp_path / "dirty")  # the cache serves the same clean numbers
    assert numbers(warm) == numbers(clean)


def test_a_model_whose_predictions_depend_on_the_batch_fails_its_job(cheats, tmp_path):
    _, rows = run(cheats, suite(["cheat-pinned-train", "cheat-batch-standardise", "generic"]), tmp_path)
    for key, r in rows.items():
        if key[0].startswith("cheat-"):
            assert r["status"] == "failed" and "depend on the batch" in r["error"] and key[0] in r["error"], r["error"]
        else:  # BatchNorm in eval mode, on any SIMD kernel, is within the bound
            assert r["status"] == "ok", r["error"]


HARBENCH = """
import sys
from harbench.cli import main
sys.argv = ["harbench"] + sys.argv[1:]
main()
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_a_dying_plugin_fails_its_jobs_in_one_line_and_the_run_exits_1(cheats, tmp_path, workers):
    """sys.exit, os._exit and a segfault in prepare, and an adapt that kills its zygote: each fails its own jobs with
    one line naming the method and how it died; the next method's jobs run (a new zygote); exit status 1; with two
    workers no BrokenProcessPool (prepare's process is not the pool's)."""
    methods = ["cheat-prepare-sysexit", "cheat-prepare-osexit", "cheat-prepare-segfault", "cheat-kill-parent",
               "generic"]
    path = tmp_path / "suite.yaml"
    path.write_text(suite(methods, workers=workers))
    out = subprocess.run([sys.executable, "-c", HARBENCH, "run", str(path), "--results", str(tmp_path / "r"), "-q"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    assert "Traceback" not in out.stdout + out.stderr, out.stderr[-3000:]
    store = Store(tmp_path / "r")
    runs = store.runs()
    assert [r["status"] for r in runs] == ["failed"]
    rows = {(r["method"], r["user"]): r for r in store.job_rows(runs[0]["id"])}
    how = {"cheat-prepare-sysexit": "SystemExit: method 'cheat-prepare-sysexit' (prepare): the plugin called sys.exit(0)",
           "cheat-prepare-osexit": "method 'cheat-prepare-osexit' (prepare): its process exited with status 0",
           "cheat-prepare-segfault": "method 'cheat-prepare-segfault' (prepare): its process was killed by SIGSEGV",
           "cheat-kill-parent": "method 'cheat-kill-parent' (adapt): the sandbox's zygote ended"}
    for (method, user), r in rows.items():
        if method in how:
            assert r["status"] == "failed" and how[method] in r["error"] and "\n" not in r["error"], r["error"]
        else:
            assert r["status"] == "ok", r["error"]
    assert len(rows) == 2 * len(methods)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the subreaper is Linux's prctl")
def test_processes_a_job_starts_end_with_the_job(cheats, tmp_path, monkeypatch):
    """A forked and a setsid'd grandchild burning a core: the job that started them refuses to measure beside them
    (failed, naming the pids); both are dead when their job is, before the next job measures anything on the host;
    nothing of them is left after the run."""
    pids = tmp_path / "pids"
    monkeypatch.setenv("BOUNDARY_PIDS", str(pids))
    _, rows = run(cheats, suite(["cheat-fork-burner", "cheat-setsid-burner", "generic"]), tmp_path / "r")
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 4  # two users x two burners
    assert not [p for p in started if _alive(p)]
    for (method, _, _), r in rows.items():
        if method == "generic":
            assert r["status"] == "ok", r["error"]
        else:
            assert r["status"] == "failed" and "refusing to measure on 'cpu'" in r["error"], r["error"]


def test_outputs_out_of_range_fail_their_job_naming_plugin_and_value(cheats, tmp_path):
    hardware = f"{FAST_CPU}, cheat-negative-target"
    _, rows = run(cheats, suite(["generic"], hardware=hardware, metrics="[acc_seen, cheat-fraction]"), tmp_path)
    for (method, user, hw), r in rows.items():
        assert r["status"] == "failed", r
        if hw == "cheat-negative-target":
            assert "hardware target 'cheat-negative-target' reported adapt seconds = -0.5" in r["error"], r["error"]
        else:
            assert "metric 'cheat-fraction' computed 1.5" in r["error"], r["error"]


@pytest.mark.skipif(not landlock_abi(), reason="this kernel offers no Landlock (isolation: strict fails its jobs)")
def test_strict_isolation_keeps_the_data_folder_out_of_reach(cheats, tmp_path, monkeypatch):
    """isolation: process leaves the dataset's files readable (the README says so); strict (Landlock) does not."""
    data = tmp_path / "data" / "sp-sw-har"
    data.mkdir(parents=True)
    (data / "windows.csv").write_text("secret,labels\n" * 100)
    monkeypatch.setenv("HARBENCH_DATA", str(tmp_path / "data"))
    got = {}
    for isolation in ("process", "strict"):
        text = suite(["cheat-reads-data", "generic"]) + f"isolation: {isolation}\n"
        _, rows = run(cheats, text, tmp_path / isolation)
        assert all(r["status"] == "ok" for r in rows.values()), [r["error"] for r in rows.values()]
        got[isolation] = [r["facts"] for k, r in rows.items() if k[0] == "cheat-reads-data"]
    assert all(f["bytes_read"] == 1400 and f["denied"] == 0 for f in got["process"]), got
    assert all(f["bytes_read"] == 0 and f["denied"] >= 1 for f in got["strict"]), got
