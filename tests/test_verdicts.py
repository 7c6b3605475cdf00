"""Verdicts that say what was tested (issue #32, items 3–6): direction, size, no effect, facts, families, power,
bad input — and one interval per cell in every view."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from harbench import Claim, Family, Unit, bootstrap_interval, holm, judge, judge_family
from harbench.stats import interval
from harbench.stats.multiplicity import holm_levels
from harbench.stats.power import power_at, users_for_power

RNG = np.random.default_rng(7)


def units(grid: np.ndarray) -> dict[Unit, float]:
    """A (seeds × users) grid as per-unit values."""
    return {Unit(f"u{u}", s): float(grid[s, u]) for s in range(grid.shape[0]) for u in range(grid.shape[1])}


# ------------------------------------------------------------------------------------------------ units


def test_a_person_in_two_configurations_is_one_unit_not_two():
    """A subject measured phone -> watch and watch -> phone is one person: pooled, the two configurations are
    averaged (per_person) and the claim has 6 users, not 12; the interval widens accordingly."""
    from harbench import paired, per_person, per_unit_mean

    rows = []
    for context, shift in (("phone", 0.0), ("watch", 0.01)):
        for u in range(6):
            for method, acc in (("a", 0.70 + 0.02 * u + shift + 0.03 * (u % 2)), ("b", 0.70 + 0.02 * u + shift)):
                rows.append({"dataset": "d", "dataset_params": {"ctx": context}, "user": f"s{u}", "seed": 0,
                             "method": method, "acc": acc})
    diff = {}
    for method in ("a", "b"):
        diff[method] = per_unit_mean([r for r in rows if r["method"] == method], lambda r: r["acc"])
    pooled = paired(diff["a"], diff["b"])
    assert len(pooled) == 12
    persons = per_person(pooled, rows)
    assert sorted(u.user for u in persons) == [("d", f"s{u}") for u in range(6)]
    assert persons[Unit(("d", "s1"), 0)] == pytest.approx(0.03)
    wrong, right = judge("x", pooled), judge("x", persons)
    assert (wrong.n_users, right.n_users) == (12, 6) and right.high - right.low > wrong.high - wrong.low
    with pytest.raises(KeyError, match="no row gives the unit"):
        per_person({Unit(("d", "{}", "nobody"), 0): 1.0}, rows)


# ------------------------------------------------------------------------------------------------ direction


def test_direction_reproduced_not_reproduced_inconclusive():
    spread = np.array([0.3, -0.2, 0.1, -0.25, 0.05, 0.0, 0.15, -0.1])
    assert judge("gain > 0", 2.0 + spread).verdict == "reproduced"
    assert judge("gain > 0", -2.0 + spread).verdict == "not reproduced"
    assert judge("gain > 0", spread).verdict == "inconclusive"
    assert judge("cost < 0", -2.0 + spread, direction="<").verdict == "reproduced"


def test_seeds_are_a_level_the_old_bootstrap_could_not_see():
    """A large seed effect shared by every user: averaging seeds within users and resampling users (the old rule)
    gives a narrow interval that excludes 0; with the seed as a level the interval is honest about 3 seeds."""
    seed_effect = np.array([[1.0], [-0.2], [0.4]])  # the generic model of each seed: shared by every user
    users = np.array([[0.0, 0.05, -0.05, 0.02, -0.02, 0.03, -0.03, 0.01]])
    grid = 0.4 + seed_effect + users
    old_low, _ = bootstrap_interval(grid.mean(axis=0))
    assert old_low > 0  # the old rule: "reproduced"
    v = judge("gain > 0", units(grid))
    assert v.seeds == 3 and v.users == 8 and "3 seeds × 8 users" in v.method
    assert v.low < 0 < v.high and v.verdict == "inconclusive"


def test_two_seeds_are_as_wide_as_their_disagreement():
    """With 2 seeds the seed part has one degree of freedom: when the seeds agree the interval is the users' t;
    when they disagree it widens towards t with 1 df (Banerjee's half-width, docs/statistics.md)."""
    users = np.array([0.3, -0.2, 0.1, -0.25, 0.05, 0.0, 0.15, -0.1])
    agree, _ = interval(units(np.vstack([1.0 + users, 1.0 + users[::-1]])))
    apart, _ = interval(units(np.vstack([0.5 + users, 1.5 + users])))
    assert agree.df > 5 and apart.df < 2
    assert (apart.high - apart.low) > 3 * (agree.high - agree.low)


def test_one_seed_and_one_user_designs():
    one_seed = judge("x > 0", {Unit(f"u{i}", 0): 1.0 + 0.1 * i for i in range(5)})
    assert one_seed.seeds == 1 and one_seed.users == 5 and "1 seed" in one_seed.method
    one_user = judge("x > 0", {Unit("u0", s): 1.0 + 0.1 * s for s in range(4)})
    assert one_user.users == 1 and one_user.seeds == 4 and one_user.verdict == "reproduced"


def test_a_user_missing_a_seed_is_left_out_and_noted():
    values = units(1.0 + RNG.normal(0, 0.1, (3, 6)))
    del values[Unit("u5", 2)]
    iv, notes = interval(values)
    assert iv.users == 5 and iv.dropped == 1 and any("1 user left out" in n for n in notes)


def test_one_seed_needs_five_users_for_a_direction_verdict_on_the_linear_scale():
    """The minimum-units rule (docs/statistics.md): with one seed and 3–4 users no part can correct a skew, and the
    t-interval alone misses the gate on skewed data there, so the verdict is inconclusive however large the effect;
    a log-scale quantity keeps its verdict (its interval meets the gate at 3 users), and so do 3 seeds."""
    four = [2.0, 2.1, 1.9, 2.05]
    v = judge("gain > 0", four)
    assert v.verdict == "inconclusive" and v.low > 0 and any("minimum-units rule" in n for n in v.notes)
    assert judge("gain > 0", four + [1.95]).verdict == "reproduced"
    assert judge("ratio > 1", four, threshold=1.0, scale="log").verdict == "reproduced"
    assert judge("acc > 0.5", [0.9, 0.92, 0.91, 0.93], threshold=0.5, bounds=(0.0, 1.0)).verdict == "inconclusive"
    three_seeds = {Unit(f"u{u}", s): 2.0 + 0.1 * u - 0.05 * s for u in range(3) for s in range(3)}
    assert judge("gain > 0", three_seeds).verdict == "reproduced"


def test_the_interval_is_the_hull_of_its_parts_and_every_part_must_agree():
    """Accuracies near 100 % with one bad user: the t-interval alone would call "> 0.9" reproduced; the lognormal
    distance-to-bound pivot (a tail of bad users is likely when one shows) widens the lower side, and the verdict
    follows the hull."""
    from harbench.stats.intervals import grid_bounds

    acc = np.array([0.99, 0.985, 0.98, 0.99, 0.975, 0.98, 0.93, 0.985])
    out = grid_bounds(acc[None, None, :], bounds=(0.0, 1.0), threshold=np.array([0.9]))
    t_half = 2.3646 * acc.std(ddof=1) / math.sqrt(len(acc))  # t_{0.975, 7}
    t_low = acc.mean() - t_half
    assert t_low > 0.95  # the t-interval alone: "> 0.95" reproduced
    v = judge("acc > 0.95", acc, threshold=0.95, bounds=(0.0, 1.0))
    assert v.low < 0.95 < acc.mean() and v.verdict == "inconclusive"
    assert "studentized bootstrap" in v.method and "distance-to-bound pivot" in v.method
    assert out["low"][0] <= t_low and out["high"][0] >= acc.mean() + t_half - 1e-12
    assert judge("acc > 0.9", acc, threshold=0.9, bounds=(0.0, 1.0)).verdict == "reproduced"


def test_one_claim_gets_one_interval_however_it_is_batched():
    """The bootstrap's resamples and the pivot's draws depend on the design only: a claim judged alone or among
    others (the same shape, so one stack) gets the same interval and the same p."""
    rng = np.random.default_rng(9)
    grids = [0.95 - np.abs(rng.normal(0, 0.03, (3, 8))) for _ in range(5)]
    alone = judge("acc > 0.9", units(grids[2]), threshold=0.9, bounds=(0.0, 1.0))
    batch = judge_family("", [Claim(f"c{i}", units(g), 0.9, bounds=(0.0, 1.0)) for i, g in enumerate(grids)],
                         alpha=0.05)[2]
    assert (batch.low, batch.high, batch.p) == pytest.approx((alone.low, alone.high, alone.p), rel=1e-9)  # BLAS blocking may differ
    assert "studentized bootstrap" in alone.method and "pivot" in alone.method


def test_a_resample_without_spread_does_not_make_the_interval_unbounded():
    """Two-valued data (a planted effect on discrete accuracies): resamples of tied values have no t; counted as
    t = 0 they leave the interval finite and a clear effect reproduced."""
    grid = np.array([[0.18, 0.18, 0.23, 0.18, 0.23, 0.18, 0.18, 0.23], [0.23, 0.18, 0.18, 0.23, 0.18, 0.23, 0.18, 0.18]])
    v = judge("gain > 0", units(grid))
    assert math.isfinite(v.low) and math.isfinite(v.high) and v.verdict == "reproduced"


def test_large_families_can_still_reproduce():
    """The bootstrap part's p-value is not a count of 999 resamples (which could not go below 0.001): a family of
    60 strong claims, Holm at 0.05/60, still reproduces them."""
    rng = np.random.default_rng(5)
    fam = Family("sixty")
    for i in range(60):
        fam.add(f"c{i}", 1.0 + rng.normal(0, 0.2, 12))
    assert all(v.verdict == "reproduced" for v in fam.verdicts())
    assert max(v.p for v in fam.verdicts()) < 0.05 / 60


# ---------------------------------------------------------------------------------------- size and no effect


def test_size_inside_the_interval_and_half_the_claimed_size():
    values = 3.0 + np.array([0.2, -0.1, 0.15, -0.2, 0.05, -0.05, 0.1, -0.15])
    small = judge("gain > 0", values, claimed=7.78)  # the paper's +7.78, we see +3: reproduced in direction only
    assert small.verdict == "reproduced" and small.claimed_inside is False and small.high < 7.78
    assert small.half_size == "less than half"  # the half-way point 3.89 lies above the whole interval
    close = judge("gain > 0", values, claimed=3.0)
    assert close.claimed_inside is True and close.half_size == "at least half"
    assert "paper's +3.00 is inside the interval" in close.text()


def test_size_is_measured_from_no_effect_when_the_threshold_is_the_papers_own_figure():
    """"fc saves > 67.92 %" with 45 % seen: half of the paper's saving is 33.96 % (from a saving of 0), so the
    effect is at least half of it, though the claim at the paper's threshold is not reproduced."""
    from harbench import Claim, judge_family

    values = 0.45 + np.array([0.02, -0.01, 0.015, -0.02, 0.005, -0.005, 0.01, -0.015])
    (at_threshold,) = judge_family("f", [Claim("saves > 67.92 %", values, 0.6792, ">", 0.6792, 0.02)])
    assert at_threshold.verdict == "not reproduced" and at_threshold.half_size == "less than half"  # the old reading
    (from_null,) = judge_family("f", [Claim("saves > 67.92 %", values, 0.6792, ">", 0.6792, 0.02, null=0.0)])
    assert from_null.verdict == "not reproduced" and from_null.half_size == "at least half"
    # a ratio: half of 176,000x on the log scale is sqrt(176,000 x 1) = 420x from 1x, but 4,200x from the threshold
    ratio = [350.0, 420.0, 300.0, 390.0, 410.0, 330.0]  # interval about [300, 438]: it straddles 420x
    (r,) = judge_family("f", [Claim("> 100x", ratio, 100.0, ">", 176_000.0, 10.0, "log", null=1.0)])
    assert r.verdict == "reproduced" and r.low < 420 < r.high and r.half_size == "undecided"
    (r,) = judge_family("f", [Claim("> 100x", ratio, 100.0, ">", 176_000.0, 10.0, "log")])
    assert r.half_size == "less than half"


def test_ratio_claims_are_judged_on_the_log_scale():
    ratios = 1.35 * np.exp(np.array([0.02, -0.03, 0.01, -0.01, 0.03, -0.02]))
    v = judge("teacher/student > 1", ratios, threshold=1.0, claimed=1 / (1 - 0.45), scale="log")
    assert v.verdict == "reproduced" and v.scale == "log" and v.claimed_inside is False
    assert v.mean == pytest.approx(math.exp(np.log(ratios).mean()))  # the geometric mean
    assert v.half_size == "undecided"  # 1.35x is just at the geometric half-way point of 1 and 1.82


def test_equivalence_test_decides_no_effect_with_a_declared_margin():
    tiny = np.array([0.002, -0.001, 0.0015, -0.002, 0.001, 0.0, -0.0005, 0.0005])
    assert judge("gain > 0", tiny).verdict == "inconclusive"
    v = judge("gain > 0", tiny, margin=0.01)
    assert v.verdict == "no effect" and v.p_equivalence < 0.05
    wide = judge("gain > 0", tiny * 40, margin=0.01)  # the same centre, too much spread to claim equivalence
    assert wide.verdict == "inconclusive" and wide.p_equivalence > 0.05


def test_deterministic_quantities_are_facts_and_exact_nulls_are_no_effect():
    fact = judge("params ratio > 1", [1.35] * 6, threshold=1.0)
    assert fact.verdict == "fact" and fact.fact_holds and "deterministic fact" in fact.text()
    assert judge("ratio > 2", [1.35] * 6, threshold=2.0).fact_holds is False
    null = judge("duet − universal > 0", [0.0] * 6)
    assert null.verdict == "no effect"
    family = judge_family("f", [Claim("a", [1.35] * 5, 1.0), Claim("b", [0.1, 0.2, 0.3, 0.25, 0.15])])
    assert [v.family_size for v in family] == [1, 1]  # a fact is not a test: the family holds one claim


# ---------------------------------------------------------------------------------------------- families


def test_holm_adjusts_every_claim_of_a_family():
    rng = np.random.default_rng(3)
    data = [0.25 + rng.normal(0, 0.3, 8) for _ in range(10)]
    alone = [judge(f"c{i}", d) for i, d in enumerate(data)]
    fam = Family("a summary")
    for i, d in enumerate(data):
        fam.add(f"c{i}", d)
    together = fam.verdicts()
    raw = [v.p for v in alone]
    assert [v.p for v in together] == pytest.approx(raw)
    assert [v.p_adjusted for v in together] == pytest.approx(holm(raw))
    assert [v.level_adjusted for v in together] == pytest.approx(holm_levels(raw))
    assert all(v.family_size == 10 and v.family == "a summary" for v in together)
    # the family costs verdicts: some claims reproduced alone are not once ten are tested together
    assert sum(v.verdict == "reproduced" for v in together) < sum(v.verdict == "reproduced" for v in alone)
    assert "Holm over 10 claims of 'a summary'" in together[0].text()
    assert "10 tested claims" in fam.summary() and "Holm step-down" in fam.summary()


def test_an_empty_family_is_an_empty_list_and_says_so():
    assert judge_family("nothing", []) == []
    assert "no claims (size 0)" in Family("nothing").summary()


# ------------------------------------------------------------------------------------------------- power


def test_inconclusive_verdicts_say_how_many_users_would_decide():
    values = np.array([0.9, -0.6, 1.2, -0.3, 0.4])  # mean 0.32, sd ~0.77
    v = judge("gain > 0", values, claimed=1.0)
    assert v.verdict == "inconclusive" and 3 < v.users_needed < 40
    n = int(v.users_needed)
    iv, _ = interval(values)
    below = power_at(np.array([n - 1.0]), np.array([1.0]), iv.var_seed, iv.var_user, 5, 1, 0.05)
    at = power_at(np.array([float(n)]), np.array([1.0]), iv.var_seed, iv.var_user, 5, 1, 0.05)
    assert below[0] < 0.8 <= at[0]
    assert f"~{n} users" in v.text()


def test_power_by_simulation_matches_the_noncentral_t():
    """The users the noncentral t asks for do decide the claimed effect ~80 % of the time (normal data)."""
    sd, effect = 1.0, 0.8
    n = int(users_for_power(np.array([effect]), 0.0, sd ** 2 / 10, 10, 1, 0.05)[0])
    rng = np.random.default_rng(11)
    y = rng.normal(effect, sd, (4000, n))
    from scipy import stats

    t = y.mean(axis=1) / (y.std(axis=1, ddof=1) / math.sqrt(n))
    decided = np.mean(t > stats.t.ppf(0.975, n - 1))
    assert 0.76 < decided < 0.86


def test_a_dominant_seed_spread_asks_for_seeds_not_users():
    grid = np.array([[2.0], [-1.5], [0.5]]) + 0.01 * np.arange(6)[None, :]
    v = judge("gain > 0", units(grid), claimed=0.5)
    assert v.verdict == "inconclusive" and math.isnan(v.users_needed) and "more seeds" in v.power_note


def test_a_claimed_size_equal_to_the_threshold_gets_no_power_sentence_about_seeds():
    """A paper figure that is the threshold itself (claimed effect 0) was told "more seeds are needed"."""
    v = judge("saving > 45 %", np.array([40.0, 47.0, 44.0, 52.0, 41.0]), threshold=45.0, claimed=45.0)
    assert v.verdict == "inconclusive" and math.isnan(v.users_needed)
    assert "more seeds" not in v.power_note and "the threshold itself" in v.power_note


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("values, expected", [
    ([1.0, math.nan, 2.0, 3.0], "1 of 4 values are NaN, infinite or not numbers (expected finite numbers)"),
    ([1.0, math.inf, 2.0], "1 of 3 values are NaN, infinite or not numbers"),
    ([1.0, 2.0], "2 users × 1 seed: fewer than the minimum (3 users, or 3 seeds)"),
    ([], "no finite values"),
])
def test_bad_input_is_one_line_never_a_traceback(values, expected):
    v = judge("gain > 0", values)
    assert v.verdict == "no verdict" and expected in v.text() and "\n" not in v.text()
    json.dumps(v.to_dict())  # and it still renders


def test_a_bad_direction_is_one_line():
    v = judge("gain ? 0", [1.0, 2.0, 3.0], direction="?")
    assert v.verdict == "no verdict" and "direction must be '>' or '<'" in v.text()


def test_verdicts_are_plain_dicts_for_renderers():
    d = judge("gain > 0", [0.3, 0.32, 0.28, 0.31, 0.29], claimed=0.3).to_dict()
    assert json.loads(json.dumps(d))["outcome"] == "reproduced" and d["users"] == 5 and d["claimed"] == 0.3


# ------------------------------------------------------------------------------- one interval per cell


def test_one_cell_shows_one_interval_in_text_json_figure_and_decision_view(tmp_path):
    from harbench.results import decision, plots
    from harbench.results.report import numeric_table
    from harbench.results.store import Store
    from harbench.results.tables import MetricColumn, summary_table

    from .test_report import job, make_run

    rng = np.random.default_rng(5)
    jobs = [job("mine", f"u{u}", seed=s, acc_seen=float(0.7 + 0.05 * rng.standard_normal() + 0.02 * s),
                adapt_j=1.0 + u) for u in range(6) for s in range(3)]
    rows = Store(tmp_path).job_rows(make_run(tmp_path, jobs))
    acc = MetricColumn("acc_seen", "fraction", True)
    headers, table = summary_table(rows, [acc], ci=True)
    text = table[0][headers.index("acc_seen")]
    lo, hi = (float(x) / 100 for x in text[text.index("[") + 1:text.index("]")].split(","))
    nh, nt = numeric_table(rows, [acc])
    cell = dict(zip(nh, nt[0]))
    point = plots._points(rows, "adapt_j")[0]
    accuracy = decision.accuracies(rows)[("mine", "")]
    assert cell["acc_seen_ci_low"] == pytest.approx(lo, abs=5e-4) and cell["acc_seen_ci_high"] == pytest.approx(hi, abs=5e-4)
    assert (point.y_low, point.y_high) == pytest.approx((cell["acc_seen_ci_low"], cell["acc_seen_ci_high"]), rel=1e-9)
    assert (accuracy.low, accuracy.high) == pytest.approx((cell["acc_seen_ci_low"], cell["acc_seen_ci_high"]))
    assert cell["acc_seen_n"] == 6


# ------------------------------------------------------------------------------------ validate --power


def test_validate_power_reads_an_earlier_run(tmp_path, monkeypatch):
    from harbench.cli import main
    from harbench.results import power

    monkeypatch.setattr(power, "paper_summaries", lambda rows: [{"title": "t", "verdicts": [
        judge("gain > 0", [0.9, -0.6, 1.2, -0.3, 0.4], claimed=1.0, family="demo").to_dict(),
        judge("gain > 0", [1.1, 1.2, 1.0, 1.3, 1.15], family="demo").to_dict(),
        judge("ratio > 1", [1.35] * 4, threshold=1.0).to_dict()]}])
    from .test_report import job, make_run

    make_run(tmp_path, [job("generic", "u0", acc_seen=0.5)], suite="tiny")
    suite = tmp_path / "tiny.yaml"
    suite.write_text("name: tiny\ndatasets:\n  - name: synthetic-drift\n    params: {users: 8}\n"
                     "methods:\n  - name: generic\nhardware:\n  - name: cpu\nseeds: [0]\n")
    res = CliRunner().invoke(main, ["validate", str(suite), "--power", "--results", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "users that 80 % power would need" in res.output
    lines = [x for x in res.output.splitlines() if "gain > 0" in x]
    assert "inconclusive" in lines[0] and "~" in lines[0] and "decided" in lines[1]
    assert "ratio > 1" not in res.output  # a fact is not a test
    res = CliRunner().invoke(main, ["validate", str(suite), "--power", "--results", str(tmp_path / "empty")])
    assert res.exit_code == 2 and "Traceback" not in res.output and len(res.output.strip().splitlines()) == 2


def test_the_verdicts_benchmark_runs():
    """The benchmark still runs (tiny sizes; its figures are never asserted on a shared machine)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, str(root / "benchmarks" / "verdicts.py"), "--claims", "40", "--repeat", "1",
                          "--reps", "50"], cwd=root, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "judge 40 claims, 12 users × 3 seeds" in res.stdout and "72 gated cases × 50 data sets" in res.stdout


def test_a_papers_claim_becomes_a_claim_in_its_declared_family_only():
    from harbench import PaperClaim

    paper = PaperClaim("gap", "A beats B", ">", 0.0, 0.05, 0.01, "fraction", "plugin", "Table 1")
    family = Family("plugin")
    units = {Unit(f"u{i}", s): 0.05 + 0.01 * ((i + s) % 3 - 1) for i in range(6) for s in range(3)}
    family.add_paper(paper, units, text="A beats B on dataset X")
    family.add_paper(paper, units, threshold=0.2)
    first, second = family.verdicts()
    # the paper's size, its no-effect margin, its threshold (or a lower reach) and the family, from one declaration
    assert (first.claim, first.claimed, first.margin, first.threshold) == ("A beats B on dataset X", 0.05, 0.01, 0.0)
    assert first.outcome == "reproduced" and first.family == "plugin" and first.family_size == 2
    assert second.threshold == 0.2 and second.outcome == "not reproduced"
    with pytest.raises(ValueError, match="declared in family 'plugin', not 'other'"):
        Family("other").add_paper(paper, units)


# ------------------------------------------------------------------------------------------- signed rank


def test_signed_rank_p_is_scipys_wilcoxon_with_ties_and_zeros_and_fast():
    """``signed_rank_p`` answers scipy's exact permutation case (ties or zeros, <= 13 users) with numpy: the same p
    on every pattern below, and a 12-user table with ties in milliseconds (scipy: about a second)."""
    import time

    from scipy import stats

    from harbench import signed_rank_p

    rng = np.random.default_rng(5)
    cases = [rng.integers(-3, 4, n).astype(float) for n in (2, 3, 5, 8, 12) for _ in range(3)]  # ties, zeros
    cases += [rng.normal(0.2, 1.0, n) for n in (4, 9, 13, 14, 30, 60)]  # no ties: scipy's exact table or normal
    cases += [np.round(rng.normal(0.5, 1.0, 20), 1)]  # ties above 13: scipy's normal approximation
    for d in cases:
        if np.all(d == 0) or np.count_nonzero(d) < 1:
            continue
        expected = float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
        assert signed_rank_p(d) == pytest.approx(expected, rel=1e-12, abs=1e-15), d
    assert signed_rank_p([0.0, 0.0, 0.0]) == 1.0 and math.isnan(signed_rank_p([1.0, math.nan]))
    tied = np.array([1, 1, 2, -1, 3, 3, 2, -2, 1, 4, 0, 2], dtype=float)
    start = time.perf_counter()
    for _ in range(10):
        signed_rank_p(tied)
    assert (time.perf_counter() - start) / 10 < 0.1  # scipy's permutation path: ~1 s per call on this machine
