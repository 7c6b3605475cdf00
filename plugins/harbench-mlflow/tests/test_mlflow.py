"""harbench-mlflow logs a real `harbench run` to a local MLflow file store (never a server): one parent run with the
suite and the job counts, one child run per job whose parameters and metrics are the job's as the store holds them
(`harbench.load`), and the report (decision view first) and the figures as artifacts."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import harbench
from harbench.testing import FAST_CPU, TINY_DATA

mlflow = pytest.importorskip("mlflow")

SUITE = f"""
name: mlflow-tiny
datasets:
  - name: synthetic-drift
    params: {dict(TINY_DATA)}
methods:
  - generic
  - name: finetune-last
    params: {{epochs: 2}}
hardware:
  - name: cpu
    params: {dict(FAST_CPU)}
seeds: [0]
target_users: 2
generic: {{epochs: 1}}
workers: 1
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARBENCH_MLFLOW", "MLFLOW_"))}
    return {**env, "HARBENCH_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
            "MLFLOW_ALLOW_FILE_STORE": "true", **extra}  # (MLflow 3 keeps the file store behind this opt-in)


def _harbench(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("harbench")
    return subprocess.run([str(exe), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_a_run_is_logged_with_every_job_metric_and_the_views(tmp_path, monkeypatch):
    (tmp_path / "suite.yaml").write_text(SUITE)
    store = tmp_path / "mlruns"
    env = _env(tmp_path, HARBENCH_MLFLOW=f"file:{store}", HARBENCH_MLFLOW_EXPERIMENT="tiny")
    res = _harbench("run", "suite.yaml", "--results", "results", "-q", env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.tracking.MlflowClient(tracking_uri=f"file:{store}")
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    frame = harbench.load("latest", results=str(tmp_path / "results"))
    assert parent.data.params["suite"] == "mlflow-tiny"
    assert parent.data.metrics["jobs_ok"] == len(frame) == len(children) == 4  # 2 methods x 2 users
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}

    # every job: its identity as parameters, every numeric metric as the store holds it
    for _, job in frame.iterrows():
        hits = [c for c in children if (c.data.params["method"], c.data.params["user"]) == (job["method"], job["user"])]
        assert len(hits) == 1
        logged = hits[0].data
        assert logged.params["hardware"] == "cpu" and logged.params["seed"] == "0"
        numeric = {k: float(v) for k, v in job.items()
                   if k not in ("run_id", "seed") and isinstance(v, (int, float)) and not isinstance(v, bool)
                   and math.isfinite(v)}
        assert {"acc_seen", "latency_ms_p50", "adapt_s"} <= set(numeric)
        for name, value in numeric.items():
            assert logged.metrics[name] == pytest.approx(value, rel=1e-12), name
        assert logged.tags["harbench.metric.energy_method"] == job["energy_method"]
    assert any(c.data.params.get("method.epochs") == "2" for c in children)

    # the views: the report as harbench prints it (decision view first) and the figures
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"report.md", "report.json"} <= artifacts
    report = Path(client.download_artifacts(parent.info.run_id, "report.md", str(tmp_path))).read_text()
    assert report.startswith("Accuracy (once per method configuration)")
    assert report.strip() == _harbench("report", "--results", "results", env=env, cwd=tmp_path).stdout.strip()
    if "figures" in artifacts:
        assert {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "figures")} >= {"energy.png"}


def test_without_the_setting_the_plugin_implements_no_hook(tmp_path):
    """Installed but not asked for: no hook, so a run is what it would be without the plugin (warm runs included)."""
    code = "import harbench_mlflow.plugin as p; print(hasattr(p, 'harbench_job_finished'), p.logger)"
    out = subprocess.run([sys.executable, "-c", code], env=_env(tmp_path), capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["False", "None"], out.stderr
    out = subprocess.run([sys.executable, "-c", code], env=_env(tmp_path, HARBENCH_MLFLOW=f"file:{tmp_path}/m"),
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[0] == "True", out.stderr
