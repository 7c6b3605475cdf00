"""The claims summary is a pure function of exported rows: checked on fabricated rows with planted effects."""

from __future__ import annotations

import pytest
from harbench_tbft.summary import cell_table, claims, summarize

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels

USERS = [f"u{i:02d}" for i in range(8)]
CONTEXT = {"input": "sensor", "feature": "recovery", "output": "labels"}
# accuracy per block for each drift type: input favours front (as the paper says), feature favours stage2 (not
# the paper's stage3), output favours fc
ACC = {
    "input": {"front": 0.90, "stage2": 0.70, "stage3": 0.65, "fc": 0.60, "all": 0.88},
    "feature": {"front": 0.70, "stage2": 0.90, "stage3": 0.75, "fc": 0.60, "all": 0.80},
    "output": {"front": 0.40, "stage2": 0.50, "stage3": 0.60, "fc": 0.95, "all": 0.70},
}
# adapt cost per block as a share of 'all': fc saves 80 %, Block Avg saves 1 - mean(.9, .8, .7, .2) = 35 %
COST = {"front": 0.9, "stage2": 0.8, "stage3": 0.7, "fc": 0.2, "all": 1.0}


def _row(drift, block, user, seed, *, method="tbft", freeze_bn=False, auto_by="drift", chosen=None, k=8,
         status="ok"):
    u = USERS.index(user)
    wobble = 0.01 * ((u * 7 + seed * 3 + 2 * len(block)) % 5 - 2)  # users differ a little; the planted effects are far larger
    acc = ACC[drift].get(block, ACC[drift]["front"]) + wobble
    cost = (1.0 + 0.1 * u) * COST.get(block, 1.0)
    return {
        "run_id": 1, "suite": "tbft", "dataset": "synthetic-drift",
        "dataset_params": {"adapt_context": CONTEXT[drift], "k": k}, "user": user, "method": method,
        "method_params": {"block": block, "auto_by": auto_by, "recipe": "auto", "freeze_bn": freeze_bn},
        "variant": f"block={block}", "hardware": "cpu", "seed": seed, "status": status, "mode": "measured",
        "acc_seen": acc, "adapt_j": 2.0 * cost, "adapt_s": cost, "adapt_flops": cost * 1e9,
        "facts": {"block": chosen or block, "drift": drift, "step_s": 0.01 * cost, "step_cpu_s": 0.008 * cost, "adapt_cpu_s": 0.5 * cost, "backward_samples": 48,
                  "block_shares": {"front": {"forward": 0.35, "backward": 0.34}, "stage2": {"forward": 0.33, "backward": 0.33},
                                   "stage3": {"forward": 0.32, "backward": 0.33}, "fc": {"forward": 0.0, "backward": 0.0}}},
    }


def _rows(drifts=("input", "feature", "output"), blocks=("front", "stage2", "stage3", "fc", "all"), **kw):
    return [_row(d, b, u, s, **kw) for d in drifts for b in blocks for u in USERS for s in (0, 1)]


def _by_claim(rows):
    return {(drift, r.claim.split(" (")[0]): r for _, drift, r, _ in claims(rows)}


def test_planted_block_effects_get_the_right_verdicts():
    found = _by_claim(_rows())
    assert found[("input", "input: front beats stage2")].verdict == "reproduced"
    assert found[("output", "output: fc beats stage3")].verdict == "reproduced"
    feature = found[("feature", "feature: stage3 beats stage2")]  # both blocks get the same wobble: -0.15 exactly
    assert feature.verdict == "fact" and not feature.fact_holds and feature.mean == pytest.approx(-0.15, abs=0.01)
    gap = found[("input", "input: TBFT")]
    assert gap.verdict == "reproduced" and gap.mean == pytest.approx(0.90 - (0.90 + 0.70 + 0.65 + 0.60) / 4, abs=0.01)
    assert gap.n_users == len(USERS) and gap.seeds == 2  # seeds are a level, k averaged: never counted as users
    assert gap.low < gap.mean < gap.high
    # the paper's input gap (+3.81 pts) is far below the planted +18.75: outside the interval, more than half of it
    assert gap.claimed == pytest.approx(0.0381) and gap.claimed_inside is False and gap.half_size == "at least half"
    # one family over every claim of the summary: Holm's adjusted p is at least the raw p
    assert gap.family_size >= 5 and gap.p <= gap.p_adjusted < 0.05


def test_pooled_gap_averages_each_person_over_drift_types():
    found = _by_claim(_rows())
    pooled = found[("pooled", "TBFT - Block Avg, pooled over drift types")]
    per_drift = [found[(d, f"{d}: TBFT")].mean for d in ("input", "feature", "output")]
    assert pooled.n_users == len(USERS)
    assert pooled.mean == pytest.approx(sum(per_drift) / 3, abs=1e-9)


def test_a_person_under_two_settings_of_one_drift_is_one_user():
    """Two input-drift configurations of the same subjects (as sp-sw-har's phone -> watch and watch -> phone) give
    8 users, not 16: a person's configurations are averaged before the claim is judged."""
    rows = _rows(drifts=("input",))
    twin = [dict(r, dataset_params={**r["dataset_params"], "adapt_context": "sensor-b"}) for r in rows]
    found = _by_claim(rows + twin)
    for claim in ("input: front beats stage2", "input: TBFT"):
        assert found[("input", claim)].n_users == len(USERS)
    assert found[("pooled", "fc saves > 67.92 % of all's adapt energy")].n_users == len(USERS)


def test_cost_savings_are_judged_against_the_papers_figures():
    found = _by_claim(_rows())
    # every user's cost scales by the same factor for every block: the savings are the same for every unit, facts
    fc = found[("pooled", "fc saves > 67.92 % of all's adapt energy")]
    assert fc.verdict == "fact" and fc.fact_holds and fc.mean == pytest.approx(0.8)
    avg = found[("pooled", "Block Avg saves > 41.51 % of all's adapt energy")]
    assert avg.verdict == "fact" and not avg.fact_holds and avg.mean == pytest.approx(0.35)
    for label in ("step CPU time", "adapt CPU time", "adapt FLOPs"):
        assert found[("pooled", f"fc saves > 67.92 % of all's {label}")].mean == pytest.approx(0.8)


def test_time_is_the_cost_when_energy_is_missing():
    rows = _rows()
    rows[0]["adapt_j"] = None
    names = {r.claim for _, _, r, _ in claims(rows)}
    assert "fc saves > 67.92 % of all's adapt time" in names and not any("energy" in n for n in names)


def test_freeze_bn_is_its_own_section_without_cost_claims_when_all_is_absent():
    rows = _rows() + _rows(blocks=("front", "stage2", "stage3", "fc"), freeze_bn=True)
    table = summarize(rows)
    frozen = [r for r in table["rows"] if r[1] == "freeze_bn=true"]
    assert frozen and not any("saves" in r[3] for r in frozen)
    assert {r[2] for r in frozen} == {"input", "feature", "output", "pooled"}


def test_backbones_are_separate_and_shares_and_rgn_picks_are_noted():
    rows = _rows() + _rows(method="tbft-preact")
    rows += [_row("input", "auto", u, 0, auto_by="rgn", chosen="front") for u in USERS[:5]]
    rows += [_row("input", "auto", u, 0, auto_by="rgn", chosen="fc") for u in USERS[5:]]
    table = summarize(rows)
    assert {r[0] for r in table["rows"]} == {"resnet1d", "preact1d"}
    assert "resnet1d: forward FLOPs % front 35, stage2 33, stage3 32" in table["note"]
    assert "resnet1d input: front 5, fc 3" in table["note"]


def test_ignores_other_methods_and_failed_jobs():
    clean = summarize(_rows())
    noisy = _rows() + [_row("input", "fc", "u00", 0, status="failed"), _row("input", "fc", "u00", 0, method="crop")]
    noisy[-1]["acc_seen"] = noisy[-2]["acc_seen"] = 1.0
    assert summarize(noisy) == clean


def test_claims_need_their_ingredients():
    partial = summarize(_rows(blocks=("front", "stage2", "fc", "all")))  # no stage3: no block or gap claims
    assert [r[3] for r in partial["rows"]] == [f"fc saves > 67.92 % of all's {label}" for label in
                                               ("adapt energy", "adapt CPU time", "adapt FLOPs", "step CPU time")]
    assert summarize(_rows(blocks=("front", "stage2", "stage3"))) is None
    assert summarize([]) is None


def test_cell_table_has_block_avg_and_the_gap():
    headers, table = cell_table(_rows(drifts=("output",)))
    (row,) = table
    assert float(row[headers.index("Block Avg")]) == pytest.approx(61.25, abs=1.0)  # mean of 40, 50, 60, 95 (+ wobble)
    assert float(row[headers.index("TBFT-BlockAvg")]) == pytest.approx(95 - 61.25, abs=1.5)


def test_a_subpopulation_split_is_judged_as_feature_level_drift():
    """sp-sw-har's age split declares its device context (input), but its shift is the subpopulation."""
    rows = _rows(drifts=("feature",))
    for r in rows:
        r["dataset"] = "sp-sw-har"
        r["dataset_params"] = {"adapt_context": "phone", "population_contexts": ["phone"], "targets": ["age>=50"],
                               "population": ["age<40"], "k": 6}
        r["facts"]["drift"] = "input"
    assert {drift for _, drift, _, _ in claims(rows)} == {"feature", "pooled"}
    device = _rows(drifts=("feature",))
    for r in device:  # phone -> watch: a device change, judged as declared
        r["dataset_params"] = {"adapt_context": "watch", "population_contexts": ["phone"], "k": 6}
        r["facts"]["drift"] = "input"
    assert "input" in {drift for _, drift, _, _ in claims(device)}
