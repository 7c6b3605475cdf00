import json

import pytest
import torch
from click.testing import CliRunner

from harbench import AdaptFacts, AdaptResult, Hardware, HardwareInfo, InferenceCost, Method, Param, PhaseCost
from harbench.cli import main
from harbench.results.store import Store
from harbench.results.tables import IDENTITY, METRIC_COLUMNS
from harbench.run import Runner
from harbench.suite import parse_suite

from .conftest import plugin_module, tiny_suite


class Exploding(Method):
    name = "exploding"
    parameters = {"when": Param("adapt", "where to fail", choices=("adapt", "prepare", "never"))}

    def prepare(self, generic, population, ctx):
        if self.params.when == "prepare":
            raise RuntimeError("prepare failed on purpose")
        return super().prepare(generic, population, ctx)

    def adapt(self, generic, state, user, ctx):
        if self.params.when == "adapt":
            raise RuntimeError("boom")
        return AdaptResult(generic)


class Vandal(Method):
    name = "vandal"

    def adapt(self, generic, state, user, ctx):
        with torch.no_grad():
            next(generic.parameters()).add_(1.0)
        return AdaptResult(generic)


@pytest.fixture
def with_test_methods(registry):
    def register(register):
        register(Exploding)
        register(Vandal)

    registry.add_plugin(plugin_module("testmethods", harbench_register_methods=register), "harbench-testmethods", "0.1")
    return registry


def run(registry, text, results, resume=False):
    suite = parse_suite(text, "tiny.yaml", registry)
    runner = Runner(suite, registry, Store(results), resume=resume)
    return runner, runner.run()


def test_end_to_end_cli_run_report_and_export(registry, write_suite, tmp_path):
    path = write_suite(tiny_suite())
    res = CliRunner().invoke(main, ["run", str(path), "--results", str(tmp_path / "r"), "-q"])
    assert res.exit_code == 0, res.output
    assert "finetune-last" in res.output and "4 ok, 0 failed" in res.output
    out = tmp_path / "x.json"
    res = CliRunner().invoke(main, ["export", "latest", "--results", str(tmp_path / "r"), "--format", "json", "-o", str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())
    assert len(rows) == 4
    for col in IDENTITY + METRIC_COLUMNS:
        assert col in rows[0], col
    row = next(r for r in rows if r["method"] == "finetune-last")
    assert row["mode"] == "measured" and row["variant"] == "epochs=2" and row["method_params"]["lr"] == 0.01
    assert 0 <= row["acc_seen"] <= 1 and row["params_trained"] == 6 * 64 + 6 and row["flops"] > 0
    assert row["latency_ms_p50"] <= row["latency_ms_p90"] <= row["latency_ms_p99"]
    assert row["provenance"]["hardware"]["name"] == "cpu"
    assert row["provenance"]["inference_extra"]["load_1min"] >= 0.0  # how busy the machine was while it measured
    generic = next(r for r in rows if r["method"] == "generic" and r["user"] == row["user"])
    assert generic["gain_seen"] == 0.0 and generic["params_trained"] == 0
    csv_out = tmp_path / "x.csv"
    CliRunner().invoke(main, ["export", "--results", str(tmp_path / "r"), "--format", "csv", "-o", str(csv_out)])
    header = csv_out.read_text().splitlines()[0].split(",")
    assert header[: len(IDENTITY)] == IDENTITY
    res = CliRunner().invoke(main, ["report", "latest", "--results", str(tmp_path / "r"), "--format", "json"])
    assert json.loads(res.output)[0]["method"] == "generic"


class Modelled(Hardware):
    """An estimated target: models every phase, runs nothing on a device."""

    name = "modelled"

    def describe(self):
        return HardwareInfo(name="modelled", processor="a model", memory_gb=1.0, mode="estimated")

    def run_adapt(self, adapt):
        result = adapt()
        return result, PhaseCost(0.1 * result.facts.optimizer_steps, 1.0, 0.5, "model")

    def run_inference(self, model, example):
        return InferenceCost([0.001], 0.01, 0.005, "model")


def test_second_run_is_served_from_cache_and_says_so(registry, tmp_path):
    text = tiny_suite()
    first, a = run(registry, text, tmp_path)
    assert (first.counters.generic_trained, first.counters.prepared, first.counters.adapted) == (1, 2, 4)
    second, b = run(registry, text, tmp_path)
    c = second.counters
    assert (c.jobs_cached, c.generic_trained, c.generic_cached, c.prepared, c.prepare_cached, c.adapted) == (4, 0, 0, 0, 0, 0)
    assert (b.ok, b.cached) == (4, 4)
    rows = lambda rid: sorted((r["method"], r["user"], r["acc_seen"], r["latency_ms_p50"], r["adapt_s"])
                              for r in Store(tmp_path).job_rows(rid))
    assert rows(a.run_id) == rows(b.run_id)  # the same numbers, including what was measured
    for r in Store(tmp_path).job_rows(b.run_id):
        assert r["mode"] == "measured" and r["provenance"]["cache"]["run_id"] == a.run_id


def test_remeasure_runs_measured_targets_again(registry, tmp_path):
    run(registry, tiny_suite(), tmp_path)
    suite = parse_suite(tiny_suite(), "tiny.yaml", registry)
    again = Runner(suite, registry, Store(tmp_path), remeasure=True)
    summary = again.run()
    assert (summary.ok, summary.cached, again.counters.adapted) == (4, 0, 4)
    assert (again.counters.generic_cached, again.counters.generic_trained) == (1, 0)
    assert all("cache" not in r["provenance"] for r in Store(tmp_path).job_rows(summary.run_id))


def test_an_added_estimated_target_reuses_the_cached_adapted_models(registry, tmp_path):
    registry.add_plugin(plugin_module("modelled", harbench_register_hardware=lambda register: register(Modelled)),
                        "harbench-modelled", "0.1")
    _, first = run(registry, tiny_suite(), tmp_path)
    text = tiny_suite().replace("hardware: [", "hardware: [modelled, ")
    runner, summary = run(registry, text, tmp_path)
    c = runner.counters
    assert (summary.ok, summary.cached) == (8, 4)
    assert (c.adapted, c.adapt_cached, c.generic_trained, c.prepared) == (0, 4, 0, 0)
    rows = Store(tmp_path).job_rows(summary.run_id)
    acc = lambda hw: sorted((r["method"], r["user"], r["acc_seen"]) for r in rows if r["hardware"] == hw)
    assert acc("modelled") == acc("cpu")
    tuned = next(r for r in rows if r["hardware"] == "modelled" and r["method"] == "finetune-last")
    assert tuned["mode"] == "estimated" and tuned["adapt_s"] > 0  # the estimate still sees the adapt's facts


def test_cache_keys_do_not_depend_on_grid_order(registry, tmp_path):
    run(registry, tiny_suite(methods="[generic, {name: finetune-last, params: {epochs: 2}}]"), tmp_path)
    again, _ = run(registry, tiny_suite(methods="[{name: finetune-last, params: {epochs: 2}}, generic]"), tmp_path)
    assert again.counters.prepared == 0 and again.counters.generic_trained == 0


def test_failures_are_isolated_recorded_and_never_cached(with_test_methods, tmp_path):
    methods = "[generic, exploding, {name: exploding, params: {when: prepare}}, vandal]"
    runner, summary = run(with_test_methods, tiny_suite(methods=methods), tmp_path)
    assert (summary.ok, summary.failed) == (2, 6)
    rows = Store(tmp_path).job_rows(summary.run_id)
    by = {(r["method"], r["variant"]): r for r in rows}
    assert by[("exploding", "")]["error"] == "job: RuntimeError: boom"
    assert "prepare failed on purpose" in by[("exploding", "when=prepare")]["error"]
    assert "modified the shared generic model" in by[("vandal", "")]["error"]
    assert all(r["acc_seen"] is not None for r in rows if r["method"] == "generic")
    # generic, exploding(when=adapt) and vandal prepared; the failed prepare left no cache entry
    assert runner.counters.prepared == 3 and len(list((tmp_path / "cache").glob("prepare-*"))) == 3


def test_cli_exit_status_is_1_when_jobs_fail(with_test_methods, write_suite, tmp_path):
    path = write_suite(tiny_suite(methods="[generic, exploding]"))
    res = CliRunner().invoke(main, ["run", str(path), "--results", str(tmp_path), "-q"])
    assert res.exit_code == 1
    assert "2 ok, 2 failed" in res.output and "boom" in res.output and "--resume" in res.output


def test_resume_skips_recorded_jobs(with_test_methods, tmp_path):
    text = tiny_suite(methods="[generic, {name: finetune-last, params: {epochs: 2}}]")
    _, first = run(with_test_methods, text, tmp_path)
    store = Store(tmp_path)
    with store.connect() as con:  # simulate an interruption: the last job never got recorded
        con.execute("DELETE FROM jobs WHERE id = (SELECT MAX(id) FROM jobs)")
    for entry in (tmp_path / "cache").glob("job-*.json"):  # nor its cache entry, written after the row
        entry.unlink()
    runner, resumed = run(with_test_methods, text, tmp_path, resume=True)
    assert resumed.run_id == first.run_id and resumed.ok == 4
    assert runner.counters.compute_s > 0
    assert len(store.job_rows(first.run_id)) == 4
    assert len(store.runs()) == 1


def test_same_seed_same_accuracy(registry, tmp_path):
    text = tiny_suite(methods="[{name: finetune-full, params: {epochs: 2}}]")
    _, a = run(registry, text, tmp_path / "a")
    _, b = run(registry, text, tmp_path / "b")
    acc = lambda folder, rid: [(r["user"], r["acc_seen"], r["acc_unseen"]) for r in Store(folder).job_rows(rid)]
    assert acc(tmp_path / "a", a.run_id) == acc(tmp_path / "b", b.run_id)


def test_label_free_methods_never_see_labels(registry, tmp_path):
    class Blind(Method):  # adapt runs in another process: it reports what it saw through its facts
        name = "blind"
        label_free = True

        def adapt(self, generic, state, user, ctx):
            return AdaptResult(generic, AdaptFacts(extra={"labels_seen": user.adapt.y is not None,
                                                          "windows": len(user.adapt)}))

    registry.add_plugin(plugin_module("blind", harbench_register_methods=lambda register: register(Blind)), "harbench-blind", "0.1")
    _, summary = run(registry, tiny_suite(methods="[blind]"), tmp_path)
    facts = [json.loads(r["facts"]) if isinstance(r["facts"], str) else r["facts"]
             for r in Store(tmp_path).job_rows(summary.run_id)]
    assert [f["labels_seen"] for f in facts] == [False, False]
    assert all(f["windows"] == 6 * 3 for f in facts)  # the stream holds every adapt window (no budget set)


def test_skip_hook_records_skipped_jobs(registry, tmp_path):
    def skip(job):
        return "not on this target" if job.method == "finetune-last" else None

    registry.add_plugin(plugin_module("skipper", harbench_skip_job=skip), "harbench-skipper", "0.1")
    _, summary = run(registry, tiny_suite(), tmp_path)
    rows = Store(tmp_path).job_rows(summary.run_id)
    assert summary.skipped == 2 and {r["error"] for r in rows if r["status"] == "skipped"} == {"not on this target"}


def test_energy_is_measured_with_its_method_recorded(registry, tmp_path):
    text = tiny_suite(methods="[generic]").replace("energy: false", "energy: true")
    _, summary = run(registry, text, tmp_path)
    row = Store(tmp_path).job_rows(summary.run_id)[0]
    assert row["energy_method"] in ("rapl", "codecarbon-estimate")
    assert row["infer_mj"] > 0 and row["adapt_j"] >= 0 and row["infer_mj_net"] is not None


def test_dry_run_counts_nodes_and_cache_hits(registry, write_suite, tmp_path):
    path = write_suite(tiny_suite(seeds="[0, 1]"))
    out = CliRunner().invoke(main, ["run", str(path), "--results", str(tmp_path), "--dry-run"]).output
    assert "| generic |       2 |            0 |        2 |" in out and "| job     |       8 |" in out
    assert not (tmp_path / "harbench.sqlite").exists()
    run(registry, tiny_suite(seeds="[0, 1]"), tmp_path)
    out = CliRunner().invoke(main, ["run", str(path), "--results", str(tmp_path), "--dry-run"]).output
    assert "| generic |       2 |            2 |        0 |" in out and "| prepare |       4 |            4 |        0 |" in out
    assert "| adapt   |       8 |            8 |        0 |" in out and "| job     |       8 |            8 |        0 |" in out
    out = CliRunner().invoke(main, ["run", str(path), "--results", str(tmp_path), "--dry-run", "--remeasure"]).output
    assert "| adapt   |       8 |            0 |        8 |" in out and "| job     |       8 |            0 |        8 |" in out


def test_parallel_workers_give_identical_results_and_train_shared_nodes_once(registry, tmp_path):
    text = tiny_suite(methods="[generic, {name: finetune-full, params: {epochs: 2}}]", seeds="[0, 1]")
    suite = parse_suite(text, "tiny.yaml", registry)
    serial = Runner(suite, registry, Store(tmp_path / "serial"), workers=1)
    a = serial.run()
    parallel = Runner(suite, registry, Store(tmp_path / "parallel"), workers=2)
    b = parallel.run()
    assert (b.ok, b.failed) == (a.ok, a.failed) == (8, 0)
    assert parallel.counters.generic_trained == 2 and parallel.counters.prepared == 4  # each unique node once
    acc = lambda folder, rid: sorted((r["method"], r["user"], r["seed"], r["acc_seen"], r["acc_unseen"])
                                     for r in Store(folder).job_rows(rid))
    assert acc(tmp_path / "serial", a.run_id) == acc(tmp_path / "parallel", b.run_id)


def test_ray_executor_matches_the_local_one(registry, tmp_path):
    pytest.importorskip("ray")
    text = tiny_suite(methods="[generic, {name: finetune-last, params: {epochs: 2}}]")
    suite = parse_suite(text, "tiny.yaml", registry)
    local = Runner(suite, registry, Store(tmp_path / "local")).run()
    on_ray = Runner(suite, registry, Store(tmp_path / "ray"), workers=2, executor="ray")
    summary = on_ray.run()
    assert (summary.ok, summary.failed) == (4, 0)
    assert on_ray.counters.generic_trained == 1 and on_ray.counters.prepared == 2
    acc = lambda folder, rid: sorted((r["method"], r["user"], r["acc_seen"], r["acc_unseen"]) for r in Store(folder).job_rows(rid))
    assert acc(tmp_path / "local", local.run_id) == acc(tmp_path / "ray", summary.run_id)


def test_code_version_hashes_a_single_file_module_not_its_folder(registry):
    import abc
    import hashlib
    from pathlib import Path

    from harbench.hashing import code_version

    assert code_version("abc") == hashlib.sha256(Path(abc.__file__).read_bytes()).hexdigest()[:16]
    # metric classes built at run time still name the module whose source defines them
    assert {registry.get("metric", n).cls.__module__ for n in registry.names("metric")} == {"harbench.builtin.metrics"}


def test_energy_provenance_is_stored_whatever_metrics_lists(registry, tmp_path):
    text = tiny_suite(methods="[generic]", extra="metrics: [acc_seen, acc_unseen, adapt_j]")
    _, summary = run(registry, text, tmp_path)
    rows = Store(tmp_path).job_rows(summary.run_id)
    assert all(r["energy_method"] for r in rows) and all("adapt_s" not in r for r in rows)


def test_the_energy_note_ignores_jobs_that_executed_no_work():
    from harbench.results.analysis import energy_note

    rows = [{"status": "ok", "energy_method": "rapl"}, {"status": "ok", "energy_method": "none"}]
    assert energy_note(rows) is None
    assert "different energy methods" in energy_note(rows + [{"status": "ok", "energy_method": "estimate:roofline"}])


def test_without_a_terminal_a_run_prints_a_line_per_job_and_per_shared_node(registry, write_suite, tmp_path):
    path = write_suite(tiny_suite())
    res = CliRunner().invoke(main, ["run", str(path), "--results", str(tmp_path)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert any(line.startswith("[0/4] training the generic resnet1d model on synthetic-drift (seed 0)") for line in lines)
    assert any(line.endswith("] prepare of finetune-last[epochs=2] (seed 0)") for line in lines)
    assert [line.split("]")[0] for line in lines if line.startswith("[") and "· seed 0" in line] == \
        ["[1/4", "[2/4", "[3/4", "[4/4"]
