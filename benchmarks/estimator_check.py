"""Speed of ``harbench estimator-check``: checking every architecture of a measurements CSV (target: 5,000
architectures in <= 60 s on 2 cores, 10 shots, 5 repeats), as a subprocess, median of ``--repeat`` runs.

Also prints where the time goes in-process: reading the CSV, the traced-op features (composed block traces,
shared by architectures with the same live cell), and the fits and scoring.

Usage: python benchmarks/estimator_check.py [CSV] [--repeat N]
(default CSV: $HARBENCH_RPI4_LATENCY/nasbench201-raspi4-dev.csv, else ../shared/data/rpi4-latency/...)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 60.0


def default_csv() -> Path:
    folder = os.environ.get("HARBENCH_RPI4_LATENCY") or str(Path(__file__).resolve().parents[2] / "shared" / "data" / "rpi4-latency")
    return Path(folder) / "nasbench201-raspi4-dev.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="?", type=Path, default=default_csv())
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.csv.is_file():
        print(f"no measurements file {args.csv}: pass one, or set HARBENCH_RPI4_LATENCY", file=sys.stderr)
        return 2
    harbench = Path(sys.executable).with_name("harbench")
    command = [str(harbench), "estimator-check", "rpi4", "--measurements", str(args.csv), "--shots", "10",
               "--repeats", "5", "--format", "json"]
    walls = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t0)

    from harbench_devicekit.check import feature_matrix, run_check, shipped_unit
    from harbench_devicekit.measurements import read_measurements
    from harbench_raspberrypi.plugin import PROFILES

    t0 = time.perf_counter()
    data = read_measurements(args.csv)
    t1 = time.perf_counter()
    unit, profile = shipped_unit([PROFILES], "rpi4")
    feature_matrix(data, unit)
    t2 = time.perf_counter()
    run_check("rpi4", data, unit, profile, [10], repeats=5)
    t3 = time.perf_counter()
    median = statistics.median(walls)
    print(f"architectures: {len(data.rows)}; cores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.1f}")
    print(f"estimator-check (subprocess, 10 shots, 5 repeats): median {median:.1f} s over {len(walls)} runs "
          f"(min {min(walls):.1f}, max {max(walls):.1f}); target <= {TARGET_S:.0f} s -> "
          f"{'met' if median <= TARGET_S else 'NOT met'}")
    print(f"in-process: read CSV {t1 - t0:.2f} s, features {t2 - t1:.2f} s, check (features again + fits) {t3 - t2:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
