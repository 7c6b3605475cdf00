"""Adapt and inference memory per job: measured in the adapt process on ``cpu``, estimated on device targets, and
a job that does not fit the device's usable memory is skipped (or warned about) with what it needs."""

from __future__ import annotations

import pytest

from harbench import Hardware, HardwareInfo, InferenceCost, PhaseCost
from harbench.plugins import Registry
from harbench.results.report import ReportOptions, build_report
from harbench.results.store import Store
from harbench.run import Runner
from harbench.run.job import memory_fit
from harbench.suite import parse_suite

from .conftest import FAST_CPU, plugin_module

# a planted effect: 72 adapt windows in batches of 64, so full fine-tuning keeps tens of MB of activations
BIG = "{users: 4, windows: 16, sessions: 2, k: 12, unseen_windows: 3}"
TINY = "{users: 4, windows: 8, sessions: 2, k: 3, unseen_windows: 3}"


def suite(methods: str, hardware: str, data: str = TINY, extra: str = "") -> str:
    return f"""
name: memory
datasets: [{{name: synthetic-drift, params: {data}}}]
methods: {methods}
hardware: [{hardware}]
seeds: [0]
target_users: 1
generic: {{epochs: 1}}
{extra}
"""


def run(registry, text, tmp_path):
    summary = Runner(parse_suite(text, "memory.yaml", registry), registry, Store(tmp_path)).run()
    return summary, Store(tmp_path).job_rows(summary.run_id)


def by_method(rows):
    return {r["method"]: r for r in rows}


def test_measured_adapt_memory_orders_full_over_last_over_generic(tmp_path):
    """Run as a user runs it, in a fresh ``harbench run`` process: measured in-process after other tests in the same
    pytest worker, the job processes' RSS baseline carried that worker's history (full 31 vs last 27 MB, against
    48-50 vs 30 MB in a fresh process under ATEN_CPU_CAPABILITY=default and =avx2)."""
    import os
    import subprocess
    import sys

    methods = ("[generic, {name: finetune-last, params: {epochs: 1, batch_size: 64}}, "
               "{name: finetune-full, params: {epochs: 1, batch_size: 64}}]")
    (tmp_path / "memory.yaml").write_text(suite(methods, FAST_CPU, BIG))
    env = {**os.environ, "HARBENCH_LOAD_PLUGINS": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "harbench.cli", "run", str(tmp_path / "memory.yaml"), "--results",
                           str(tmp_path / "r"), "-q"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    store = Store(tmp_path / "r")
    rows = store.job_rows(int(store.resolve_run("latest")["id"]))
    assert [r["status"] for r in rows] == ["ok"] * 3, [r["error"] for r in rows]
    m = {k: r["adapt_peak_mb"] for k, r in by_method(rows).items()}
    # measured in the adapt process (RSS high-water mark over its RSS at go): full keeps every layer's
    # activations, gradients and two Adam moments; last only the classifier's; generic allocates nothing
    assert m["finetune-full"] > m["finetune-last"] + 5.0 and m["finetune-last"] > m["generic"] + 5.0, m
    assert "rss" in by_method(rows)["finetune-full"]["provenance"]["adapt_extra"]["memory"]["method"]
    row = by_method(rows)["generic"]
    weights_mb = row["model_kb"] / 1024
    assert weights_mb < row["infer_peak_mb"] < weights_mb + 5.0  # weights + one window + a few activations


def _smallboard():
    class Board(Hardware):
        """An estimated target with 50 MB usable memory that models 100 MB for any adapt phase that trains."""

        name = "smallboard"

        def describe(self):
            return HardwareInfo(name="smallboard", processor="a model", memory_gb=0.0625, mode="estimated",
                                usable_memory_mb=50.0)

        def run_adapt(self, adapt):
            result = adapt()
            need = 100.0 if result.facts.optimizer_steps else 1.0
            return result, PhaseCost(0.1, 1.0, 0.5, "model", peak_mb=need)

        def run_inference(self, model, example):
            return InferenceCost([0.001], 0.01, 0.005, "model", peak_mb=0.5)

    return Board


@pytest.mark.parametrize("check", ["skip", "warn"])
def test_a_job_that_does_not_fit_is_skipped_with_what_it_needs(registry, tmp_path, check):
    registry.add_plugin(plugin_module("board", harbench_register_hardware=lambda register: register(_smallboard())),
                        "harbench-board", "0.1")
    methods = "[generic, {name: finetune-last, params: {epochs: 1}}]"
    summary, rows = run(registry, suite(methods, "smallboard", extra=f"memory_check: {check}"), tmp_path)
    rows = by_method(rows)
    assert rows["generic"]["status"] == "ok" and rows["generic"]["adapt_peak_mb"] == 1.0
    report = build_report(Store(tmp_path).resolve_run("latest"), list(rows.values()), ReportOptions())
    notes = "\n".join(report.notes)
    if check == "skip":
        assert summary.skipped == 1 and rows["finetune-last"]["status"] == "skipped"
        assert rows["finetune-last"]["error"] == "does not fit on smallboard: needs 100.0 MB, device has 50 MB"
    else:
        assert summary.ok == 2 and rows["finetune-last"]["adapt_peak_mb"] == 100.0
        assert rows["finetune-last"]["facts"]["memory_check"] == ("does not fit on smallboard: needs 100.0 MB, "
                                                                  "device has 50 MB")
    assert "smallboard: does not fit in memory: finetune-last [epochs=1] (needs 100.0 MB, device has 50 MB)" in notes


def test_memory_fit_says_what_is_needed_only_when_it_does_not_fit():
    assert memory_fit(120.04, 100.0) == "needs 120.0 MB, device has 100 MB"
    assert memory_fit(99.0, 100.0) is None and memory_fit(None, 100.0) is None and memory_fit(5e3, None) is None


def test_a_device_profile_with_too_little_memory_skips_full_fine_tuning(tmp_path, monkeypatch):
    """The estimated ``device`` target (devicekit) with a profile whose usable memory lies between what
    finetune-last and finetune-full need: the estimate orders them, and the full fine-tuning job is skipped."""
    pytest.importorskip("harbench_devicekit")
    registry = Registry()
    registry.load_entry_points(allowed=["harbench-devicekit"])
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "tiny-board.yaml").write_text(PROFILE)
    monkeypatch.setenv("HARBENCH_PROFILE_DIR", str(folder))
    methods = ("[generic, {name: finetune-last, params: {epochs: 1}}, {name: finetune-full, params: {epochs: 1}}]")
    hardware = "{name: device, params: {profile: tiny-board}}"
    summary, rows = run(registry, suite(methods, hardware), tmp_path / "r")
    rows = by_method(rows)
    assert rows["generic"]["status"] == rows["finetune-last"]["status"] == "ok"
    assert rows["generic"]["adapt_peak_mb"] == 0.0 < rows["finetune-last"]["adapt_peak_mb"] < 2.0
    assert rows["finetune-full"]["status"] == "skipped"
    assert rows["finetune-full"]["error"].startswith("does not fit on device: needs ")
    assert rows["finetune-full"]["error"].endswith(" MB, device has 2 MB")
    assert float(rows["finetune-full"]["error"].split("needs ")[1].split(" MB")[0]) > 2.0


PROFILE = """
name: tiny-board
processor: {value: test board, source: test}
memory_gb: {value: 1, source: test}
usable_memory_mb: {value: 2, source: "test: too small for full fine-tuning"}
units:
  cpu:
    peak_flops: {value: 1.0e+10, source: test}
    bandwidth_bytes_s: {value: 1.0e+9, source: test}
    cores: {value: 1, source: test}
power:
  idle_w: {value: 1.0, source: test}
  load_w: {value: 2.0, source: test}
calibration:
  status: uncalibrated
  cpu: {t_call_s: 0.0, t_op_s: 1.0e-6, eta_c: 0.5, eta_m: 0.5, source: test}
"""
