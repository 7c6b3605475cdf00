"""The decision view (which method on which device), budgets, numeric report outputs, --where units and LaTeX.

A run is written straight into a store with planted values (no training): finetune-full is the most accurate,
tbft[block=fc] is 0.5 pt behind it for every user at 12× less adapt energy, crop is dominated, generic costs
nothing. Every expected answer below follows from those values.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from harbench.cli import main
from harbench.records import JobRecord, JobSpec
from harbench.results.budgets import parse_budget
from harbench.results.decision import decide, render_text, target_table
from harbench.results.latex import escape
from harbench.results.report import ReportOptions, build_report
from harbench.results.store import Store

USERS = [f"u{i}" for i in range(6)]
BASE = [0.70, 0.72, 0.68, 0.75, 0.66, 0.71]
OFFSET = [-0.004, -0.006, -0.005, -0.003, -0.007, -0.005]  # tbft − finetune-full per user: within 1 pt, every user
# method, variant, accuracy gain over generic per user, adapt J on (cpu, rpi5), latency ms on (cpu, rpi5)
METHODS = [
    ("generic", "", lambda i: 0.0, (0.5, 0.0), (2.0, 9.0)),
    ("finetune-full", "epochs=10", lambda i: 0.20, (24.0, 12.0), (2.0, 9.0)),
    ("tbft", "block=fc", lambda i: 0.20 + OFFSET[i], (2.0, 1.0), (2.0, 9.0)),
    ("finetune-last", "", lambda i: 0.15, (1.5, 0.8), (2.0, 9.0)),
    ("crop", "", lambda i: 0.10, (40.0, 20.0), (2.1, 9.5)),
]
TARGETS = {"cpu": ("measured", "codecarbon-estimate", None),
           "rpi5": ("estimated", "estimate:roofline-v1", "uncalibrated")}


def planted_run(folder) -> int:
    store = Store(folder)
    run_id = store.start_run("planted", "planted.yaml", "name: planted\nbudgets: ['adapt_j<=1.5']\n", "planted",
                             {"host": "test", "harbench": "0.1.0"})
    items = []
    for t, (hardware, (mode, energy, calibration)) in enumerate(TARGETS.items()):
        extra = {"calibration_status": calibration} if calibration else {}
        for seed in (0, 1):
            for i, user in enumerate(USERS):
                for method, variant, gain, joules, latency in METHODS:
                    spec = JobSpec("synthetic-drift", {"users": 12}, method, {"v": variant} if variant else {},
                                   variant, hardware, {}, seed, user)
                    acc = BASE[i] + gain(i)
                    metrics = {"acc_seen": acc, "acc_unseen": acc - 0.1, "gain_seen": gain(i), "f1_seen": acc,
                               "adapt_j": joules[t] * (1 + 0.01 * seed), "adapt_s": joules[t] / 10,
                               "latency_ms_p50": latency[t], "energy_method": energy}
                    items.append((JobRecord(spec, "ok", mode=mode, metrics=metrics),
                                  {"hardware": {"name": hardware, "mode": mode, "extra": extra}}, {}))
    store.add_jobs(run_id, items)  # one transaction
    store.finish_run(run_id, "complete")
    return run_id


@pytest.fixture
def rows(tmp_path):
    return Store(tmp_path).job_rows(planted_run(tmp_path))


def test_accuracy_once_per_configuration_and_costs_per_target(rows):
    view = decide(rows)
    assert [a.label for a in view.accuracy][:2] == ["finetune-full[epochs=10]", "tbft[block=fc]"]
    full = view.accuracy[0]
    assert full.users == 6  # each user once, however many targets and seeds
    assert full.mean == pytest.approx(sum(BASE) / 6 + 0.20)
    assert full.low < full.mean < full.high
    by_hw = {t.hardware: t for t in view.targets}
    assert by_hw["cpu"].honesty == "measured" and by_hw["rpi5"].honesty == "uncalibrated"
    assert by_hw["rpi5"].energy == ["estimate:roofline-v1"]
    options = {o.label: o for o in by_hw["rpi5"].options}
    assert options["tbft[block=fc]"].costs["adapt_j"] == pytest.approx(1.0 * 1.005)  # mean over seeds


def test_pareto_fronts_per_axis(rows):
    rpi5 = next(t for t in decide(rows).targets if t.hardware == "rpi5")
    on_energy = {o.label for o in rpi5.options if "adapt_j" in o.fronts}
    assert on_energy == {"generic", "finetune-last", "tbft[block=fc]", "finetune-full[epochs=10]"}  # crop dominated
    on_latency = {o.label for o in rpi5.options if "latency_ms_p50" in o.fronts}
    assert on_latency == {"finetune-full[epochs=10]"}  # same latency for all but crop: only the most accurate


def test_verdict_names_the_cheap_method_within_a_point_with_its_interval(rows):
    rpi5 = next(t for t in decide(rows).targets if t.hardware == "rpi5")
    assert rpi5.verdict.startswith("on rpi5: tbft[block=fc] is within 1 pt of the best accuracy "
                                   "(finetune-full[epochs=10], ")
    assert "at 12× less adapt energy" in rpi5.verdict
    assert rpi5.claim is not None and rpi5.claim.verdict == "reproduced" and rpi5.claim.n_users == 6
    assert rpi5.claim.mean == pytest.approx(sum(OFFSET) / 6)
    # the report's claims (one per target with a cheaper option) form one family, Holm-adjusted, and say so
    view = decide(rows)
    judged = [t.claim for t in view.targets if t.claim is not None]
    assert all(c.family_size == len(judged) for c in judged) and f"Holm p {rpi5.claim.p_adjusted:.3g} of" in rpi5.verdict
    assert any(line.startswith("verdicts: family 'decision view") for line in view.legend)


def test_verdict_without_a_cheaper_equal_says_the_best_is_also_cheapest(rows):
    no_tbft = [r for r in rows if r["method"] != "tbft"]
    cpu = next(t for t in decide(no_tbft).targets if t.hardware == "cpu")
    assert cpu.verdict.startswith("on cpu: finetune-full[epochs=10] has the best accuracy")
    assert cpu.claim is None


def test_budgets_pick_the_best_method_that_fits(rows):
    view = decide(rows, [parse_budget("adapt_j<=1.5"), parse_budget("latency_ms_p50<=5")])
    best = {t.hardware: t.best for t in view.targets}
    assert best["rpi5"] is None  # every rpi5 latency is 9 ms
    view = decide(rows, [parse_budget("adapt_j<=1.6")])
    best = {t.hardware: t.best.label for t in view.targets}
    assert best == {"cpu": "finetune-last", "rpi5": "tbft[block=fc]"}
    text = render_text(view)
    assert "best under adapt_j<=1.6: tbft[block=fc]" in text and "no method meets" not in text
    assert parse_budget("acc_seen>=90pt", fractions=["acc_seen"]).value == pytest.approx(0.90)  # points, as shown
    for bad in ("adapt_j", "adapt_j<=fast", "nothing<=1"):
        with pytest.raises(ValueError, match="budget"):
            parse_budget(bad, known=["adapt_j"])


def test_text_view_labels_honesty_and_explains_energy(rows):
    text = render_text(decide(rows))
    assert "on rpi5 (uncalibrated; energy: estimate:roofline-v1)" in text
    assert "on cpu (measured; energy: codecarbon-estimate)" in text
    assert "energy codecarbon-estimate: codecarbon's model" in text and "TDP" in text
    assert text.count("| finetune-full[epochs=10]") == 3  # accuracy table once, then once per target
    cpu = text.split("on cpu")[1].split("accuracy:")[0]
    crop = next(line for line in cpu.splitlines() if line.startswith("| crop"))
    assert crop.rstrip(" |").endswith("—")  # on no front on cpu: listed, marked, not dropped


def test_cli_report_shows_the_decision_first_full_on_request_and_suite_budgets(tmp_path):
    planted_run(tmp_path)
    res = CliRunner().invoke(main, ["report", "--results", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("Accuracy (once per method configuration)")
    assert "best under adapt_j<=1.5: tbft[block=fc]" in res.output  # the suite's budgets: by default
    assert "Full table" not in res.output and "--full" in res.output
    res = CliRunner().invoke(main, ["report", "--results", str(tmp_path), "--full", "--budget", "adapt_j<=30"])
    assert "Full table" in res.output and "best under adapt_j<=30: finetune-full[epochs=10]" in res.output
    res = CliRunner().invoke(main, ["report", "--results", str(tmp_path), "--budget", "speed<=3"])
    assert res.exit_code == 2 and "unknown metric 'speed'" in res.output and "Traceback" not in res.output


def test_csv_and_json_are_numbers_in_the_stored_unit(tmp_path):
    planted_run(tmp_path)
    res = CliRunner().invoke(main, ["report", "--results", str(tmp_path), "--format", "json"])
    table = json.loads(res.output)
    cell = next(t for t in table if t["method"] == "tbft" and t["hardware"] == "rpi5")
    assert cell["acc_seen_mean"] == pytest.approx(sum(b + 0.20 + o for b, o in zip(BASE, OFFSET)) / 6)
    assert cell["acc_seen_n"] == 6 and cell["acc_seen_ci_low"] < cell["acc_seen_mean"] < cell["acc_seen_ci_high"]
    assert isinstance(cell["adapt_j_std"], float) and cell["infer_mj_mean"] is None
    res = CliRunner().invoke(main, ["report", "--results", str(tmp_path), "--format", "csv"])
    lines = list(csv.DictReader(io.StringIO(res.output)))
    assert float(next(r for r in lines if r["method"] == "crop")["adapt_j_mean"]) > 20
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(io.StringIO(res.output))
    assert frame["acc_seen_mean"].dtype.kind == "f" and frame["latency_ms_p50_mean"].max() == pytest.approx(9.5)


def test_where_takes_the_unit_shown_or_refuses(tmp_path):
    planted_run(tmp_path)
    points = CliRunner().invoke(main, ["report", "--results", str(tmp_path), "--format", "json",
                                       "--where", "acc_seen>88%"])
    fraction = CliRunner().invoke(main, ["report", "--results", str(tmp_path), "--format", "json",
                                         "--where", "acc_seen>0.88frac"])
    assert points.exit_code == 0 and json.loads(points.output) == json.loads(fraction.output)
    methods = {r["method"] for r in json.loads(points.output)}
    assert {"finetune-full", "tbft"} <= methods and "generic" not in methods and "crop" not in methods
    res = CliRunner().invoke(main, ["report", "--results", str(tmp_path), "--where", "acc_seen>88"])
    assert res.exit_code == 2 and "two readings" in res.output and "88pt" in res.output and "outside [0, 1]" in res.output


def test_latex_escapes_every_header_and_note(tmp_path):
    planted_run(tmp_path)
    run = Store(tmp_path).resolve_run("latest")
    report = build_report(run, Store(tmp_path).job_rows(1), ReportOptions.parse(full=True))
    texts = [*report.summary[0], *report.user_level[0], *report.notes, report.user_level_note,
             *report.decision.legend, *(t.verdict for t in report.decision.targets)]
    for text in texts:
        out = escape(text)
        assert all(ord(c) < 128 for c in out), text
        bare = out.replace("\\%", "").replace("\\_", "").replace("\\&", "").replace("\\#", "")
        assert not any(c in bare for c in "%_&#"), text
    assert escape("Δ acc_seen −1.2 ± 0.3 % ↑") == r"$\Delta$ acc\_seen $-$1.2 $\pm$ 0.3 \% $\uparrow$"
    latex = report.text("latex")
    assert all(ord(c) < 128 for c in latex)
    assert latex.count("\\begin{table}") == latex.count("\\toprule") == latex.count("\\bottomrule") >= 4
    assert "\\hline" not in latex and "\\resizebox{\\linewidth}" in latex and "\\caption{Full table" in latex
    assert escape("a ÷ b") == r"a $\div$ b"  # was "a ? b"
    if shutil.which("pdflatex") is None:
        return
    doc = tmp_path / "r.tex"
    doc.write_text("\\documentclass{article}\\usepackage[utf8]{inputenc}\\usepackage[T1]{fontenc}"
                   "\\usepackage{booktabs}\\usepackage{graphicx}"
                   "\\begin{document}\n" + latex + "\n\\end{document}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]


def test_a_method_on_no_front_still_has_its_row_on_every_target(rows):
    view = decide(rows)
    for t in view.targets:
        headers, table = target_table(t)
        labels = [r[0] for r in table]
        assert sorted(labels) == sorted(o.label for o in t.options), (t.hardware, labels)
        off = [r for r in table if r[headers.index("front")] == "—"]
        assert off, "the planted rows have a dominated option on every target"
        assert len(target_table(t, every=False)[1]) == len(table) - len(off)


def test_an_estimated_target_shows_its_latency_interval_and_where_its_calibration_came_from(tmp_path):
    """A target calibrated from measurements (hardware extra ``cost_intervals``, ``calibrated_from``) shows each
    latency with the interval the ratios give, and names the measurements; the other cost axes say they have no
    interval. A profile nobody calibrated shows no interval at all."""
    rows = Store(tmp_path).job_rows(planted_run(tmp_path))
    for r in rows:
        if r["hardware"] == "rpi5":
            r["provenance"]["hardware"]["extra"] = {"calibration_status": "calibrated",
                                                     "cost_intervals": {"latency_ms_p50": [0.5, 2.0]},
                                                     "calibrated_from": "10 rows of board.csv"}
    rpi5 = next(t for t in decide(rows).targets if t.hardware == "rpi5")
    assert rpi5.honesty == "estimated" and rpi5.intervals == {"latency_ms_p50": (0.5, 2.0)}
    text = render_text(decide(rows))
    assert "9.0 [4.5, 18]" in text  # 9 ms latency, x0.5 .. x2.0
    assert "measurements: 10 rows of board.csv" in text and "adapt energy" in text
    assert "uncalibrated, no interval" in text
    plain = render_text(decide(Store(tmp_path / "b").job_rows(planted_run(tmp_path / "b"))))
    assert "| 9.0 " in plain and "9.0 [" not in plain  # the uncalibrated target's latency, bare
    assert "with an interval" not in plain
