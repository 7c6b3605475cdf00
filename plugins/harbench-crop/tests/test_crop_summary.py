"""ΔP / ΔG from fabricated export rows, computed by hand; intervals and verdicts through harbench.judge."""

from __future__ import annotations

import pytest
from harbench_crop import crop_claims, crop_detail, crop_summary
from harbench_crop.paper import BY_KEY

from harbench import Unit, judge

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels

DATASET = {"adapt_context": "sensor", "users": 14}


def row(method, user, seed, seen, unseen, *, variant="", params=None, status="ok", facts=None, hardware="cpu"):
    return {"run_id": "r1", "suite": "crop", "dataset": "synthetic-drift", "dataset_params": dict(DATASET),
            "user": user, "method": method, "method_params": params or {}, "variant": variant, "hardware": hardware,
            "seed": seed, "status": status, "acc_seen": seen, "acc_unseen": unseen, "facts": facts or {}}


def fabricated():
    rows = []
    for seed in (0, 1):
        rows += [
            row("generic", "u00", seed, 0.50, 0.90),
            row("generic", "u01", seed, 0.40, 0.80),
            # the matching fine-tuning (same epochs as crop) and a distractor with other epochs
            row("finetune-full", "u00", seed, 0.90, 0.50, variant="epochs=30", params={"epochs": 30}),
            row("finetune-full", "u01", seed, 0.80, 0.40, variant="epochs=30", params={"epochs": 30}),
            row("finetune-full", "u00", seed, 0.10, 0.10, variant="epochs=5", params={"epochs": 5}),
            row("finetune-full", "u01", seed, 0.10, 0.10, variant="epochs=5", params={"epochs": 5}),
        ]
    crop = {"epochs": 30, "tau": 0.05}
    rows += [
        row("crop", "u00", 0, 0.85, 0.70, params=crop, facts={"sparsity": 0.5, "selected_state": "mixed"}),
        row("crop", "u00", 1, 0.87, 0.74, params=crop, facts={"sparsity": 0.7, "selected_state": "final-finetune"}),
        row("crop", "u01", 0, 0.78, 0.60, params=crop, facts={"sparsity": 0.4, "selected_state": "final-finetune"}),
        row("crop", "u01", 1, 0.70, 0.62, params=crop, facts={"sparsity": 0.6, "selected_state": "final-finetune"}),
        row("crop", "u01", 2, 0.99, 0.99, params=crop, status="failed"),  # ignored
    ]
    return rows


def by_user(rows):
    detail = crop_detail(rows)
    h = detail["headers"]
    return {r[h.index("user")]: dict(zip(h, r)) for r in detail["rows"]}


def test_delta_p_and_delta_g_per_user_and_mean():
    rows = fabricated()
    users = by_user(rows)
    u00, u01, mean = users["u00"], users["u01"], users["mean of 2"]
    # u00: seeds give ΔP (35 − 20) = 15 and (37 − 16) = 21 → 18; ΔG (−5 + 20) = 15 and (−3 + 24) = 21 → 18
    assert u00["ΔP"] == pytest.approx(18.0) and u00["ΔG"] == pytest.approx(18.0)
    assert u00["CRoP−FT seen"] == pytest.approx(-4.0) and u00["CRoP−FT unseen"] == pytest.approx(22.0)
    assert u00["FT−generic seen"] == pytest.approx(40.0) and u00["FT−generic unseen"] == pytest.approx(-40.0)
    assert u00["sparsity"] == pytest.approx(0.6) and u00["mixed kept"] == pytest.approx(0.5) and u00["seeds"] == 2
    # u01: ΔP (38 − 20) = 18 and (30 − 18) = 12 → 15; ΔG (−2 + 20) = 18 and (−10 + 22) = 12 → 15
    assert u01["ΔP"] == pytest.approx(15.0) and u01["ΔG"] == pytest.approx(15.0) and u01["seeds"] == 2
    assert mean["ΔP"] == pytest.approx(16.5) and mean["ΔG"] == pytest.approx(16.5)
    assert mean["mixed kept"] == pytest.approx(0.25)
    assert mean["scenario"] == "synthetic-drift (adapt=sensor)"
    assert "epochs=30" in crop_summary(rows)["note"]


def test_single_finetune_variant_is_used_whatever_its_epochs():
    rows = [r for r in fabricated() if r.get("variant") != "epochs=30"]
    mean = by_user(rows)["mean of 2"]
    # the only variant left is fine-tuning at 10 % / 10 %: ΔG = CRoP's seen + unseen accuracy − 20 points
    expected_u00 = ((85 + 70 - 20) + (87 + 74 - 20)) / 2
    expected_u01 = ((78 + 60 - 20) + (70 + 62 - 20)) / 2
    assert mean["ΔG"] == pytest.approx((expected_u00 + expected_u01) / 2)


def test_without_finetune_only_delta_p_is_reported():
    rows = [r for r in fabricated() if r["method"] != "finetune-full"]
    mean = by_user(rows)["mean of 2"]
    assert mean["ΔP"] == pytest.approx(16.5) and mean["ΔG"] is None


def test_nothing_to_say_without_crop_or_generic():
    assert crop_summary([r for r in fabricated() if r["method"] != "crop"]) is None
    assert crop_summary([r for r in fabricated() if r["method"] != "generic"]) is None
    assert crop_summary([]) is None


def test_scenarios_are_kept_apart():
    other = []
    for r in fabricated():
        r2 = dict(r, dataset_params={"adapt_context": "recovery", "users": 14})
        other.append(r2)
    detail = crop_detail(fabricated() + other)
    scenarios = {r[0] for r in detail["rows"]}
    assert scenarios == {"synthetic-drift (adapt=sensor)", "synthetic-drift (adapt=recovery)"}
    assert len(detail["rows"]) == 6
    assert {r[0] for r in crop_summary(fabricated() + other)["rows"]} == scenarios


def population(deltas_g, ft_unseen):
    """One crop / generic / finetune-full triple per user and seed; CRoP's unseen accuracy sets ΔG per user."""
    rows = []
    for i, (dg, ftu) in enumerate(zip(deltas_g, ft_unseen)):
        user = f"u{i:02d}"
        for seed in (0, 1):
            jitter = 0.01 * (seed - 0.5) * (1 if i % 2 else -1)  # seeds differ per user; no seed-wide effect
            rows += [row("generic", user, seed, 0.50, 0.80),
                     row("finetune-full", user, seed, 0.90, 0.80 + ftu, params={"epochs": 30}),
                     row("crop", user, seed, 0.90, 0.80 + ftu + dg + jitter, params={"epochs": 30},
                         facts={"sparsity": 0.5, "selected_state": "mixed", "alpha_step1_end": -0.05})]
    return rows


def test_claims_use_per_user_means_and_harbench_judge():
    dg = [0.10, 0.12, 0.08, 0.11, 0.09, 0.10]
    rows = population(dg, [-0.3] * 6)
    claims = crop_claims(rows)[("synthetic-drift (adapt=sensor)", "")]
    # every user × seed is a unit (seeds are a level of the interval)
    units = {Unit(f"u{i:02d}", seed): 100 * (d + 0.01 * (seed - 0.5) * (1 if i % 2 else -1))
             for i, d in enumerate(dg) for seed in (0, 1)}
    expected = judge("ΔG > 0", units)
    assert claims["delta_g"].mean == pytest.approx(expected.mean) and claims["delta_g"].n_users == 6
    assert claims["delta_g"].seeds == 2 and "2 seeds × 6 users" in claims["delta_g"].method
    assert (claims["delta_g"].low, claims["delta_g"].high) == pytest.approx((expected.low, expected.high))
    assert claims["delta_g"].verdict == "reproduced"
    # FT − generic is −30 points for every user and seed: a deterministic fact that holds, not a test
    assert claims["premise"].verdict == "fact" and claims["premise"].fact_holds
    # the family: ΔP and ΔG are tested (the premise is a fact), Holm over the 2
    assert claims["delta_g"].family_size == 2 and claims["delta_g"].p_adjusted >= claims["delta_g"].p
    assert claims["delta_g"].claimed == BY_KEY["delta_g"].claimed and claims["delta_g"].half_size == "at least half"
    for key, verdict in claims.items():  # every number of a claim comes from paper.py
        paper = BY_KEY[key]
        assert (verdict.claimed, verdict.margin, verdict.threshold, verdict.direction, verdict.family) == (
            paper.claimed, paper.no_effect, paper.threshold, paper.direction, paper.family)
    summary = crop_summary(rows)
    line = dict(zip(summary["headers"], summary["rows"][0]))
    assert line["verdict"] == "reproduced" and line["users"] == 6 and line["seeds"] == 2
    assert line["ΔG Holm p"].endswith("(m=2)") and "Holm step-down" in summary["note"]
    assert line["ΔG [95 % CI]"] == f"+10.00 [{expected.low:+.2f}, {expected.high:+.2f}]" and line["α end of step 1"] == pytest.approx(-0.05)


def test_verdicts_not_reproduced_and_inconclusive():
    worse = crop_summary(population([-0.10, -0.12, -0.08, -0.11, -0.09, -0.10], [-0.3] * 6))
    assert dict(zip(worse["headers"], worse["rows"][0]))["verdict"] == "not reproduced"
    mixed = crop_summary(population([0.2, -0.2, 0.1, -0.1, 0.15, -0.15], [-0.3] * 6))
    assert dict(zip(mixed["headers"], mixed["rows"][0]))["verdict"] == "inconclusive"
    # fine-tuning gains on the unseen context: nothing to restore, so even a clearly positive ΔG cannot count
    no_premise = crop_summary(population([0.10, 0.12, 0.08, 0.11, 0.09, 0.10], [0.2] * 6))
    line = dict(zip(no_premise["headers"], no_premise["rows"][0]))
    assert line["verdict"] == "inconclusive (premise does not hold: a fact)"  # +20 points for every unit
    ft = [0.2, 0.25, 0.15, 0.22, 0.18, 0.2]  # the same with spread: tested, and contradicted
    line = dict(zip(no_premise["headers"], crop_summary(population([0.1] * 6, ft))["rows"][0]))
    assert line["verdict"] == "inconclusive (premise not reproduced)"
