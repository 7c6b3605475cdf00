"""Lifetime cost: monitoring power, real-time factor, the adapt phase's share of a day and the break-even hours,
on hand-worked examples; the report's lifetime table and notes."""

from __future__ import annotations

import dataclasses

import pytest

from harbench import InferenceCost, PhaseCost
from harbench.builtin.metrics import CORE
from harbench.data.synthetic import STRIDE, SyntheticConfig, describe
from harbench.results.lifetime import adapt_share, breakeven_h, lifetime_notes, lifetime_summary
from harbench.testing import tiny_outputs


def outputs(stride, adapt_j=10.0, mj=2.0, latency=(0.1, 0.2, 0.3)):
    base = tiny_outputs()
    extra = {k: v for k, v in base.info.extra.items() if k != "stride"}
    if stride is not None:
        extra["stride"] = stride
    info = dataclasses.replace(base.info, rate_hz=50.0, window=50, extra=extra)
    return dataclasses.replace(base, info=info, adapt=PhaseCost(1.0, adapt_j, None, "hand"),
                               inference=InferenceCost(list(latency), mj / 1000.0, None, "hand"))


def metric(name, out):
    return CORE[name][3](out)


def test_lifetime_metrics_follow_from_their_inputs_by_hand():
    # 50 Hz, a window every 25 samples = 0.5 s: 2 windows per second
    out = outputs(stride=25)
    assert metric("infer_mw", out) == pytest.approx(4.0)  # 2 mJ x 2 /s
    assert metric("real_time_factor", out) == pytest.approx(0.4)  # median 0.2 s / 0.5 s
    day_j = 0.004 * 24 * 3600  # 4 mW for 24 h = 345.6 J
    assert metric("adapt_share_24h", out) == pytest.approx(10.0 / (10.0 + day_j))
    slow = outputs(stride=5)  # a window every 0.1 s: a 0.2 s inference cannot keep up
    assert metric("real_time_factor", slow) == pytest.approx(2.0) and metric("infer_mw", slow) == pytest.approx(20.0)
    back_to_back = outputs(stride=None)  # no stride declared: windows back to back (stride = window, 1 s)
    assert metric("infer_mw", back_to_back) == pytest.approx(2.0)
    no_energy = dataclasses.replace(out, inference=InferenceCost([0.2], None, None, "none"))
    assert metric("infer_mw", no_energy) is None and metric("adapt_share_24h", no_energy) is None


def test_breakeven_hours_by_hand():
    # A adapts for 100 J and monitors at 4 mW; B adapts for 10 J at 5 mW: 90 J / 1 mW = 90 000 s = 25 h
    assert breakeven_h(100.0, 4.0, 10.0, 5.0) == pytest.approx(25.0)
    assert breakeven_h(5.0, 4.0, 10.0, 5.0) == 0.0  # no dearer on either count: cheaper from the start
    assert breakeven_h(100.0, 6.0, 10.0, 5.0) is None  # dearer on both: never
    assert breakeven_h(5.0, 6.0, 10.0, 5.0) is None  # cheaper at first, dearer for good after 1.4 h
    assert adapt_share(0.0, 0.0) == 0.0 and adapt_share(1.0, None) is None


def test_the_synthetic_dataset_declares_its_stride():
    assert describe(SyntheticConfig()).extra["stride"] == STRIDE


def row(method, adapt_j, infer_mw, rtf, hardware="board", status="ok", **kw):
    return {"dataset": "d", "hardware": hardware, "method": method, "variant": "", "status": status, "user": "u",
            "adapt_j": adapt_j, "infer_mw": infer_mw, "real_time_factor": rtf, "adapt_peak_mb": 1.0,
            "adapt_share_24h": adapt_share(adapt_j, infer_mw), "facts": {}, **kw}


def test_report_table_and_notes():
    rows = [row("generic", 10.0, 5.0, 0.5), row("finetune-full", 50.0, 5.0, 0.5), row("lean", 100.0, 4.0, 1.5),
            row("finetune-full", None, None, None, hardware="tiny", status="skipped",
                error="does not fit on tiny: needs 9.0 MB, device has 2 MB")]
    table = lifetime_summary(rows)
    assert table is not None
    headers = table["headers"]
    lean = next(r for r in table["rows"] if r[2] == "lean")
    cell = dict(zip(headers, lean))
    assert cell["breakeven_h vs generic"] == "25.00"  # 90 J at 1 mW
    assert cell["breakeven_h vs finetune-full"] == "13.89"  # 50 J at 1 mW = 50 000 s
    assert "CANNOT KEEP UP" in cell["real_time_factor"]
    full = dict(zip(headers, next(r for r in table["rows"] if r[2] == "finetune-full")))
    assert full["breakeven_h vs finetune-full"] == "(baseline)" and full["breakeven_h vs generic"] == "never"
    notes = lifetime_notes(rows)
    assert "tiny: does not fit in memory: finetune-full (needs 9.0 MB, device has 2 MB)" in notes
    assert "board: cannot keep up with the window stride (real_time_factor > 1): lean" in notes
