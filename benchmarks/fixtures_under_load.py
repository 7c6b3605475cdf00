"""The README's pytest-benchmark regression commands on an unchanged method while another process loads a core.

    python benchmarks/fixtures_under_load.py [--method finetune-last] [--threads 1]

Runs ``pytest tests/benchmarks -k 'test_inference and METHOD' --benchmark-autosave`` on an idle machine, then the
same with ``--benchmark-compare --benchmark-compare-fail=median:10%`` while a busy-loop process holds one core, and
prints both medians, their ratio and the comparison's exit status. ``--threads`` is the fixtures' torch thread count
(``--harbench-threads``; 1 is the default since the fixtures pin it): with torch's default (one per core) the
unchanged method's median moved +47-52 % under such load and the comparison failed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _burn(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def _pytest(method: str, threads: int, storage: str, *extra: str) -> tuple[int, float | None]:
    out = Path(storage) / "last.json"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:randomly", str(ROOT / "tests" / "benchmarks"),
           "-k", f"test_inference and {method}", "--harbench-threads", str(threads),
           f"--benchmark-storage=file://{storage}", f"--benchmark-json={out}", *extra]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    medians = [b["stats"]["median"] for b in json.loads(out.read_text())["benchmarks"]] if out.exists() else []
    return res.returncode, (medians[0] if medians else None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="finetune-last")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as storage:
        rc0, idle = _pytest(a.method, a.threads, storage, "--benchmark-autosave")
        stop = multiprocessing.Event()
        burner = multiprocessing.Process(target=_burn, args=(stop,), daemon=True)
        burner.start()
        try:
            rc1, loaded = _pytest(a.method, a.threads, storage, "--benchmark-compare",
                                  "--benchmark-compare-fail=median:10%")
        finally:
            stop.set()
            burner.join(5)
    ratio = f"{loaded / idle:.2f}" if idle and loaded else "—"
    print(f"method {a.method}, {a.threads} thread(s): median idle {idle and idle * 1e3:.3f} ms (exit {rc0}), "
          f"under one busy core {loaded and loaded * 1e3:.3f} ms (exit {rc1}); ratio {ratio}")


if __name__ == "__main__":
    main()
