"""The rpi4 estimator against 5,000 latencies measured on a real Raspberry Pi 4 (HW-NAS-Bench; the shared
``rpi4-latency`` folder beside the clone, which CI points ``HARBENCH_RPI4_LATENCY`` at). Skips elsewhere.

What it asserts is what opmodel-v1 reached with 10 shots over 5 seeded repeats (median ρ 0.972, MAPE 11.9 %,
68.1 % within ±10 %; spreads (max − min) over the repeats 0.006, 2.4 pt and 16.3 pt), each with a margin of at
least twice that spread. The goals of issue 37 were ρ ≥ 0.95, MAPE ≤ 12 %, ≥ 60 % within ±10 %: the medians reach
all three, MAPE by 0.1 pt only, so the assertion on it is the reached value plus the margin, not the goal. The features come from traced shapes only (no kernel runs), so the numbers do not depend on the
host's SIMD kernels (ATEN_CPU_CAPABILITY).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from harbench_devicekit.cli_check import estimator_check_command
from harbench_raspberrypi.plugin import RaspberryPi4  # noqa: F401 - registers the rpi4 target

FOLDER = os.environ.get("HARBENCH_RPI4_LATENCY")
CSV = Path(FOLDER or "../shared/data/rpi4-latency") / "nasbench201-raspi4-dev.csv"

pytestmark = pytest.mark.skipif(not FOLDER or not CSV.is_file(),
                                reason=f"measured Raspberry Pi 4 latencies not found: set HARBENCH_RPI4_LATENCY to "
                                       f"the rpi4-latency folder (wanted {CSV})")


def test_ten_shot_estimator_check_on_the_measured_board():
    res = CliRunner().invoke(estimator_check_command, ["rpi4", "--measurements", str(CSV), "--shots", "10",
                                    "--repeats", "5", "--min-ms", "1", "--format", "json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["rows"] == 5000 and out["excluded"] == 103  # the sub-millisecond rows, reported apart
    assert out["spearman"]["median"] >= 0.96  # reached 0.972 (0.969-0.975)
    assert out["mape"]["median"] <= 16.7  # reached 11.9 % (11.6-14.0)
    assert out["within_10"]["median"] >= 35.5  # reached 68.1 % (52.4-68.7)
    assert out["interval_coverage"]["median"] >= 50.0  # reached 86.1 % (63.8-99.0): the interval brackets most rows
