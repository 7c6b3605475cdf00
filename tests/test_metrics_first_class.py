"""Plugin metrics are first-class (export, load, report, HTML, summaries), every view follows a metric's declared
direction, and metrics get class probabilities (NLL, ECE, Brier on hand-computed examples)."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from click.testing import CliRunner

import harbench
from harbench import JobOutputs, Metric, accuracy
from harbench.builtin.metrics import CORE, brier, ece, nll
from harbench.cli import main
from harbench.results.analysis import harm_rate, user_level, worst_decile
from harbench.results.export import export_columns
from harbench.results.store import Store
from harbench.results.tables import IDENTITY, METRIC_COLUMNS, summary_table, user_level_table
from harbench.testing import tiny_outputs

from .conftest import plugin_module, tiny_suite
from .test_report import job, make_run

README_CORE = ["acc_seen", "acc_unseen", "f1_seen", "f1_unseen", "energy_method", "gain_seen", "adapt_s", "adapt_j",
               "adapt_j_net", "adapt_flops", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99", "infer_mj",
               "infer_mj_net", "params", "params_trained", "model_kb", "flops"]


class ErrSeen(Metric):
    """A third party's metric: the error rate on the seen context (lower is better)."""

    name = "err_seen"
    unit = "fraction"
    higher_is_better = False
    description = "1 - acc_seen"

    def compute(self, out):
        return 1.0 - accuracy(out.y_seen, out.pred_seen)


@pytest.fixture
def with_err_metric(registry):
    seen_by_summary: list[list[dict]] = []

    def register(register):
        register(ErrSeen)

    def summary(rows):
        seen_by_summary.append(rows)
        return None

    registry.add_plugin(plugin_module("errmetric", harbench_register_metrics=register,
                                      harbench_report_summary=summary), "harbench-errmetric", "0.1")
    registry.seen_by_summary = seen_by_summary
    return registry


# ------------------------------------------------------------------------------------ plugin metrics, end to end


def test_a_plugin_metric_appears_in_export_load_report_html_and_summaries(with_err_metric, write_suite, tmp_path):
    results = str(tmp_path / "r")
    res = CliRunner().invoke(main, ["run", str(write_suite(tiny_suite())), "--results", results, "-q"])
    assert res.exit_code == 0, res.output

    # export, json: every row carries the plugin's value, and it is the one the metric defines
    out = tmp_path / "x.json"
    assert CliRunner().invoke(main, ["export", "--results", results, "-o", str(out)]).exit_code == 0
    rows = json.loads(out.read_text())
    assert len(rows) == 4
    for r in rows:
        assert r["err_seen"] == pytest.approx(1.0 - r["acc_seen"], abs=1e-6)
        # the runner hands metrics probabilities: calibration metrics are real numbers in their ranges
        assert r["nll_seen"] > 0 and 0 <= r["ece_seen"] <= 1 and 0 <= r["brier_seen"] <= 2
        assert r["nll_unseen"] > 0 and 0 <= r["ece_unseen"] <= 1 and 0 <= r["brier_unseen"] <= 2
    # core columns keep their documented names and order; the plugin's column follows them
    columns = list(rows[0])
    assert columns[: len(IDENTITY) + len(README_CORE)] == IDENTITY + README_CORE
    assert columns.index("err_seen") > max(columns.index(c) for c in README_CORE + ["nll_seen", "brier_unseen"])
    assert columns[-3:] == ["facts", "error", "provenance"]

    # export, csv
    out_csv = tmp_path / "x.csv"
    assert CliRunner().invoke(main, ["export", "--results", results, "--format", "csv", "-o", str(out_csv)]).exit_code == 0
    with out_csv.open() as f:
        csv_rows = list(csv.DictReader(f))
    assert [float(r["err_seen"]) for r in csv_rows] == pytest.approx([r["err_seen"] for r in rows])

    # harbench.load()
    pytest.importorskip("pandas")
    frame = harbench.load("latest", results=results)
    assert "err_seen" in frame.columns
    assert sorted(frame["err_seen"]) == pytest.approx(sorted(r["err_seen"] for r in rows))

    # the main report table (json keeps the table only), with the unit and direction in the text report's note
    res = CliRunner().invoke(main, ["report", "--results", results, "--format", "json"])
    assert res.exit_code == 0, res.output
    table = json.loads(res.output)
    generic = [r for r in rows if r["method"] == "generic"]
    cell = next(t for t in table if t["method"] == "generic")["err_seen_mean"]
    mean = sum(r["err_seen"] for r in generic) / len(generic)
    assert cell == pytest.approx(mean)  # a number, in the stored unit (a fraction), as in export
    res = CliRunner().invoke(main, ["report", "--results", results])
    assert "err_seen ↓ points (%)" in res.output and "acc_seen ↑ points (%)" in res.output

    # the rows handed to harbench_report_summary
    assert with_err_metric.seen_by_summary and all("err_seen" in r for r in with_err_metric.seen_by_summary[-1])

    # the HTML report
    pytest.importorskip("matplotlib")
    page_path = tmp_path / "r.html"
    res = CliRunner().invoke(main, ["report", "--results", results, "--html", str(page_path)])
    assert res.exit_code == 0, res.output
    page = page_path.read_text()
    assert "<th>err_<wbr>seen</th>" in page  # the main table's header (may break after the underscore)


def test_a_stored_metric_no_plugin_declares_any_more_is_still_exported(registry, tmp_path):
    run_id = make_run(tmp_path, [job("generic", "u0", acc_seen=0.5, legacy_score=3.0)])
    rows = Store(tmp_path).job_rows(run_id)
    assert "legacy_score" in export_columns(rows, registry)
    assert METRIC_COLUMNS == [c for c in export_columns(rows, registry) if c in CORE]


# ------------------------------------------------------------------------------------------------ direction


def test_harm_and_worst_decile_follow_the_declared_direction():
    fast = {"a": 0.5, "b": 0.5, "c": 0.5}
    base = {"a": 1.0, "b": 1.0, "c": 1.0}
    assert harm_rate(fast, base, higher_is_better=False) == (0.0, 3)
    assert harm_rate(base, fast, higher_is_better=False) == (1.0, 3)
    assert harm_rate(fast, base) == (1.0, 3)  # accuracy-like: below is worse
    assert math.isnan(harm_rate(fast, base, higher_is_better=None)[0])
    assert worst_decile([1.0, 9.0, 2.0], higher_is_better=False) == 9.0
    assert worst_decile([1.0, 9.0, 2.0]) == 1.0


def _latency_jobs():
    jobs = []
    for i, user in enumerate(["u0", "u1", "u2", "u3"]):
        jobs.append(job("generic", user, acc_seen=0.6, gain_seen=0.0, latency_ms_p50=1.0))
        jobs.append(job("faster", user, acc_seen=0.6, gain_seen=0.0, latency_ms_p50=0.5))
        jobs.append(job("slower", user, acc_seen=0.6, gain_seen=0.0, latency_ms_p50=4.0 if i == 0 else 0.5))
    return jobs


def test_report_metric_latency_uses_lower_is_better(registry, tmp_path):
    make_run(tmp_path, _latency_jobs())
    rows = Store(tmp_path).job_rows(1)
    headers, table = user_level_table(rows, metric="latency_ms_p50", registry=registry)
    by_method = {line[0]: dict(zip(headers, line)) for line in table}
    assert by_method["faster"]["harm rate"] == "0 %"  # faster than generic for every user: nobody harmed
    assert by_method["slower"]["harm rate"] == "25 %"  # u0 is slower than generic
    assert by_method["slower"]["worst decile"] == "4.00"  # the worst decile is the highest latency
    res = CliRunner().invoke(main, ["report", "--results", str(tmp_path), "--metric", "latency_ms_p50"])
    assert res.exit_code == 0, res.output
    assert "share of users above generic (latency_ms_p50: lower is better)" in res.output
    by = {u.key["method"]: u for u in user_level(rows, metric="latency_ms_p50", higher_is_better=False)}
    assert by["faster"].harm == 0.0 and by["slower"].harm == pytest.approx(0.25)
    # accuracy keeps its direction: the same table by acc_seen harms nobody (all equal)
    headers, table = user_level_table(rows, metric="acc_seen", registry=registry)
    assert {line[headers.index("harm rate")] for line in table} == {"0 %"}


def test_summary_table_columns_come_from_the_registry(with_err_metric, tmp_path):
    run_id = make_run(tmp_path, [job("generic", "u0", acc_seen=0.5, err_seen=0.5), job("generic", "u1", acc_seen=0.7,
                                                                                          err_seen=0.3)])
    headers, table = summary_table(Store(tmp_path).job_rows(run_id), registry=with_err_metric)
    assert headers[headers.index("adapt_share_24h") + 1] == "err_seen"  # after the core selection
    assert table[0][headers.index("err_seen")].startswith("40.0 ± 14.1")


# ------------------------------------------------------------------------------------ probabilities for metrics


Y = torch.tensor([0, 1, 1, 0])
P = torch.tensor([[0.90, 0.10], [0.15, 0.85], [0.65, 0.35], [0.45, 0.55]], dtype=torch.float64)


def test_nll_by_hand():
    assert nll(Y, P) == pytest.approx(-(math.log(0.9) + math.log(0.85) + math.log(0.35) + math.log(0.45)) / 4)


def test_ece_by_hand_with_fifteen_equal_width_bins():
    # confidences 0.90, 0.85, 0.65, 0.55 fall in four different bins: ECE is the mean |correct - confidence|
    assert ece(Y, P) == pytest.approx((0.10 + 0.15 + 0.65 + 0.55) / 4)
    # 0.91 (right) and 0.92 (wrong) share the bin (13/15, 14/15]: |accuracy 0.5 - mean confidence 0.915|
    two = torch.tensor([[0.91, 0.09], [0.08, 0.92]], dtype=torch.float64)
    assert ece(torch.tensor([0, 0]), two) == pytest.approx(abs(0.5 - 0.915))
    # 0.82 and 0.88 share a bin with 10 bins (0.8, 0.9] but not with 15: the bins are 15
    apart = torch.tensor([[0.82, 0.18], [0.12, 0.88]], dtype=torch.float64)
    assert ece(torch.tensor([0, 0]), apart) == pytest.approx((0.18 + 0.88) / 2)
    assert ece(torch.tensor([0, 0]), apart, bins=10) == pytest.approx(abs(0.5 - 0.85))
    assert "15 equal-width bins" in CORE["ece_seen"][2]


def test_brier_by_hand():
    assert brier(Y, P) == pytest.approx((0.02 + 0.045 + 0.845 + 0.605) / 4)
    three = torch.tensor([[0.7, 0.2, 0.1]], dtype=torch.float64)
    assert brier(torch.tensor([1]), three) == pytest.approx(0.49 + 0.64 + 0.01)


def test_calibration_metrics_on_job_outputs():
    out = tiny_outputs()
    assert out.prob_seen.shape == (len(out.y_seen), out.info.num_classes)
    assert torch.equal(out.prob_seen.argmax(1), out.pred_seen) and torch.equal(out.prob_unseen.argmax(1), out.pred_unseen)
    assert torch.allclose(out.prob_seen.sum(1), torch.ones(len(out.y_seen), dtype=out.prob_seen.dtype))
    assert CORE["nll_seen"][3](out) == pytest.approx(nll(out.y_seen, out.prob_seen))
    assert CORE["brier_unseen"][3](out) == pytest.approx(brier(out.y_unseen, out.prob_unseen))
    # JobOutputs built without probabilities (older callers) still work: calibration metrics report nothing
    fields = {f: getattr(out, f) for f in JobOutputs.__dataclass_fields__ if not f.startswith("prob_")}
    old = JobOutputs(**fields)
    assert old.prob_seen is None and all(CORE[n][3](old) is None for n in ("nll_seen", "ece_unseen", "brier_seen"))
