"""The store's views at scale (#25): rows read in chunks, tables over numpy columns, exports streamed.

The expectations are computed here from first principles — plain Python over the fabricated values, the cell rule
of docs/statistics.md (complete users × seeds, seed and user means, Satterthwaite's t from scipy) — not from the
views' own output.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3
import statistics

import pytest
from scipy import stats

from harbench.records import JobRecord, JobSpec
from harbench.results import export
from harbench.results import store as store_module
from harbench.results.digest import record_digest
from harbench.results.export import export_rows, export_run, write_export
from harbench.results.report import ReportOptions, build_report, numeric_table
from harbench.results.store import Store, StoreError
from harbench.results.tables import MetricColumn, summary_table

ACC = MetricColumn("acc_seen", "fraction", True)
ADAPT_J = MetricColumn("adapt_j", "J", False)
PARAMS = MetricColumn("params_trained", "", False)  # target-independent: once per configuration
LABEL = MetricColumn("energy_method")
METHODS = [("finetune-last", {}, ""), ("finetune-last", {"lr": 0.1}, "lr=0.1"), ("tbft", {}, "")]
TARGETS = [("cpu", "measured"), ("rpi4", "estimated")]
USERS = [f"u{i}" for i in range(6)]


def value(m: int, u: int, seed: int, hardware: int) -> dict[str, float]:
    """Distinct, unrounded values: user u of method m, seed and target (accuracy does not depend on the target)."""
    acc = 0.55 + 0.07 * m + 0.031 * u + 0.011 * seed + 0.0013 * (u * u % 5)
    return {"acc_seen": acc, "adapt_j": 1.0 + 2.0 * m + 0.37 * u + 0.05 * seed + 3.0 * hardware,
            "params_trained": 1000.0 * (m + 1) + 10.0 * seed}


def fabricate(folder, seeds=(0, 1, 2)) -> tuple[Store, int, list[dict]]:
    """A run of 3 configurations x 2 targets x 6 users x 3 seeds (user u5 has no seed 2; one job failed)."""
    store = Store(folder)
    run_id = store.start_run("scale", "scale.yaml", "", "h", {"jobs_planned": 1})
    items, plain = [], []
    for m, (method, params, variant) in enumerate(METHODS):
        for h, (hardware, mode) in enumerate(TARGETS):
            for u, user in enumerate(USERS):
                for seed in seeds:
                    if user == "u5" and seed == 2:
                        continue
                    spec = JobSpec("synthetic-drift", {"users": 6}, method, params, variant, hardware, {}, seed, user)
                    if (m, h, u, seed) == (2, 0, 1, 1):
                        rec = JobRecord(spec, "failed", error="job: RuntimeError: boom")
                    else:
                        metrics = {**value(m, u, seed, h), "energy_method": "rapl" if h == 0 else "roofline"}
                        rec = JobRecord(spec, "ok", mode=mode, metrics=metrics)
                        plain.append({"method": method, "variant": variant, "hardware": hardware, "user": user,
                                      "seed": seed, "mode": mode, **metrics})
                    items.append((rec, {"hardware": {"name": hardware}}, {}))
    store.add_jobs(run_id, items)
    store.finish_run(run_id, "complete")
    return store, run_id, plain


def two_level(rows: list[dict], metric: str, bounds=(-math.inf, math.inf)) -> tuple[float, ...]:
    """(mean, std of user means, low, high, users): the users run under every seed, seed means and user means,
    se^2 = var(seed means)/S + var(user means)/n with Satterthwaite's degrees of freedom; the hull with the
    skew-robust parts where they apply (docs/statistics.md)."""
    seeds = sorted({r["seed"] for r in rows})
    cells = {(r["user"], r["seed"]): r[metric] for r in rows}
    users = [u for u in dict.fromkeys(r["user"] for r in rows) if all((u, s) in cells for s in seeds)]
    grid = [[cells[(u, s)] for u in users] for s in seeds]
    user_means = [statistics.fmean(grid[i][j] for i in range(len(seeds))) for j in range(len(users))]
    seed_means = [statistics.fmean(line) for line in grid]
    vs = statistics.variance(seed_means) / len(seeds)
    vu = statistics.variance(user_means) / len(users)
    df = (vs + vu) ** 2 / (vs ** 2 / (len(seeds) - 1) + vu ** 2 / (len(users) - 1))
    mean = statistics.fmean(user_means)
    half = float(stats.t.ppf(0.975, df)) * math.sqrt(vs + vu)
    low, high = mean - half, mean + half
    # the skew-robust parts (harbench.stats.robust, tested on their own): the interval is the hull
    import numpy as np

    from harbench.stats import robust

    z = np.array(grid, dtype=float)[None]
    if len(users) >= robust.MIN_BOOT_USERS:
        lo, hi, _, _ = robust.bootstrap_t(z, np.array([mean]), np.array([math.sqrt(vs + vu)]), np.array([df]), 0.975)
        low, high = min(low, float(lo[0])), max(high, float(hi[0]))
    if math.isfinite(bounds[0]):
        lo, hi, _, _ = robust.bounded_gpq(z, bounds, 0.95)
        if not math.isnan(lo[0]):
            low, high = min(low, float(lo[0])), max(high, float(hi[0]))
    return (mean, statistics.stdev(user_means), max(low, bounds[0]), min(high, bounds[1]), len(users))


def expected_groups(plain: list[dict]) -> dict[tuple, dict[str, tuple]]:
    """Per method x variant x hardware: (mean, std, low, high, users) of each metric, computed the plain way."""
    out: dict[tuple, dict[str, tuple]] = {}
    for method, _, variant in METHODS:
        for hardware, _ in TARGETS:
            rows = [r for r in plain if (r["method"], r["variant"], r["hardware"]) == (method, variant, hardware)]
            out[(method, variant, hardware)] = {
                "acc_seen": two_level(rows, "acc_seen", (0.0, 1.0)),
                "adapt_j": two_level(rows, "adapt_j"),
                "params_trained": two_level(rows, "params_trained"),
                "jobs": (len(rows),)}
    return out


def test_full_table_matches_a_direct_computation(tmp_path):
    store, run_id, plain = fabricate(tmp_path)
    rows = store.job_rows(run_id)
    headers, table = summary_table(rows, [ACC, ADAPT_J, PARAMS, LABEL], ci=True)
    expected = expected_groups(plain)
    assert len(table) == 6
    for line in table:
        cell = dict(zip(headers, line))
        want = expected[(cell["method"], cell["variant"], cell["hardware"])]
        mean, std, low, high, _ = want["acc_seen"]
        assert cell["acc_seen"] == f"{100 * mean:.1f} ± {100 * std:.1f} [{100 * low:.1f}, {100 * high:.1f}]"
        mean, std, low, high, _ = want["params_trained"]
        assert cell["params_trained"] == f"{mean:,.0f}"
        mean, std, low, high, _ = want["adapt_j"]
        if cell["hardware"] == "cpu":
            assert cell["adapt_j"] == f"{mean:.2f} ± {std:.2f} [{low:.2f}, {high:.2f}]"
        else:  # an estimated cost: two significant digits, marked
            assert cell["adapt_j"].endswith(" (est.)") and cell["adapt_j"].startswith(f"{mean:.{2 - 1 - math.floor(math.log10(mean))}f}")
        assert cell["energy_method"] == ("rapl" if cell["hardware"] == "cpu" else "roofline")
        assert cell["n"] == want["jobs"][0]
        assert cell["failed"] == (1 if (cell["method"], cell["hardware"]) == ("tbft", "cpu") else 0)


def test_numeric_table_matches_a_direct_computation(tmp_path):
    store, run_id, plain = fabricate(tmp_path)
    headers, table = numeric_table(store.job_rows(run_id), [ACC, ADAPT_J, LABEL])
    expected = expected_groups(plain)
    for line in table:
        cell = dict(zip(headers, line))
        key = (cell["method"], cell["variant"], cell["hardware"])
        for metric in ("acc_seen", "adapt_j"):  # the numeric table: the text table's cell, in the stored unit
            mean, std, low, high, users = expected[key][metric]
            got = [cell[f"{metric}_{s}"] for s in ("mean", "std", "ci_low", "ci_high")]
            assert all(math.isclose(g, w, rel_tol=1e-9) for g, w in zip(got, [mean, std, low, high]))
            assert cell[f"{metric}_n"] == users and users in (4, 5)  # u5 lacks seed 2 (and tbft/cpu's u1 seed 1)
        assert cell["energy_method_mean"] in ("rapl", "roofline") and cell["energy_method_std"] is None
        assert cell["jobs"] == expected[key]["jobs"][0]


def test_report_json_is_the_numeric_table_and_computes_nothing_else(tmp_path, monkeypatch):
    store, run_id, _ = fabricate(tmp_path)
    report = build_report(store.resolve_run(run_id), store.job_rows(run_id), ReportOptions(summaries=False))
    import harbench.results.report as report_module

    def refuse(*a, **k):
        raise AssertionError("--format json must not compute the full table or the decision view")

    monkeypatch.setattr(report_module, "summary_table", refuse)
    monkeypatch.setattr(report_module, "decide", refuse)
    data = json.loads(report.text("json"))
    assert len(data) == 6 and {d["hardware"] for d in data} == {"cpu", "rpi4"}


def interleaved(folder, n: int = 23) -> tuple[Store, int, int]:
    """Two runs whose jobs alternate in the jobs table (ids interleave), n jobs each with distinct values."""
    store = Store(folder)
    a = store.start_run("a", "a.yaml", "", "a", {})
    b = store.start_run("b", "b.yaml", "", "b", {})
    for i in range(n):
        for run, offset in ((a, 0.0), (b, 0.5)):
            spec = JobSpec("synthetic-drift", {"users": n}, "generic", {}, "", "cpu", {}, 0, f"u{i:03d}")
            rec = JobRecord(spec, "ok", mode="measured",
                            metrics={"acc_seen": offset + i / 100, "adapt_j": float(i), "energy_method": "rapl"})
            store.add_job(run, rec, {"run": run}, {})
    return store, a, b


def test_rows_read_in_chunks_are_the_rows_of_their_run(tmp_path, monkeypatch):
    store, a, b = interleaved(tmp_path)
    monkeypatch.setattr(store_module, "CHUNK", 4)  # 23 jobs: six chunks, each a range holding the other run's jobs
    rows = store.job_rows(b)
    assert [r["user"] for r in rows] == [f"u{i:03d}" for i in range(23)]
    assert [r["acc_seen"] for r in rows] == [0.5 + i / 100 for i in range(23)]
    assert all(r["adapt_j"] == float(i) and r["provenance"] == {"run": b} for i, r in enumerate(rows))
    assert list(store.iter_job_rows(b, chunk=5)) == rows and store.count_jobs(b) == 23


def damage(store: Store, user: str) -> None:
    with sqlite3.connect(store.path) as con:
        con.execute("""UPDATE jobs SET metrics = replace(metrics, '"adapt_j": 2', '"adapt_j": 3') WHERE id = """
                    "(SELECT id FROM jobs WHERE user=? ORDER BY id DESC LIMIT 1)", (user,))


def test_a_stream_yields_chunks_before_reading_a_damaged_one(tmp_path):
    store, _, b = interleaved(tmp_path)
    damage(store, "u021")  # in the last chunk of 4
    seen = []
    with pytest.raises(StoreError, match="no longer match their digest"):
        for row in store.iter_job_rows(b, chunk=4):
            seen.append(row["user"])
    assert seen == [f"u{i:03d}" for i in range(20)]  # five whole chunks came out before the sixth was read
    with pytest.raises(StoreError, match=r"1 job record\(s\) of run 2"):
        store.job_rows(b)


def old_csv(rows: list[dict]) -> str:
    """The export's CSV as it was written from rows in memory."""
    flat = [{k: json.dumps(v, sort_keys=True, default=str) if isinstance(v, (dict, list)) else v for k, v in r.items()}
            for r in rows]
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(flat[0]))
    w.writeheader()
    w.writerows(flat)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_streams_a_multi_chunk_run(tmp_path, monkeypatch, fmt):
    store, a, b = interleaved(tmp_path / "results")
    monkeypatch.setattr(store_module, "CHUNK", 4)
    monkeypatch.setattr(export, "PARQUET_ROWS", 5)
    rows = export_rows(store.job_rows(b))
    out = tmp_path / f"runs.{fmt}"
    assert export_run(store, b, fmt, out) == 23
    if fmt == "json":
        assert out.read_text() == json.dumps(rows, indent=2, default=str)
        loaded = json.loads(out.read_text())
        assert (loaded[0]["user"], loaded[-1]["user"], loaded[-1]["acc_seen"]) == ("u000", "u022", 0.5 + 22 / 100)
    elif fmt == "csv":
        assert out.read_bytes().decode() == old_csv(rows)
        lines = list(csv.DictReader(out.open()))
        assert len(lines) == 23 and lines[0]["user"] == "u000" and float(lines[-1]["adapt_j"]) == 22.0
    else:
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        table = pq.read_table(out)
        flat = [{k: json.dumps(v, sort_keys=True, default=str) if isinstance(v, (dict, list)) else v
                 for k, v in r.items()} for r in rows]
        assert table.equals(pa.Table.from_pylist(flat))  # the types and values of the table built in memory
        assert pq.ParquetFile(out).num_row_groups == 5 and table.num_rows == 23
    write_export(rows, fmt, tmp_path / f"again.{fmt}")  # rows in memory: the same file
    if fmt != "parquet":
        assert (tmp_path / f"again.{fmt}").read_bytes() == out.read_bytes()


def test_an_export_that_meets_a_damaged_record_leaves_no_file(tmp_path, monkeypatch):
    store, _, b = interleaved(tmp_path / "results")
    monkeypatch.setattr(store_module, "CHUNK", 4)
    damage(store, "u021")
    with pytest.raises(StoreError):
        export_run(store, b, "csv", tmp_path / "runs.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def as_written_before_the_metrics_column(store: Store, run_id: int) -> None:
    """Rewrite a run's records as a store from before 2026-12 held them: metrics in the ``metrics`` table, the
    jobs' ``metrics`` column empty, v1 digests."""
    with sqlite3.connect(store.path) as con:
        con.row_factory = sqlite3.Row
        for row in con.execute("SELECT * FROM jobs WHERE run_id=?", (run_id,)).fetchall():
            stored = [(n, None, v) if isinstance(v, str) else (n, v, None) for n, v in json.loads(row["metrics"]).items()]
            con.executemany("INSERT INTO metrics VALUES (?,?,?,?)", [(row["id"], *m) for m in stored])
            con.execute("UPDATE jobs SET metrics=NULL WHERE id=?", (row["id"],))
            legacy = con.execute("SELECT * FROM jobs WHERE id=?", (row["id"],)).fetchone()
            con.execute("UPDATE jobs SET digest=? WHERE id=?", (record_digest(legacy, stored), row["id"]))


def test_records_written_before_the_metrics_column_read_the_same_and_are_still_checked(tmp_path, monkeypatch):
    store, a, b = interleaved(tmp_path)
    monkeypatch.setattr(store_module, "CHUNK", 4)
    before, names = store.job_rows(b), store.metric_names(b)
    as_written_before_the_metrics_column(store, b)
    with sqlite3.connect(store.path) as con:
        assert con.execute("SELECT count(*) FROM jobs WHERE run_id=? AND metrics IS NULL", (b,)).fetchone()[0] == 23
        assert con.execute("SELECT digest FROM jobs WHERE run_id=?", (b,)).fetchone()[0][:2] != "2:"  # v1
    assert store.job_rows(b) == before and store.metric_names(b) == names == ["acc_seen", "adapt_j", "energy_method"]
    assert [r["acc_seen"] for r in store.job_rows(a)] == [i / 100 for i in range(23)]  # the other run: JSON
    with sqlite3.connect(store.path) as con:  # a legacy value changed: its v1 digest no longer matches
        con.execute("UPDATE metrics SET value = value + 1 WHERE name='adapt_j' AND job_id = "
                    "(SELECT id FROM jobs WHERE run_id=? AND user='u005')", (b,))
    with pytest.raises(StoreError, match=r"1 job record\(s\) of run 2"):
        store.job_rows(b)


@pytest.mark.parametrize("change", ["substr(metrics, 1, 12)", "'{}],[{}'", "'[1, 2]'"])
def test_a_metrics_text_that_no_longer_parses_is_a_damaged_record_not_a_crash(tmp_path, monkeypatch, change):
    store, _, b = interleaved(tmp_path)
    monkeypatch.setattr(store_module, "CHUNK", 4)
    with sqlite3.connect(store.path) as con:
        con.execute(f"UPDATE jobs SET metrics = {change} WHERE run_id=? AND user='u006'", (b,))
    with pytest.raises(StoreError, match=r"1 job record\(s\) of run 2 \(job id 14\)"):
        store.job_rows(b)
    assert store.metric_names(b) == ["acc_seen", "adapt_j", "energy_method"]  # a damaged text is skipped here


def test_the_json_export_is_the_json_modules_text_for_any_value(tmp_path):
    import enum
    from pathlib import Path

    import numpy as np

    class Level(enum.IntEnum):
        HIGH = 3

    shared = {"b": [1, 2.5, None], "a": {"ü": "é\n\"x\""}}
    rows = [{"user": "u\u00e9", "acc_seen": 0.1 + 0.2, "n": 7, "ok": True, "no": False, "none": None, "nan": math.nan,
             "inf": math.inf, "-inf": -math.inf, "np": np.float64(0.5), "i64": np.int64(3), "level": Level.HIGH,
             "path": Path("/x"), "tuple": (1, "2"), "empty": {}, "list": [], "facts": shared, "provenance": shared},
            {}, {"facts": {"deep": {"deeper": [{"k": 1}]}}}]
    write_export(rows, "json", tmp_path / "x.json")
    assert (tmp_path / "x.json").read_text() == json.dumps(rows, indent=2, default=str)
    write_export([], "json", tmp_path / "none.json")
    assert (tmp_path / "none.json").read_text() == "[]"


def test_raw_samples_are_checked_against_their_digest_and_read_in_chunks(tmp_path, monkeypatch):
    store = Store(tmp_path)
    run = store.start_run("s", "s.yaml", "", "s", {})
    for i in range(11):
        spec = JobSpec("synthetic-drift", {}, "generic", {}, "", "cpu", {}, 0, f"u{i:02d}")
        store.add_job(run, JobRecord(spec, "ok", mode="measured", metrics={"acc_seen": 0.5}), {},
                      {"latency_s": [i / 1000, 2 * i / 1000]})
    monkeypatch.setattr(store_module, "CHUNK", 4)
    assert [(ident["user"], data) for ident, data in store.samples(run, "latency_s")] == [
        (f"u{i:02d}", [i / 1000, 2 * i / 1000]) for i in range(11)]
    with sqlite3.connect(store.path) as con:  # a store from before the samples' digests: read, unchecked
        con.execute("UPDATE samples SET digest=NULL WHERE job_id=1")
    assert len(list(store.samples(run, "latency_s"))) == 11
    with sqlite3.connect(store.path) as con:  # one digit of one checked list
        con.execute("UPDATE samples SET data=replace(data, '0.007', '0.008') WHERE job_id=8")
    with pytest.raises(StoreError, match=r"latency_s samples of 1 job record\(s\) of run 1 \(job id 8\)"):
        list(store.samples(run, "latency_s"))


def test_the_csv_export_writes_any_dict_or_list_cell_as_json_like_the_dict_writer_did(tmp_path):
    rows = [{"user": "u1", "acc_seen": 0.5, "odd": {"b": 1, "a": [1, 2]}, "facts": {"x": 1}, "provenance": None},
            {"user": "u2", "acc_seen": None, "odd": [3], "facts": {}, "provenance": {"hardware": {"name": "cpu"}}}]
    write_export(rows, "csv", tmp_path / "x.csv")
    assert (tmp_path / "x.csv").read_bytes().decode() == old_csv(rows)
    with pytest.raises(ValueError, match="fields not in fieldnames"):
        write_export([rows[0], {**rows[1], "extra": 1}], "csv", tmp_path / "y.csv")


def test_a_metrics_text_that_is_no_object_is_damaged_even_without_a_digest(tmp_path):
    store, _, b = interleaved(tmp_path)
    with sqlite3.connect(store.path) as con:
        con.execute("UPDATE jobs SET metrics='[1, 2]', digest=NULL WHERE run_id=? AND user='u003'", (b,))
    with pytest.raises(StoreError, match=r"1 job record\(s\) of run 2"):
        store.job_rows(b)
