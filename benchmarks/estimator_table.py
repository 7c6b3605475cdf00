"""Regenerate the estimator tables of docs/devices.md and the device plugins' pages (docs/plugins/) from measurements.

Runs ``harbench estimator-check rpi4 --measurements CSV --shots 1,5,10,50 --repeats 5 --format markdown`` and puts
its output between the ``<!-- estimator-table:rpi4 -->`` and ``<!-- /estimator-table:rpi4 -->`` markers of each
file (nothing in those tables is typed by hand). ``--check`` only says whether the files are current.

Usage: python benchmarks/estimator_table.py [CSV] [--check]
(default CSV: $HARBENCH_RPI4_LATENCY/nasbench201-raspi4-dev.csv, else ../shared/data/rpi4-latency/...)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "docs" / "devices.md", ROOT / "docs" / "plugins" / "raspberrypi.md",
         ROOT / "docs" / "plugins" / "devicekit.md"]
COMMAND = ["estimator-check", "rpi4", "--shots", "1,5,10,50", "--repeats", "5", "--min-ms", "1", "--format", "markdown"]


def default_csv() -> Path:
    folder = os.environ.get("HARBENCH_RPI4_LATENCY") or str(ROOT.parent / "shared" / "data" / "rpi4-latency")
    return Path(folder) / "nasbench201-raspi4-dev.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="?", type=Path, default=default_csv())
    parser.add_argument("--check", action="store_true", help="exit 1 when a file's table differs")
    args = parser.parse_args()
    if not args.csv.is_file():
        print(f"no measurements file {args.csv}: pass one, or set HARBENCH_RPI4_LATENCY", file=sys.stderr)
        return 2
    harbench = Path(sys.executable).with_name("harbench")
    table = subprocess.run([str(harbench), *COMMAND, "--measurements", str(args.csv)], check=True,
                           capture_output=True, text=True).stdout.strip()
    command = "harbench " + " ".join(COMMAND[:2] + ["--measurements", args.csv.name] + COMMAND[2:])
    block = f"<!-- estimator-table:rpi4 -->\n`{command}`\n\n{table}\n<!-- /estimator-table:rpi4 -->"
    stale = []
    for path in FILES:
        text = path.read_text()
        new = re.sub(r"<!-- estimator-table:rpi4 -->.*?<!-- /estimator-table:rpi4 -->", lambda _: block, text,
                     flags=re.S)
        if new == text and block not in text:
            print(f"{path}: no estimator-table:rpi4 markers", file=sys.stderr)
            return 2
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new)
    for path in stale:
        print(f"{'stale' if args.check else 'updated'}: {path.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
