import math

import pytest
from harbench_duet.summary import PERSONALISES, duet_summary

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels

USERS = [f"u{i:02d}" for i in range(8)]


def row(method, acc, adapt_s=0.0, adapt_j=0.0, user="u00", seed=0, status="ok", variant="", comm_j=None,
        index=None, dataset="synthetic-drift"):
    facts = {}
    if comm_j is not None:
        facts["comm_j"] = comm_j
    if index is not None:
        facts["process_adapt_index"] = index
    return {"dataset": dataset, "dataset_params": {}, "method": method, "variant": variant, "user": user,
            "seed": seed, "status": status, "acc_seen": acc, "acc_unseen": acc - 0.1, "adapt_s": adapt_s,
            "adapt_j": adapt_j, "facts": facts}


def world(duet_gain=0.05, universal_gain=0.02, ft_last_gap=0.0):
    """8 users x 2 seeds; per-user accuracies with a planted spread so intervals are not points."""
    rows = []
    for i, u in enumerate(USERS):
        base = 0.70 + 0.02 * i
        for seed in (0, 1):
            jitter = 0.004 * (seed - 0.5) * (1 + i % 3)
            rows += [
                row("generic", base + jitter, user=u, seed=seed),
                row("finetune-full", base + 0.06 + jitter, 2.0 + 0.1 * i, 20.0, user=u, seed=seed),
                row("finetune-full", base + 0.03 + jitter, 0.2 + 0.01 * i, 2.0, user=u, seed=seed, variant="epochs=1"),
                row("finetune-last", base + duet_gain + ft_last_gap + jitter, 0.5, 10.0, user=u, seed=seed),
                row("duet", base + duet_gain + jitter + 0.003 * i, 0.01, 0.05, user=u, seed=seed, comm_j=0.05,
                    index=0 if (i, seed) == (0, 0) else 7),
                row("duet", base + universal_gain + jitter, 0.01, 0.05, user=u, seed=seed, variant="delta_scale=0.0",
                    comm_j=0.05, index=3),
                row("duet", base + jitter - 0.01, 0.01, 0.05, user=u, seed=seed, variant="hidden=0", comm_j=0.05),
                row("duet", base + jitter - 0.01, 0.01, 0.05, user=u, seed=seed, variant="delta_scale=0.0 hidden=0",
                    comm_j=0.05),
            ]
    rows[4]["adapt_s"] = 5.0  # the first adapt of the process is slow: it must not enter the steady state
    return rows


def table(summary):
    return {r[1]: r for r in summary["rows"]}


def test_claims_get_intervals_and_verdicts():
    t = table(duet_summary(world()))
    gain = t["duet − generic"]
    assert gain[2] == "> 0" and gain[6] == "reproduced" and gain[5] == 8
    assert gain[3].endswith(" pts") and float(gain[3].split()[0]) == pytest.approx(6.05, abs=0.06)
    low, high = (float(x) for x in gain[4].strip("[]").split(","))
    assert 5.0 < low < 6.05 < high < 7.1
    assert t["duet − universal head (delta_scale=0)"][6] == "reproduced"
    assert t["universal head − generic"][6] == "—"  # descriptive, not judged
    assert t["duet − finetune-last"][6] == "reproduced"  # gap 0 > -2 pts
    # identical accuracies for every user and seed: an exact null is "no effect", not "inconclusive"
    assert t["duet[hidden=0] − its universal head"][6] == "no effect"
    # every judged claim is in one family: the Holm column gives the adjusted p and the family size
    m = {r[7].split("(")[1].rstrip(")") for r in t.values() if r[7] != "—"}
    assert len(m) == 1 and int(m.pop()) >= 4


def test_a_person_in_two_dataset_configurations_is_one_user():
    """The same 8 subjects personalised phone -> watch and watch -> phone: 8 users, never 16 (per_person)."""
    rows = world()
    twin = [dict(r, dataset_params={"adapt_context": "watch"}) for r in rows]
    gain = table(duet_summary(rows + twin))["duet − generic"]
    assert gain[5] == 8 and gain[6] == "reproduced"


def test_a_claim_the_data_contradict_is_not_reproduced():
    t = table(duet_summary(world(duet_gain=-0.05, universal_gain=0.0, ft_last_gap=0.10)))
    assert t["duet − generic"][6] == "not reproduced"
    assert t["duet − universal head (delta_scale=0)"][6] == "not reproduced"
    assert t["duet − finetune-last"][6] == "not reproduced"  # 10 points behind, beyond the 2-point margin


def test_cost_ratios_use_the_steady_state_and_follow_the_budget():
    t = table(duet_summary(world()))
    first = next(k for k in t if k.startswith("duet adapt_s, first adapt"))
    assert "(1 jobs)" in first and t[first][3] == "5000.00 ms"
    assert t["duet adapt_s, steady state"][3] == "10.00 ms"
    full = t["finetune-full adapt time / duet (15 epochs)"] if "finetune-full adapt time / duet (15 epochs)" in t else \
        t["finetune-full adapt time / duet"]
    # a ratio is judged on the log scale: the geometric mean over users × seeds; u00 lacks a steady-state adapt
    # under seed 0 (its first adapt), so the complete grid holds u01..u07
    geo = math.exp(sum(math.log((2.0 + 0.1 * i) / 0.01) for i in range(1, 8)) / 7)
    assert full[2] == "> 100x" and full[6] == "reproduced" and full[3] == f"{geo:.0f}x" and full[5] == 7
    one = t["finetune-full[epochs=1] adapt time / duet (1 epochs)"]
    assert one[2] == "" and one[6] == "—" and one[3] == f"{(0.2 + 0.035) / 0.01:.0f}x"
    energy = t["finetune-full device energy / duet"]
    assert energy[3] == "200x" and energy[6] == "fact (holds)"  # 20 J / (0.05 + 0.05 J) for every unit
    assert t["finetune-last adapt time / duet"][6] == "fact (does not hold)"  # 50x for every unit: below 100x


def test_failed_jobs_are_ignored_and_no_duet_means_no_summary():
    rows = world() + [row("duet", 0.0, 99.0, 99.0, user=u, status="failed") for u in USERS]
    assert table(duet_summary(rows))["duet − generic"][6] == "reproduced"
    assert duet_summary([row("generic", 0.8), row("duet", 0.9, status="failed")]) is None


def test_fewer_than_three_users_is_no_verdict():
    rows = [r for r in world() if r["user"] in USERS[:2]]  # 2 users × 2 seeds: under the minimum
    gain = table(duet_summary(rows))["duet − generic"]
    assert gain[6] == "no verdict" and gain[4] == "—" and gain[5] == 2


def test_each_dataset_is_judged_on_its_own():
    rows = world() + [{**r, "dataset": "sp-sw-har"} for r in world(duet_gain=-0.05)]
    s = duet_summary(rows)
    verdicts = {(r[0], r[1]): r[6] for r in s["rows"]}
    assert verdicts[("synthetic-drift", "duet − generic")] == "reproduced"
    assert verdicts[("sp-sw-har", "duet − generic")] == "not reproduced"
    assert all(not (isinstance(v, float) and math.isnan(v)) for r in s["rows"] for v in r)


def test_personalisation_needs_duet_to_beat_its_own_universal_head_not_only_generic():
    # DUET beats generic by 5 points, but its universal head does better: the gain is the head, not the personalisation
    t = table(duet_summary(world(duet_gain=0.05, universal_gain=0.05 + 0.03)))
    assert t["duet − generic"][6] == "reproduced"
    assert t[PERSONALISES][6] == "not reproduced" and t[PERSONALISES][2] == "both > 0"
    assert table(duet_summary(world()))[PERSONALISES][6] == "reproduced"  # beats both
    no_twin = [r for r in world() if r["variant"] != "delta_scale=0.0"]
    assert table(duet_summary(no_twin))[PERSONALISES][6].startswith("inconclusive (no delta_scale=0 twin")


def _timed(rows, own_s, start_up):
    """DUET rows whose own work is ``own_s`` inside an adapt phase the harness measured with a start-up on top."""
    out = []
    for r in rows:
        if r["method"] == "duet":
            r = {**r, "adapt_s": own_s + start_up, "adapt_j": 1.0,
                 "facts": {**r["facts"], "device_s": own_s / 2, "cloud_s": own_s / 2}}
        out.append(r)
    return out


def test_duet_cost_is_its_own_work_not_the_sandbox_start_up():
    rows = _timed(world(), own_s=0.005, start_up=0.25)
    t = table(duet_summary(rows))
    assert t["duet own work (device_s + cloud_s), steady state"][3] == "5.00 ms"
    assert t["harness overhead per duet adapt (adapt_s − own work)"][3] == "250.00 ms"
    ratio = t["finetune-full adapt time / duet"]
    # a ratio's geometric mean over the units of the complete grid (u01..u07: see the test above)
    geo = math.exp(sum(math.log(2.0 + 0.1 * i) for i in range(1, 8)) / 7)
    assert ratio[3] == f"{geo / 0.005:.0f}x" and ratio[6] == "reproduced"
    energy = t["finetune-full device energy / duet"]  # 1 J over 255 ms -> 5 ms of it, + 0.05 J radio
    assert energy[3] == f"{20.0 / (1.0 * 0.005 / 0.255 + 0.05):.0f}x"
    # the earlier choice, as a named option: the harness's adapt_s, dominated by the start-up
    old = table(duet_summary(rows, cost="harness"))["finetune-full adapt time / duet"]
    assert old[3] == f"{geo / 0.255:.0f}x" and old[6] == "not reproduced"
    with pytest.raises(ValueError, match="unknown cost"):
        duet_summary(rows, cost="wall")


def test_a_swept_default_is_default_duet():
    """A suite sweeping ``delta_scale: [0.1, 0.0]`` spells the default in the variant: still default DUET."""
    rows = [{**r, "variant": "delta_scale=0.1"} if r["method"] == "duet" and r["variant"] == "" else r
            for r in world()]
    t = table(duet_summary(rows))
    assert t["duet − generic"][6] == "reproduced" and t[PERSONALISES][6] == "reproduced"


def test_every_judged_claim_takes_its_numbers_from_paper_py():
    """One home for each claim's numbers: threshold, the paper's size, the no-effect margin and the family."""
    from harbench_duet.paper import BY_KEY, FAMILY

    verdicts = duet_summary(world())["verdicts"]
    declared = {(c.threshold, c.claimed, c.no_effect, c.scale) for c in BY_KEY.values()}
    assert len(verdicts) >= 8 and all(v["family"] == FAMILY for v in verdicts)
    assert all((v["threshold"], v["claimed"], v["margin"], v["scale"]) in declared for v in verdicts)
    ft_last = next(v for v in verdicts if v["claim"] == "duet − finetune-last")
    assert ft_last["claimed"] == BY_KEY["duet − finetune-last"].claimed and ft_last["claimed_inside"] is not None
