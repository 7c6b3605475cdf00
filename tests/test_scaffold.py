"""harbench new: every scaffold passes its own conformance tests; a method scaffold installs and runs in a suite.

The end-to-end test installs the scaffolded distribution with pip into a private folder (``--target``, not the
shared virtualenv) and runs ``harbench run`` in a subprocess with that folder on PYTHONPATH, so the plugin is
found through its real ``harbench`` entry point exactly as after ``pip install``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harbench.cli import main
from harbench.scaffold import names_for, scaffold


@pytest.fixture(autouse=True)
def builtins_only(monkeypatch):
    monkeypatch.setenv("HARBENCH_LOAD_PLUGINS", "")


def test_names():
    n = names_for("method", "my-method")
    assert (n["dist"], n["package"], n["cls"]) == ("harbench-my-method", "harbench_my_method", "MyMethod")
    assert names_for("metric", "harbench-balanced_acc")["name"] == "balanced_acc"
    for bad in ("My Method", "1st", "a--b", "", "x-"):
        with pytest.raises(ValueError, match="plugin name"):
            names_for("method", bad)
    with pytest.raises(ValueError, match="unknown plugin kind"):
        names_for("widget", "w")


def test_cli_new_refuses_to_overwrite(tmp_path):
    res = CliRunner().invoke(main, ["new", "metric", "balanced-acc", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    root = tmp_path / "harbench-balanced-acc"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "README.md", "harbench_balanced_acc/__init__.py", "harbench_balanced_acc/plugin.py", "pyproject.toml",
        "suite.yaml", "tests/test_conformance.py"]
    assert 'balanced-acc = "harbench_balanced_acc.plugin"' in (root / "pyproject.toml").read_text()
    res = CliRunner().invoke(main, ["new", "metric", "balanced-acc", "-o", str(tmp_path)])
    assert res.exit_code == 2 and "already exists" in res.output


def run_generated_tests(root: Path, package: str, monkeypatch) -> int:
    """Import the scaffold's package and its tests from the folder and call every test function."""
    monkeypatch.syspath_prepend(str(root))
    spec = importlib.util.spec_from_file_location(f"{package}_tests", root / "tests" / "test_conformance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tests = [fn for name, fn in vars(module).items() if name.startswith("test_")]
    for fn in tests:
        fn()
    return len(tests)


@pytest.mark.parametrize("kind", ["dataset", "hardware", "metric"])
def test_scaffolds_pass_their_own_conformance_tests(kind, tmp_path, monkeypatch):
    made = scaffold(kind, f"tiny-{kind}", tmp_path)
    assert run_generated_tests(made.root, made.package, monkeypatch) >= 1


def test_method_scaffold_installs_and_runs_in_a_suite(tmp_path, monkeypatch):
    made = scaffold("method", "my-method", tmp_path)
    assert run_generated_tests(made.root, made.package, monkeypatch) == 2
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                              "--target", str(site), str(made.root)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    assert (site / "harbench_my_method-0.1.0.dist-info" / "entry_points.txt").read_text().count("my-method") == 1
    suite = tmp_path / "tiny.yaml"
    suite.write_text("""
name: scaffold-e2e
datasets: [{name: synthetic-drift, params: {users: 4, windows: 8, sessions: 2, k: 3, unseen_windows: 3}}]
methods: [generic, {name: my-method, params: {epochs: 1}}]
hardware: [{name: cpu, params: {min_duration_s: 0.0, min_count: 5, energy_min_s: 0.0, warmup: 1, energy: false, threads: 1}}]
target_users: 1
generic: {epochs: 1}
""")
    env = {**os.environ, "PYTHONPATH": str(site), "HARBENCH_LOAD_PLUGINS": "harbench-my-method"}
    harbench = [sys.executable, "-c", "from harbench.cli import main; main()"]
    res = subprocess.run([*harbench, "run", str(suite), "--results", str(tmp_path / "r"), "-q"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "my-method" in res.stdout and "2 ok, 0 failed" in res.stdout
    listed = subprocess.run([*harbench, "plugins"], env=env, capture_output=True, text=True, timeout=120)
    assert "harbench-my-method" in listed.stdout
