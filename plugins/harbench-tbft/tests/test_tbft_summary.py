"""The report summary is a pure function of exported rows: checked on fabricated rows with known answers."""

from __future__ import annotations

import pytest

from harbench_tbft.summary import group_cells, summarize

# (block, acc_seen, adapt_j, adapt_s) for one cell with output drift; two seeds each, averaged by the summary
_OUTPUT_CELL = {
    "front": (0.50, 9.0, 0.9), "stage2": (0.60, 7.0, 0.7), "stage3": (0.70, 6.0, 0.6), "fc": (0.90, 3.0, 0.3),
    "all": (0.80, 10.0, 1.0), "auto": (0.90, 3.0, 0.3),
}


def _row(block, acc, joules, seconds, *, seed=0, drift="output", k=8, status="ok", method="tbft", auto_by="drift",
         trained=100):
    chosen = {"input": "front", "feature": "stage3", "output": "fc"}[drift] if block == "auto" else block
    return {
        "run_id": 1, "suite": "tbft", "dataset": "synthetic-drift",
        "dataset_params": {"adapt_context": {"output": "labels", "input": "sensor", "feature": "recovery"}[drift], "k": k},
        "user": "u00", "method": method, "method_params": {"block": block, "auto_by": auto_by, "epochs": 10},
        "variant": f"block={block}", "hardware": "cpu", "seed": seed, "status": status, "mode": "measured",
        "acc_seen": acc, "adapt_j": joules, "adapt_s": seconds, "adapt_flops": seconds * 1e9,
        "facts": {"backward_samples": trained,"block": chosen, "block_source": "declared-drift" if block == "auto" else "fixed", "drift": drift},
    }


def _cell_rows(**kw):
    rows = []
    for seed, shift in ((0, -0.02), (1, 0.02)):  # the seeds straddle the table's values
        for block, (acc, joules, seconds) in _OUTPUT_CELL.items():
            rows.append(_row(block, acc + shift, joules, seconds, seed=seed, **kw))
    return rows


def _column(table, name):
    return table["headers"].index(name)


def test_headline_numbers_of_one_cell():
    table = summarize(_cell_rows())
    row = table["rows"][0]
    assert row[_column(table, "TBFT block")] == "fc"
    assert row[_column(table, "Block Avg")] == "67.50"  # mean of 50, 60, 70, 90
    assert row[_column(table, "TBFT-BlockAvg")] == "+22.50"
    assert row[_column(table, "TBFT-all")] == "+10.00"
    assert row[_column(table, "save TBFT %")] == "70.00"  # 1 - 3/10
    assert row[_column(table, "save BlockAvg %")] == "37.50"  # 1 - mean(9, 7, 6, 3)/10
    assert "TBFT - Block Avg = +22.50 points" in table["note"]
    assert "front 10.00 %" in table["note"] and "fc 70.00 %" in table["note"]
    assert "output -> fc" in table["note"]
    assert "adapt_flops: front 10.00 %, stage2 30.00 %, stage3 40.00 %, fc 70.00 %" in table["note"]


def test_per_window_saving_removes_early_stopping():
    """fc stopped after a fifth of the windows that 'all' trained on: per window, its saving is smaller."""
    rows = _cell_rows()
    for r in rows:
        if r["method_params"]["block"] == "fc":
            r["adapt_j"], r["facts"]["backward_samples"] = 1.0, 20  # 0.05 J per window vs 0.10 for all
    table = summarize(rows)
    assert table["rows"][0][_column(table, "save TBFT %")] == "90.00"
    assert "Per trained window: front 10.00 %, stage2 30.00 %, stage3 40.00 %, fc 50.00 %" in table["note"]


def test_the_mean_row_averages_cells():
    rows = _cell_rows() + [
        _row(b, acc, j, s, drift="input", k=4)
        for b, (acc, j, s) in {"front": (0.9, 9.0, 0.9), "stage2": (0.8, 7.0, 0.7), "stage3": (0.7, 6.0, 0.6),
                               "fc": (0.6, 3.0, 0.3), "all": (0.9, 10.0, 1.0)}.items()
    ]
    table = summarize(rows)
    assert [r[0] for r in table["rows"]] == ["labels k=8", "sensor k=4", "mean"]
    gap = _column(table, "TBFT-BlockAvg")
    assert table["rows"][1][gap] == "+15.00"  # 90 - mean(90, 80, 70, 60)
    assert table["rows"][2][gap] == "+18.75"
    assert table["rows"][2][_column(table, "save TBFT %")] == "40.00"  # mean of 70 (fc) and 10 (front)


def test_falls_back_to_time_when_energy_is_missing():
    rows = _cell_rows()
    rows[0]["adapt_j"] = None
    table = summarize(rows)
    assert table["rows"][0][_column(table, "save TBFT %")] == "70.00"  # 1 - 0.3/1.0, from adapt_s
    assert "adapt_s" in table["note"] and "no energy measured" in table["note"]


def test_ignores_other_methods_and_failed_jobs():
    rows = _cell_rows() + [_row("fc", 0.0, 100.0, 10.0, status="failed"), _row("fc", 0.0, 100.0, 10.0, method="crop")]
    assert summarize(rows) == summarize(_cell_rows())


@pytest.mark.parametrize("missing", ["front", "all"])
def test_no_summary_without_every_single_block_and_all(missing):
    rows = [r for r in _cell_rows() if r["method_params"]["block"] != missing]
    assert summarize(rows) is None
    assert summarize([]) is None


def test_rgn_auto_is_its_own_column_and_not_a_separate_cell():
    rows = _cell_rows() + [_row("auto", 0.55, 4.0, 0.4, auto_by="rgn")]
    (cell,) = group_cells(rows)
    assert set(cell.rows) == {"front", "stage2", "stage3", "fc", "all", "auto", "auto-rgn"}
    table = summarize(rows)
    assert table["rows"][0][_column(table, "auto-rgn")] == "55.00"
