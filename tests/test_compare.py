"""harbench compare: thresholds, noise-aware significance, energy-method guard, failed jobs, exit status."""

from __future__ import annotations

import random

import pytest
from click.testing import CliRunner

from harbench.cli import main
from harbench.results.compare import Threshold, compare_runs, min_mann_whitney_p, parse_fail_on, significant
from harbench.results.store import Store

from .test_report import job, make_run

USERS = [f"u{i}" for i in range(6)]


def latency_samples(center_ms: float, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [(center_ms + rng.gauss(0, 0.05 * center_ms)) / 1000 for _ in range(n)]


def run_jobs(acc: float = 0.8, adapt_j: float = 10.0, latency_ms: float = 2.0, energy_method: str = "rapl",
             samples: int = 40, seed: int = 0, failed: bool = False):
    jobs = []
    for i, user in enumerate(USERS):
        lat = latency_samples(latency_ms, samples, seed * 100 + i)
        jobs.append(job("mine", user, status="failed" if failed and i == 0 else "ok", acc_seen=acc, acc_unseen=acc - 0.1,
                        adapt_j=adapt_j * (1 + 0.01 * i), adapt_s=1.0, latency_ms_p50=sorted(lat)[len(lat) // 2] * 1000,
                        energy_method=energy_method, latency=lat))
    return jobs


def compare(tmp_path, base_jobs, new_jobs, spec: str):
    base_id, new_id = make_run(tmp_path / "base", base_jobs), make_run(tmp_path / "new", new_jobs)
    b, n = Store(tmp_path / "base"), Store(tmp_path / "new")
    return compare_runs(b.job_rows(base_id), n.job_rows(new_id), parse_fail_on(spec),
                        base_samples=b.samples(base_id, "latency_s"), new_samples=n.samples(new_id, "latency_s"))


def verdicts(result) -> dict[str, str]:
    return {d.metric: d.verdict for d in result.deltas}


def test_parse_fail_on():
    acc, energy = parse_fail_on("acc_seen:-1pt, adapt_j:+10%")
    assert acc == Threshold("acc_seen", -1, 0.01, False) and energy == Threshold("adapt_j", 1, 0.10, True)
    assert acc.exceeded(0.80, 0.785) and not acc.exceeded(0.80, 0.795) and not acc.exceeded(0.8, 0.9)
    assert energy.exceeded(10.0, 11.5) and not energy.exceeded(10.0, 10.5) and not energy.exceeded(10.0, 5.0)
    for bad in ("acc_seen", "acc_seen:0.01", "acc_seen:-x", ":+1"):
        with pytest.raises(ValueError):
            parse_fail_on(bad)


def test_significance_follows_asv():
    assert min_mann_whitney_p(2, 2) == pytest.approx(1 / 6)  # two samples each can never reach p < 0.01
    slow = latency_samples(3.0, 40, 1)
    fast = latency_samples(2.0, 40, 2)
    assert significant(fast, slow, +1)[0] and not significant(slow, fast, +1)[0]
    same_a, same_b = latency_samples(2.0, 40, 3), latency_samples(2.0, 40, 4)
    assert not significant(same_a, same_b, +1)[0]
    is_sig, how = significant([1.0, 1.1], [2.0, 2.1], +1)
    assert "CI" in how  # too few for Mann–Whitney: falls back to 99 % intervals


def test_accuracy_drop_beyond_threshold_is_a_regression(tmp_path):
    result = compare(tmp_path, run_jobs(acc=0.80), run_jobs(acc=0.78), "acc_seen:-1pt")
    assert verdicts(result)["acc_seen"] == "regression" and len(result.regressions) == 1
    result = compare(tmp_path / "b", run_jobs(acc=0.80), run_jobs(acc=0.795), "acc_seen:-1pt")
    assert not result.regressions


def test_latency_regression_needs_factor_and_significance(tmp_path):
    slower = compare(tmp_path / "a", run_jobs(latency_ms=2.0), run_jobs(latency_ms=3.0, seed=1), "latency_ms_p50:+10%")
    assert verdicts(slower)["latency_ms_p50"] == "regression"
    assert "Mann–Whitney" in next(d.detail for d in slower.deltas if d.metric == "latency_ms_p50")
    same = compare(tmp_path / "b", run_jobs(latency_ms=2.0), run_jobs(latency_ms=2.0, seed=1), "latency_ms_p50:+1%")
    assert verdicts(same)["latency_ms_p50"] in ("ok", "noise")
    assert not same.regressions


def test_energy_rise_without_repeated_samples_is_never_a_regression(tmp_path):
    """Two cold runs on a loaded machine: every job's energy 30 % higher. One figure per job is not a sample of the
    measurement's noise, so however many jobs agree, no significance is claimed (the old rule cried wolf here)."""
    for n in (2, 6):
        result = compare(tmp_path / str(n), run_jobs(adapt_j=10.0)[:n], run_jobs(adapt_j=13.0)[:n],
                         "adapt_j:+10%,adapt_s:+10%")
        d = next(d for d in result.deltas if d.metric == "adapt_j")
        assert d.verdict == "unverified" and "no significance claim" in d.detail and not result.regressions


def test_energy_with_stored_repeated_samples_is_tested_on_them(tmp_path):
    def with_repeats(jobs, center: float, seed: int):
        out = []
        for i, (rec, samples) in enumerate(jobs):
            rng = random.Random(seed * 100 + i)
            out.append((rec, {**samples, "adapt_j": [center + rng.gauss(0, 0.02 * center) for _ in range(10)]}))
        return out

    def check(folder, base_center, new_center):
        base_id = make_run(tmp_path / folder / "b", with_repeats(run_jobs(adapt_j=base_center), base_center, 1))
        new_id = make_run(tmp_path / folder / "n", with_repeats(run_jobs(adapt_j=new_center), new_center, 2))
        b, n = Store(tmp_path / folder / "b"), Store(tmp_path / folder / "n")
        result = compare_runs(b.job_rows(base_id), n.job_rows(new_id), parse_fail_on("adapt_j:+10%"),
                              base_repeats={"adapt_j": b.samples(base_id, "adapt_j")},
                              new_repeats={"adapt_j": n.samples(new_id, "adapt_j")})
        return next(d for d in result.deltas if d.metric == "adapt_j")

    worse = check("worse", 10.0, 13.0)
    assert worse.verdict == "regression" and "Mann–Whitney" in worse.detail
    assert check("same", 10.0, 10.0).verdict == "ok"


def test_accuracy_is_paired_by_user_across_runs(tmp_path):
    users = [f"u{i}" for i in range(8)]  # 2^-8 < 0.01: a paired test can decide

    def jobs(accs):
        return [job("mine", u, acc_seen=a, acc_unseen=a, adapt_s=1.0, adapt_j=1.0, latency_ms_p50=1.0)
                for u, a in zip(users, accs)]

    base = [0.80] * 8
    one_user = [0.50] + [0.80] * 7  # the mean drops by 3.75 points, carried by one user: not significant
    everyone = [0.77] * 8
    d = next(d for d in compare(tmp_path / "a", jobs(base), jobs(one_user), "acc_seen:-1pt").deltas
             if d.metric == "acc_seen")
    assert d.verdict == "noise" and "paired Wilcoxon" in d.detail and "8 users" in d.detail
    d = next(d for d in compare(tmp_path / "b", jobs(base), jobs(everyone), "acc_seen:-1pt").deltas
             if d.metric == "acc_seen")
    assert d.verdict == "regression" and "paired Wilcoxon" in d.detail
    # one user per side: no significance is ever claimed; the deterministic change is shown, said to be untested
    d = next(d for d in compare(tmp_path / "c", jobs(base)[:1], jobs(one_user)[:1], "acc_seen:-1pt").deltas
             if d.metric == "acc_seen")
    assert "no significance claimed" in d.detail


def test_compare_two_identical_tiny_runs_finds_no_regression(registry, write_suite, tmp_path):
    """The same suite run twice, cold, into two results folders: measured times differ, nothing regresses.
    (Latency is left out of --fail-on: its repeated samples can legitimately move on a loaded machine.)"""
    from .conftest import tiny_suite

    suite = str(write_suite(tiny_suite("[generic, {name: finetune-last, params: {epochs: 1}}]")))
    for folder in ("base", "new"):
        res = CliRunner().invoke(main, ["run", suite, "--results", str(tmp_path / folder), "-q"])
        assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["compare", "latest", "latest", "--base-results", str(tmp_path / "base"),
                                    "--results", str(tmp_path / "new"),
                                    "--fail-on", "acc_seen:-1pt,acc_unseen:-1pt,f1_seen:-1pt,adapt_s:+10%"])
    assert res.exit_code == 0, res.output
    assert "REGRESSION" not in res.output and "no regression" in res.output


def test_energy_from_different_methods_is_never_compared(tmp_path):
    result = compare(tmp_path, run_jobs(adapt_j=10.0), run_jobs(adapt_j=30.0, energy_method="codecarbon-estimate"),
                     "adapt_j:+10%")
    d = next(d for d in result.deltas if d.metric == "adapt_j")
    assert d.verdict == "incomparable" and "rapl → codecarbon-estimate" in d.detail and not result.regressions


def test_failed_jobs_in_the_new_run_fail_the_comparison(tmp_path):
    result = compare(tmp_path, run_jobs(), run_jobs(failed=True), "")
    assert [d.verdict for d in result.regressions] == ["failed"] and "boom" in result.regressions[0].detail


def test_cli_exit_status_and_table(tmp_path):
    make_run(tmp_path / "base", run_jobs(acc=0.80))
    make_run(tmp_path / "new", run_jobs(acc=0.70))
    args = ["compare", "latest", "latest", "--base-results", str(tmp_path / "base"), "--results", str(tmp_path / "new")]
    res = CliRunner().invoke(main, [*args, "--fail-on", "acc_seen:-1pt,adapt_j:+10%,latency_ms_p50:+10%"])
    assert res.exit_code == 1 and "REGRESSION" in res.output and "-0.1000" in res.output
    res = CliRunner().invoke(main, [*args, "--fail-on", "acc_seen:-20pt"])
    assert res.exit_code == 0 and "no regression" in res.output
    res = CliRunner().invoke(main, [*args, "--fail-on", "acc_sen:-0.01"])
    assert res.exit_code == 2 and "unknown metric" in res.output


def test_min_p_of_thousands_of_samples_does_not_overflow():
    from harbench.results.compare import min_mann_whitney_p, significant

    assert min_mann_whitney_p(2000, 2000) == 0.0
    same = [1.0 + 0.001 * (i % 7) for i in range(2000)]
    assert significant(same, same, +1)[0] is False


def test_a_plugin_energy_metric_gets_the_energy_rules_from_its_declared_unit(registry, tmp_path):
    from harbench import Metric

    from .conftest import plugin_module

    class RadioJ(Metric):
        name = "radio_j"
        unit = "J"
        higher_is_better = False

        def compute(self, out):
            return None

    registry.add_plugin(plugin_module("radio", harbench_register_metrics=lambda register: register(RadioJ)),
                        "harbench-radio", "0.1")

    def with_radio(jobs, joules):
        for rec, _ in jobs:
            rec.metrics["radio_j"] = joules
        return jobs

    result = compare(tmp_path, with_radio(run_jobs(), 1.0), with_radio(run_jobs(energy_method="ina3221"), 3.0),
                     "radio_j:+10%")
    d = next(d for d in result.deltas if d.metric == "radio_j")
    assert d.verdict == "incomparable" and not result.regressions  # measured another way: never compared
    few = compare(tmp_path / "few", with_radio(run_jobs()[:1], 1.0), with_radio(run_jobs()[:1], 3.0), "radio_j:+10%")
    assert verdicts(few)["radio_j"] == "unverified"  # a cost: one job per side is never significant
    assert not few.regressions


def _variant_jobs(variant: str, acc: float):
    return [job("mine", u, variant=variant, acc_seen=acc + 0.001 * i, acc_unseen=acc, adapt_s=1.0)
            for i, u in enumerate(USERS)]


def test_a_changed_configuration_is_not_passed_as_no_regression(tmp_path):
    """The method's variant changed between runs and its accuracy fell 70 points: before, its rows were "missing"
    and "new" and the gate said "no regression"."""
    make_run(tmp_path / "base", _variant_jobs("epochs=3", 0.80))
    make_run(tmp_path / "new", _variant_jobs("epochs=5", 0.10))
    args = ["compare", "latest", "latest", "--base-results", str(tmp_path / "base"), "--results", str(tmp_path / "new"),
            "--fail-on", "acc_seen:-1pt"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1 and "in only one run" in res.output, res.output
    assert "0 cell(s) compared, 1 missing from the new run, 1 new, 0 regressed" in res.output
    res = CliRunner().invoke(main, [*args, "--allow-missing"])
    assert res.exit_code == 0 and "no regression" in res.output
    res = CliRunner().invoke(main, [*args, "--match", "method"])
    assert res.exit_code == 1 and "REGRESSION" in res.output and "epochs=3→epochs=5" in res.output, res.output
    assert "1 cell(s) compared, 0 missing from the new run, 0 new, 1 regressed" in res.output
    same = CliRunner().invoke(main, ["compare", "latest", "latest", "--base-results", str(tmp_path / "base"),
                                     "--results", str(tmp_path / "base"), "--fail-on", "acc_seen:-1pt"])
    assert same.exit_code == 0 and "1 cell(s) compared, 0 missing from the new run, 0 new, 0 regressed" in same.output


def test_match_method_refuses_two_variants_in_one_run(tmp_path):
    make_run(tmp_path / "base", [*_variant_jobs("a", 0.8), *_variant_jobs("b", 0.8)])
    res = CliRunner().invoke(main, ["compare", "latest", "latest", "--results", str(tmp_path / "base"),
                                    "--match", "method"])
    assert res.exit_code == 2 and "two variants of mine" in res.output and "Traceback" not in res.output


def test_a_points_threshold_is_read_as_points(tmp_path):
    make_run(tmp_path / "base", run_jobs(acc=0.80))
    make_run(tmp_path / "new", run_jobs(acc=0.10))
    args = ["compare", "latest", "latest", "--base-results", str(tmp_path / "base"), "--results", str(tmp_path / "new")]
    res = CliRunner().invoke(main, [*args, "--fail-on", "acc_seen:-1"])  # a fraction before: a 70-point drop passed
    assert res.exit_code == 2 and "two readings" in res.output
    res = CliRunner().invoke(main, [*args, "--fail-on", "acc_seen:-1pt"])
    assert res.exit_code == 1 and "REGRESSION" in res.output
