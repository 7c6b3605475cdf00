"""Bad input, injected faults and interruptions: the harness rejects or records, never crashes or loses results."""

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harbench import AdaptResult, Method, Param
from harbench.cli import main
from harbench.results.store import Store
from harbench.suite import SuiteError, parse_suite

from .conftest import plugin_module, tiny_suite
from .test_runner import run

BAD = sorted(Path(__file__).parent.joinpath("data", "bad_suites").glob("*.yaml"))


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_suite_is_one_clear_error_exit_2_and_writes_nothing(registry, path, tmp_path):
    expect = path.read_text().splitlines()[0].removeprefix("# expect: ")
    res = CliRunner().invoke(main, ["run", str(path), "--results", str(tmp_path / "res")])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)
    lines = [l for l in res.output.splitlines() if l.startswith("error:")]
    assert lines and all(str(path) in l for l in lines), res.output
    assert any(expect in l for l in lines), res.output
    assert not (tmp_path / "res").exists()
    assert not Path("/tmp/harbench-pwned").exists()


def test_corpus_is_large_enough():
    assert len(BAD) >= 20


class Faulty(Method):
    name = "faulty"
    parameters = {"fault": Param("none", "which fault", choices=("none", "nan", "shape", "slow", "memory"))}

    def adapt(self, generic, state, user, ctx):
        import copy

        model = copy.deepcopy(generic)
        if self.params.fault == "nan":
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        elif self.params.fault == "shape":
            model.fc = torch.nn.Linear(model.fc.in_features, 3)
        elif self.params.fault == "slow":
            time.sleep(30)
        elif self.params.fault == "memory":
            raise MemoryError()
        return AdaptResult(model)


def test_injected_faults_are_recorded_and_others_complete(registry, tmp_path):
    registry.add_plugin(plugin_module("faulty", harbench_register_methods=lambda register: register(Faulty)),
                        "harbench-faulty", "0.1")
    methods = "[generic, {name: faulty, params: {fault: [nan, shape, slow, memory]}}]"
    _, summary = run(registry, tiny_suite(methods=methods, extra="timeout_s: 10"), tmp_path)
    rows = Store(tmp_path).job_rows(summary.run_id)
    errors = {r["variant"]: r["error"] for r in rows if r["method"] == "faulty"}
    assert "non-finite weights" in errors["fault=nan"]
    assert "output shape is (1, 3)" in errors["fault=shape"]
    assert "the job exceeded its time limit of 10 s" in errors["fault=slow"]
    assert "exhausted memory" in errors["fault=memory"]
    generic = [r for r in rows if r["method"] == "generic"]
    assert len(generic) == 2 and all(r["status"] == "ok" and r["acc_seen"] is not None for r in generic)
    assert (summary.ok, summary.failed) == (2, 8)


SUITE_FOR_KILLS = tiny_suite(methods="[generic, {name: finetune-last, params: {epochs: 2}}]", seeds="[0, 1]")


def _cli(*args, **kw):
    env = {**os.environ, "HARBENCH_LOAD_PLUGINS": "", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "harbench.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _accuracies(folder):
    store = Store(folder)
    rows = store.job_rows(int(store.resolve_run("latest")["id"]))
    return sorted((r["method"], r["user"], r["seed"], r["acc_seen"], r["acc_unseen"]) for r in rows)


def _committed(folder) -> int:
    """Jobs committed to the store so far (0 before the store exists or while its first write holds it)."""
    if not folder.joinpath("harbench.sqlite").exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{folder / 'harbench.sqlite'}?mode=ro", uri=True, timeout=5)) as c:
            return int(c.execute("SELECT count(*) FROM jobs").fetchone()[0])
    except sqlite3.OperationalError:  # the schema is being created
        return 0


def _wait_for_commits(proc, folder, at_least: int, timeout: float = 240.0) -> bool:
    """Poll the store until ``at_least`` jobs are committed; False if the run ended first (it must not)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if _committed(folder) >= at_least:
            return True
        time.sleep(0.02)
    return False


def test_sigkill_at_random_points_never_corrupts_and_resume_completes(tmp_path):
    """SIGKILL lands by progress, not after a wall-clock delay: right after the 1st, 3rd and 5th of 8 jobs is
    committed, that is while the next job is being set up or run. (A delay of 4-8 s missed every run on a slower
    SIMD kernel, and the test passed having killed nothing.) Every kill must land."""
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE_FOR_KILLS)
    reference = tmp_path / "reference"
    assert _cli("run", str(suite), "--results", str(reference), "-q").wait(timeout=300) == 0
    total = len(_accuracies(reference))
    killed = tmp_path / "killed"
    kills = []
    for at in (1, 3, 5):
        assert at < total
        proc = _cli("run", str(suite), "--results", str(killed), "-q", "--resume")
        if _wait_for_commits(proc, killed, at):
            proc.send_signal(signal.SIGKILL)
            kills.append(at)
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL, (at, proc.returncode, proc.stderr.read())
        with Store(killed).connect() as con:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert kills == [1, 3, 5]
    assert _committed(killed) < total  # the last kill left work for the resume
    done = _cli("run", str(suite), "--results", str(killed), "-q", "--resume")
    assert done.wait(timeout=300) == 0, done.stderr.read()
    assert _accuracies(killed) == _accuracies(reference)
    assert len(Store(killed).runs()) == 1


def test_sigint_stops_after_the_current_job_with_a_resume_hint(tmp_path):
    """SIGINT is sent once the first job is committed (by progress, not by a delay), so it always lands mid-run."""
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE_FOR_KILLS)
    proc = _cli("run", str(suite), "--results", str(tmp_path / "r"), "-q")
    assert _wait_for_commits(proc, tmp_path / "r", 1), "the run ended before its first job was committed"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    assert Store(tmp_path / "r").resolve_run("latest")["status"] == "interrupted"
    assert _committed(tmp_path / "r") < 8


scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=8))
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=6), scalars, max_size=3))
plugin_refs = st.one_of(st.sampled_from(["generic", "finetune-full", "nope", 3]),
                        st.fixed_dictionaries({"name": st.sampled_from(["finetune-full", "finetune-last"]),
                                               "params": st.dictionaries(st.sampled_from(["lr", "epochs", "optimizer", "x"]), values, max_size=3)}))
documents = st.fixed_dictionaries(
    {"name": st.one_of(st.just("p"), values)},
    optional={"datasets": st.one_of(values, st.just(["synthetic-drift"])), "methods": st.one_of(values, st.lists(plugin_refs, max_size=3)),
              "hardware": st.one_of(values, st.just(["cpu"])), "seeds": values, "target_users": values, "workers": values,
              "extra": values})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(documents)
def test_random_suite_documents_are_accepted_or_rejected_cleanly(registry, doc):
    import yaml

    try:
        parse_suite(yaml.safe_dump(doc), "random.yaml", registry)
    except SuiteError as exc:
        assert exc.problems and all(isinstance(m, str) for _, m in exc.problems)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["lr", "epochs", "batch_size", "val_fraction", "optimizer"]), values, max_size=4))
def test_random_method_parameters_are_accepted_or_rejected_cleanly(registry, params):
    import yaml

    text = tiny_suite(methods=yaml.safe_dump([{"name": "finetune-full", "params": params}], default_flow_style=True))
    try:
        parse_suite(text, "random.yaml", registry)
    except SuiteError:
        pass


def test_a_ray_worker_lost_mid_job_is_retried(registry, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    plugin_dir = str(Path(__file__).parent / "data" / "crashing_plugin")
    monkeypatch.syspath_prepend(plugin_dir)
    import harbench_crashing

    registry.add_plugin(harbench_crashing, "harbench-crashing", "0.1")
    monkeypatch.setenv("CRASH_MARKER", str(tmp_path / "crashed"))
    suite = parse_suite(tiny_suite(methods="[crash-once]").replace("target_users: 2", "target_users: 1"), "t.yaml", registry)
    from harbench.run import Runner

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,  # never the other test's cluster
             runtime_env={"env_vars": {"PYTHONPATH": plugin_dir, "CRASH_MARKER": str(tmp_path / "crashed")}})
    try:
        summary = Runner(suite, registry, Store(tmp_path / "r"), workers=1, executor="ray").run()
    finally:
        ray.shutdown()
    assert (tmp_path / "crashed").exists()  # the first attempt really died
    assert (summary.ok, summary.failed) == (1, 0)
