"""`suites/real-sp-sw-har.yaml` as shipped, on the real sp-sw-har files: it validates and plans its whole grid
(2,160 jobs: 3 settings x 8 targets x 15 method configurations x 3 seeds x 2 targets), with every shared node
planned once. CI points ``HARBENCH_SP_SW_HAR`` at the deposit (``.ci/run``); elsewhere this skips, naming the
folder it wanted. The few-subject real-data runs are in plugins/harbench-datasets/tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from harbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
REAL = os.environ.get("HARBENCH_SP_SW_HAR")


@pytest.mark.skipif(not REAL or not Path(REAL).is_dir(),
                    reason=f"real sp-sw-har files not found: set HARBENCH_SP_SW_HAR to the deposit folder (wanted "
                           f"{REAL or '../shared/data/sp-sw-har'})")
def test_the_shipped_real_suite_validates_and_plans_its_whole_grid_on_the_real_files(monkeypatch, tmp_path):
    monkeypatch.setenv("HARBENCH_DATA", str(Path(REAL).parent))
    suite = str(ROOT / "suites" / "real-sp-sw-har.yaml")
    res = CliRunner().invoke(main, ["validate", suite])
    assert res.exit_code == 0 and "3 seed(s): 2160 jobs" in res.output, res.output
    res = CliRunner().invoke(main, ["run", suite, "--dry-run", "--results", str(tmp_path)])
    assert res.exit_code == 0, res.output
    counts = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:5]]
              for line in res.output.splitlines() if line.startswith("| ") and "node" not in line}
    assert counts == {"generic": ["9", "0", "9"], "prepare": ["135", "0", "135"], "adapt": ["1080", "0", "1080"],
                      "job": ["2160", "0", "2160"]}, res.output
    assert not (tmp_path / "harbench.sqlite").exists()  # a dry run writes no run
