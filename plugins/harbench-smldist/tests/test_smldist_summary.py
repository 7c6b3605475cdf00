"""The report summary on fabricated export rows: grouping, ratios, deltas and the head tally."""

from __future__ import annotations

from harbench_smldist.summary import summarize


def _row(variant: str, seed: int, acc: float, f1: float, params: int, flops: float, latency: float, head: str, **kw):
    return {
        "method": "smldist", "method_params": {"variant": variant, "lambda_f": kw.get("lambda_f", 1.0)},
        "variant": f"variant={variant}", "hardware": "cpu", "seed": seed, "status": kw.get("status", "ok"),
        "user": "u00", "acc_seen": acc, "f1_seen": f1, "acc_unseen": acc - 0.1, "params": params, "flops": flops,
        "latency_ms_p50": latency, "facts": {"head": head, "val_acc": acc},
    }


ROWS = [
    _row("teacher", 0, 0.90, 0.88, 700_000, 22e6, 4.0, "fused"),
    _row("teacher", 1, 0.92, 0.90, 700_000, 22e6, 4.2, "fused"),
    _row("smldist", 0, 0.89, 0.87, 130_000, 3.5e6, 1.0, "memory"),
    _row("smldist", 1, 0.91, 0.89, 130_000, 3.5e6, 1.0, "intuition"),
    _row("student-hinton", 0, 0.88, 0.86, 130_000, 3.5e6, 1.0, "memory"),
    _row("student-hinton", 1, 0.88, 0.86, 130_000, 3.5e6, 1.0, "memory"),
    _row("student-scratch", 0, 0.80, 0.78, 130_000, 3.5e6, 1.0, "fused"),
    _row("student-scratch", 1, 0.50, 0.40, 130_000, 3.5e6, 1.0, "fused", status="failed"),
    {"method": "generic", "status": "ok", "acc_seen": 0.5},
]


def test_summary_table_and_claims():
    out = summarize(ROWS)
    assert out["headers"][1] == "variant"
    variants = [r[1] for r in out["rows"]]
    assert variants == ["teacher", "student-scratch", "student-hinton", "smldist"]  # paper order, ours only
    teacher, scratch, _, ours = out["rows"]
    assert teacher[2] == 2 and scratch[2] == 1  # the failed job is left out
    assert teacher[6] == "91.0 ± 1.0" and ours[6] == "90.0 ± 1.0"
    assert teacher[8] == "81.0" and teacher[9] == "91.0"  # unseen and validation: means only
    assert ours[3] == "130k" and teacher[4] == "22.00M"
    assert ours[-1] in ("memory 1, intuition 1", "intuition 1, memory 1")
    note = out["note"]
    assert "params 5.4x fewer" in note and "FLOPs 6.3x fewer" in note and "latency 4.1x lower" in note
    assert "acc -1.0 pts" in note and "macro-F1 -1.0 pts" in note
    assert "smldist - student-hinton: acc +2.0 pts" in note
    assert "smldist - student-scratch: acc +10.0 pts" in note


def test_summary_separates_settings_and_ignores_foreign_runs():
    rows = ROWS + [_row("smldist", 0, 0.7, 0.7, 130_000, 3.5e6, 1.0, "memory", lambda_f=0.0)]
    out = summarize(rows)
    assert any(r[1].startswith("#2 ") for r in out["rows"]) and "#1 = " in out["note"]
    assert summarize([{"method": "generic", "status": "ok"}]) is None
    assert summarize([]) is None
