"""benchmarks/publish.py still runs (tiny sizes; its figures are never asserted: the machines are shared)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_publish_benchmark_runs_on_a_small_fabricated_run(tmp_path):
    env = {**os.environ, "HARBENCH_CACHE_DIR": str(tmp_path / "user-cache"), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "publish.py"), "--jobs", "200", "--repeat", "1"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [line for line in res.stdout.splitlines() if line.startswith("| harbench")]
    assert [line.split("|")[1].strip().split(" (")[0] for line in lines] == [
        "harbench publish", "harbench report --format json", "harbench report --format json", "harbench claims",
        "harbench claims", "harbench claims"], res.stdout
