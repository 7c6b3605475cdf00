"""Command-line conventions: `runs`, `--set` overrides, `--format json`, `list backbones`, shell completion,
one-line export errors, and a second Ctrl-C that leaves a resumable `interrupted` run."""

from __future__ import annotations

import json
import signal

import pytest
import yaml
from click.testing import CliRunner

from harbench.cli import main
from harbench.commands import apply_overrides
from harbench.results.store import Store
from harbench.suite import SuiteError

from .conftest import plugin_module, tiny_suite
from .test_report import job, make_run


def test_runs_lists_id_suite_status_jobs_and_wall(tmp_path):
    make_run(tmp_path, [job("mine", "u0", acc_seen=0.5), job("mine", "u1", acc_seen=0.6)], suite="first")
    make_run(tmp_path, [job("mine", "u0", acc_seen=0.5), job("mine", "u1", status="failed")], suite="second")
    res = CliRunner().invoke(main, ["runs", "--results", str(tmp_path)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert all(h in lines[0] for h in ("id", "suite", "started", "status", "jobs ok", "failed", "wall"))
    res = CliRunner().invoke(main, ["runs", "--results", str(tmp_path), "--format", "json"])
    runs = json.loads(res.output)
    assert [(r["id"], r["suite"], r["status"], r["jobs ok"], r["failed"]) for r in runs] == [
        (1, "first", "complete", 2, 0), (2, "second", "complete", 1, 1)]
    assert runs[0]["wall"].endswith(" s")


SUITE = """
name: s
datasets: [synthetic-drift]
methods: [generic, {name: finetune-last, params: {epochs: 2}}]
hardware: [cpu]
seeds: [0, 1]
"""


def test_set_overrides_by_dotted_path_and_list_entry_name():
    doc = yaml.safe_load(apply_overrides(SUITE, ["seeds=[0]", "methods.finetune-last.params.epochs=1",
                                                 "methods.generic.params.x=[fc,all]", "generic.epochs=1"], "s.yaml"))
    assert doc["seeds"] == [0] and doc["methods"][1] == {"name": "finetune-last", "params": {"epochs": 1}}
    assert doc["methods"][0] == {"name": "generic", "params": {"x": ["fc", "all"]}}  # a bare name takes params
    assert doc["generic"] == {"epochs": 1}  # a missing mapping key is created
    assert apply_overrides(SUITE, ["seeds=[3]"], "s.yaml").startswith("# --set seeds=[3]\n")
    with pytest.raises(SuiteError, match="no entry named 'tbft'.*generic, finetune-last"):
        apply_overrides(SUITE, ["methods.tbft.params.block=[fc]"], "s.yaml")
    with pytest.raises(SuiteError, match="PATH=VALUE"):
        apply_overrides(SUITE, ["seeds"], "s.yaml")
    doc = yaml.safe_load(apply_overrides(SUITE, ["methods.finetune-last=~"], "s.yaml"))
    assert doc["methods"] == ["generic"]  # `~` removes a list entry (a suite without that method)


def test_set_on_validate_and_dry_run(write_suite, tmp_path):
    path = str(write_suite(tiny_suite()))
    res = CliRunner().invoke(main, ["validate", path, "--set", "seeds=[0,1,2]"])
    assert res.exit_code == 0 and "3 seed(s)" in res.output, res.output
    res = CliRunner().invoke(main, ["validate", path, "--set", "methods.nope.params.x=1"])
    assert res.exit_code == 2 and "no entry named 'nope'" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["validate", path, "--set", "methods.finetune-last.params.epochs=-1"])
    assert res.exit_code == 2 and "epochs" in res.output  # the override is validated like the file
    one = CliRunner().invoke(main, ["run", path, "--dry-run", "--results", str(tmp_path / "r")])
    two = CliRunner().invoke(main, ["run", path, "--dry-run", "--results", str(tmp_path / "r"), "--set", "seeds=[0,1]"])
    assert one.exit_code == two.exit_code == 0 and one.output != two.output


def test_json_listings_and_backbones():
    res = CliRunner().invoke(main, ["list", "metrics", "--format", "json"])
    metrics = {m["name"]: m for m in json.loads(res.output)}
    assert metrics["acc_seen"]["unit"] == "fraction" and metrics["acc_seen"]["higher_is_better"] is True
    methods = {m["name"]: m for m in json.loads(CliRunner().invoke(main, ["list", "methods", "--format", "json"]).output)}
    assert methods["finetune-last"]["parameters"]["epochs"]["default"] == 30
    plugins = json.loads(CliRunner().invoke(main, ["plugins", "--format", "json"]).output)
    assert {"name": "cpu", "kind": "hardware", "distribution": "harbench"}.items() <= next(
        p for p in plugins if p["name"] == "cpu").items()
    res = CliRunner().invoke(main, ["list", "backbones"])
    assert res.exit_code == 0 and "resnet1d" in res.output and "mobilenet1d" in res.output
    backbones = {b["name"]: b for b in json.loads(CliRunner().invoke(main, ["list", "backbones", "--format",
                                                                           "json"]).output)}
    assert "generic" in backbones["resnet1d"]["methods"]


def test_shell_completion_script_comes_from_click():
    res = CliRunner().invoke(main, [], prog_name="harbench", env={"_HARBENCH_COMPLETE": "bash_source"})
    assert res.exit_code == 0 and "_HARBENCH_COMPLETE" in res.output and "complete " in res.output


def test_export_into_a_missing_folder_is_one_line(tmp_path):
    make_run(tmp_path, [job("mine", "u0", acc_seen=0.5)])
    res = CliRunner().invoke(main, ["export", "--results", str(tmp_path), "--format", "csv",
                                    "-o", str(tmp_path / "missing" / "dir" / "x.csv")])
    assert res.exit_code != 0 and isinstance(res.exception, SystemExit)
    assert "does not exist" in res.output and len(res.output.strip().splitlines()) == 1


def test_a_second_ctrl_c_marks_the_run_interrupted_with_the_resume_hint(registry, write_suite, tmp_path):
    """Both Ctrl-Cs arrive while the first job is committed; the run overrides its seeds with --set."""

    def job_finished(record):
        signal.raise_signal(signal.SIGINT)  # the first: stop after this job
        signal.raise_signal(signal.SIGINT)  # the second: abort now

    registry.add_plugin(plugin_module("ctrlc", harbench_job_finished=job_finished), "harbench-ctrlc", "0.1")
    results = str(tmp_path / "r")
    path = str(write_suite(tiny_suite()))
    res = CliRunner().invoke(main, ["run", path, "--results", results, "-q", "--set", "seeds=[1]"])
    assert res.exit_code == 130, res.output
    assert "Aborted" not in res.output and f"harbench run {path} --resume" in res.output
    run = Store(results).resolve_run("latest")
    assert run["status"] == "interrupted"
    assert "# --set seeds=[1]" in run["suite_yaml"] and yaml.safe_load(run["suite_yaml"])["seeds"] == [1]
    rows = Store(results).job_rows(int(run["id"]))
    assert len(rows) == 1 and rows[0]["seed"] == 1


def test_a_plugins_warning_is_one_line_not_a_source_listing(tmp_path, capsys):
    """A dataset's ``warnings.warn`` (dropped windows) printed as ``file.py:212: UserWarning: ...`` plus the source
    line of the call; through the CLI it is one ``warning:`` line."""
    import warnings

    from harbench.cli import main

    before = warnings.showwarning
    try:
        (tmp_path / "s.yaml").write_text("name: s\ndatasets: [synthetic-drift]\nhardware: [cpu]\nmethods: [generic]\n")
        with pytest.raises(SystemExit):
            main(["validate", str(tmp_path / "s.yaml")])
        capsys.readouterr()
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("sp-sw-har: dropped 12 windows\n(shorter than 2.56 s)", UserWarning, stacklevel=1)
        err = capsys.readouterr().err
        assert err == "warning: sp-sw-har: dropped 12 windows (shorter than 2.56 s)\n", err
    finally:
        warnings.showwarning = before
