"""The benchmarks still run: a refactor that moves a name they import fails here, not months later when someone
wants the figures. Tiny sizes only; the figures themselves are never asserted (the machines are shared)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_store_benchmark_runs_every_reading_command_on_a_small_fabricated_run(tmp_path):
    env = {**os.environ, "HARBENCH_CACHE_DIR": str(tmp_path / "user-cache"), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scaling.py"), "--parts", "store",
                          "--store-jobs", "200"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.startswith("machine: ")
    commands = [line for line in res.stdout.splitlines() if line.startswith("| harbench") or "export_run" in line]
    assert len(commands) == 9, res.stdout
    assert all("exit 0" in line for line in commands), res.stdout


PINNED = '''
import torch

def test_pinned(harbench_method):
    bench = harbench_method("finetune-last", epochs=1)
    bench.inference()
    assert torch.get_num_threads() == {threads}, torch.get_num_threads()
'''


def test_the_benchmark_fixtures_pin_torch_to_one_thread(tmp_path):
    """With torch's default threads (one per core) an unchanged method's median moved +47-52 % while another
    process ran, and ``--benchmark-compare-fail=median:10%`` failed it; the fixtures now time on one thread, as the
    suites run jobs, whatever the environment says (OMP_NUM_THREADS unset here)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["HARBENCH_LOAD_PLUGINS"] = ""
    for threads, extra in ((1, []), (2, ["--harbench-threads", "2"])):
        (tmp_path / "test_pinned.py").write_text(PINNED.format(threads=threads))
        res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                              str(tmp_path / "test_pinned.py"), "--harbench-generic-epochs", "1", *extra],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0 and "1 passed" in res.stdout, res.stdout[-3000:] + res.stderr[-2000:]


def test_the_estimator_check_benchmark_runs_on_a_small_fabricated_csv(tmp_path):
    ops = ["skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    lines = ["arch_index,arch,latency_ms"]
    for i in range(16):
        a, b, c = ops[i % 4], ops[(i // 4) % 4], ops[(i + 1) % 4]
        lines.append(f"{i},|{a}~0|+|{b}~0|{c}~1|+|{a}~0|{b}~1|{c}~2|,{5.0 + 2.5 * i}")
    csv = tmp_path / "tiny.csv"
    csv.write_text("\n".join(lines) + "\n")
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "estimator_check.py"), str(csv), "--repeat", "1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "architectures: 16" in res.stdout and "estimator-check (subprocess" in res.stdout
