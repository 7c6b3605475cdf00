"""Published bundles (#34): ``harbench publish`` writes runs as Parquet and a manifest; every reading command reads
the bundle exactly as it reads the store, and a damaged, edited, newer or incomplete bundle is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from harbench.cli import main
from harbench.records import JobRecord, JobSpec
from harbench.results.bundle import FORMAT, MANIFEST, Bundle, BundleError, _manifest_digest, publish
from harbench.results.source import open_results
from harbench.results.store import Store

USERS = [f"u{i}" for i in range(5)]
METHODS = [("generic", {}, ""), ("finetune-last", {"epochs": 3}, ""), ("finetune-last", {"lr": 0.1}, "lr=0.1")]


def fabricate(folder: Path) -> tuple[Store, list[int]]:
    """Two runs; the second has a failed job, a label metric, a metric absent from some rows and latency samples."""
    store = Store(folder)
    ids = []
    for run in range(2):
        run_id = store.start_run(f"suite{run}", f"suite{run}.yaml", f"name: suite{run}\nbudgets: [adapt_j<=9]\n",
                                 f"hash{run}", {"jobs_planned": 30, "hardware": {"cpu": {}}, "host": "h"})
        items = []
        for m, (method, params, variant) in enumerate(METHODS):
            for u, user in enumerate(USERS):
                for seed in (0, 1):
                    spec = JobSpec("synthetic-drift", {"users": 5}, method, params, variant, "cpu", {}, seed, user)
                    if run == 1 and (m, u, seed) == (1, 2, 1):
                        rec = JobRecord(spec, "failed", error="job: RuntimeError: boom")
                        items.append((rec, {}, {}))
                        continue
                    metrics = {"acc_seen": 0.5 + 0.1 * m + 0.013 * u + 0.004 * seed + 0.01 * run,
                               "adapt_j": 1.0 + 2.0 * m + 0.3 * u, "energy_method": "rapl"}
                    if u % 2:
                        metrics["latency_ms_p50"] = 1.5 + m + 0.1 * u
                    rec = JobRecord(spec, "ok", mode="measured", metrics=metrics, facts={"steps": m * 10})
                    samples = {"latency_s": [0.001 * (m + 1) + 1e-5 * i for i in range(7)]} if run == 1 else {}
                    items.append((rec, {"hardware": {"name": "cpu"}}, samples))
        store.add_jobs(run_id, items)
        store.finish_run(run_id, "complete")
        ids.append(run_id)
    return store, ids


@pytest.fixture
def published(tmp_path):
    store, ids = fabricate(tmp_path / "results")
    out = tmp_path / "bundle"
    result = publish(store, [str(i) for i in ids], out, csv=True)
    assert result.runs == {ids[0]: 30, ids[1]: 30}
    return store, ids, out


def test_a_bundle_gives_the_stores_rows_and_samples(published):
    store, ids, out = published
    bundle = Bundle(out)
    for run_id in ids:
        assert bundle.job_rows(run_id) == store.job_rows(run_id)
        assert [list(r) for r in bundle.job_rows(run_id)] == [list(r) for r in store.job_rows(run_id)]  # key order
        assert bundle.metric_names(run_id) == store.metric_names(run_id)
        assert bundle.sample_kinds(run_id) == store.sample_kinds(run_id)
        assert list(bundle.samples(run_id, "latency_s")) == list(store.samples(run_id, "latency_s"))
    assert len(list(bundle.samples(ids[1], "latency_s"))) == 29
    assert bundle.resolve_run("latest")["id"] == ids[1]
    assert bundle.resolve_run("suite0")["id"] == ids[0]
    assert isinstance(open_results(out / MANIFEST), Bundle)


def test_the_manifest_describes_the_bundle(published):
    store, ids, out = published
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["format"] == FORMAT and manifest["harbench"]
    assert [r["id"] for r in manifest["runs"]] == ids
    assert manifest["runs"][0]["suite_yaml"].startswith("name: suite0")
    assert manifest["runs"][1]["suite_hash"] == "hash1"
    assert "harbench" in manifest["plugins"]
    assert manifest["machine"]["cpu_count"] >= 1
    assert sorted(manifest["files"]) == sorted(f"runs/{i}/{n}" for i in ids for n in ("jobs.parquet", "jobs.csv",
                                                                                       "samples.parquet"))
    # a reader without harbench: the export's columns, one per metric
    table = pq.read_table(out / "runs" / str(ids[1]) / "jobs.parquet").to_pylist()
    assert len(table) == 30 and {"acc_seen", "adapt_j", "energy_method", "metrics_json"} <= set(table[0])


def _cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize("command", [["report"], ["report", "--format", "json"], ["report", "--format", "latex"],
                                     ["runs"], ["report", "0", "--by", "method"]])
def test_reading_commands_print_the_same_from_the_bundle(published, command):
    store, ids, out = published
    command = [str(ids[0]) if c == "0" else c for c in command]
    from_store = _cli(*command, "--results", str(store.folder))
    from_bundle = _cli(*command, "--results", str(out))
    assert from_store.exit_code == 0, from_store.output
    assert from_bundle.exit_code == 0, from_bundle.output
    if command == ["runs"]:  # the same table but for nothing
        assert from_bundle.output == from_store.output
    else:
        assert from_bundle.output == from_store.output


def test_compare_and_export_read_bundles(published, tmp_path):
    store, ids, out = published
    res = _cli("compare", str(ids[0]), str(ids[1]), "--results", str(out), "--fail-on", "acc_seen:-50pt")
    assert res.exit_code == 1 and "FAILED" in res.output  # run 2's failed job, from the bundle as from the store
    again = _cli("compare", str(ids[0]), str(ids[1]), "--results", str(store.folder), "--fail-on", "acc_seen:-50pt")
    assert (res.exit_code, res.output) == (again.exit_code, again.output)
    for fmt in ("csv", "json"):
        a, b = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
        assert _cli("export", str(ids[1]), "--results", str(out), "--format", fmt, "-o", str(a)).exit_code == 0
        assert _cli("export", str(ids[1]), "--results", str(store.folder), "--format", fmt, "-o", str(b)).exit_code == 0
        assert a.read_bytes() == b.read_bytes()


def test_harbench_load_reads_a_bundle_as_a_store(published):
    """``harbench.load`` (what plugin commands such as ``tbft-tables`` read with) takes a bundle too."""
    import harbench

    store, ids, out = published
    from_bundle, from_store = harbench.load(ids[1], results=str(out)), harbench.load(ids[1], results=str(store.folder))
    assert len(from_bundle) == 30 and from_bundle.equals(from_store)


def test_the_bundles_csv_is_the_stores_export(published, tmp_path):
    store, ids, out = published
    csv = tmp_path / "store.csv"
    assert _cli("export", str(ids[1]), "--results", str(store.folder), "--format", "csv", "-o", str(csv)).exit_code == 0
    assert (out / "runs" / str(ids[1]) / "jobs.csv").read_bytes() == csv.read_bytes()


def test_the_html_report_links_the_bundles_files_and_drills_down_per_user(published, tmp_path):
    import base64
    import html as html_module
    import re
    import statistics

    store, ids, out = published
    page = tmp_path / "pages" / "report.html"
    page.parent.mkdir()
    assert _cli("report", str(ids[1]), "--results", str(out), "--html", str(page)).exit_code == 0
    text = page.read_text()
    sections = re.findall(r'<section id="([^"]+)"', text)
    assert sections[:2] == ["decision", "downloads"] and "per-user" in sections  # the answer first
    links = re.findall(r'<a href="([^"]+)"', text)
    assert {Path(link).name for link in links} >= {"jobs.parquet", "jobs.csv", "samples.parquet", "manifest.json"}
    for link in links:  # relative to the page, and they resolve to the bundle's files
        assert not link.startswith(("/", "data:")) and (page.parent / link).resolve().is_file(), link
    # the drill-down: a block per method configuration, a line per user with the mean over the user's seeds
    blocks = re.findall(r'<details class="drill"><summary>(.*?) — (\d+) users</summary>(.*?)</details>', text)
    assert [b[0] for b in blocks] == ["finetune-last", "finetune-last[lr=0.1]", "generic"]
    rows = store.job_rows(ids[1])
    for label, n, table in blocks:
        method, variant = ("finetune-last", "lr=0.1") if "lr=" in label else (label, "")
        mine = [r for r in rows if (r["method"], r["variant"]) == (method, variant) and r["status"] == "ok"]
        assert int(n) == len({r["user"] for r in mine}) == 5
        cells = [re.findall(r"<td>(.*?)</td>", line) for line in re.findall(r"<tr>(<td>.*?)</tr>", table)]
        for cell in cells:
            user_rows = [r for r in mine if r["user"] == cell[0]]
            assert int(cell[2]) == len(user_rows)
            assert float(cell[3]) == pytest.approx(100 * statistics.fmean(r["acc_seen"] for r in user_rows), abs=0.06)
    # from the store: the jobs embedded as a CSV download, the export's bytes
    page2 = tmp_path / "store.html"
    assert _cli("report", str(ids[1]), "--results", str(store.folder), "--html", str(page2)).exit_code == 0
    data = re.search(r'href="data:text/csv;base64,([^"]+)" download="run-2-jobs.csv"', page2.read_text())
    assert data is not None
    assert base64.b64decode(html_module.unescape(data.group(1))) == (out / "runs" / "2" / "jobs.csv").read_bytes()


def _one_line(res) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    return lines[0]


def _rewrite(out: Path, edit) -> None:
    manifest = json.loads((out / MANIFEST).read_text())
    edit(manifest)
    manifest["manifest_digest"] = _manifest_digest(manifest)
    (out / MANIFEST).write_text(json.dumps(manifest))


def test_bad_bundles_are_one_line(published):
    store, ids, out = published
    jobs = out / "runs" / str(ids[1]) / "jobs.parquet"
    # an unknown run
    assert "no run '99'" in _one_line(_cli("report", "99", "--results", str(out)))
    # a file edited after publishing
    data = bytearray(jobs.read_bytes())
    data[len(data) // 2] ^= 0x01
    jobs.write_bytes(bytes(data))
    assert "jobs.parquet was edited or damaged" in _one_line(_cli("report", "--results", str(out)))
    # a missing file
    jobs.unlink()
    assert "jobs.parquet is missing" in _one_line(_cli("report", "--results", str(out)))


def test_an_edited_manifest_and_a_newer_format_are_refused(published):
    store, ids, out = published
    text = (out / MANIFEST).read_text().replace("name: suite0", "name: other")
    (out / MANIFEST).write_text(text)
    assert "manifest.json was edited or damaged" in _one_line(_cli("report", "--results", str(out)))
    _rewrite(out, lambda m: m.update(format=FORMAT + 1))
    line = _one_line(_cli("claims", str(out)))
    assert f"format {FORMAT + 1}" in line and "upgrade harbench" in line
    with pytest.raises(BundleError):
        Bundle(out)


def test_publish_refuses_a_folder_that_is_not_a_bundle_and_replaces_a_bundle(published, tmp_path):
    store, ids, out = published
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    res = _cli("publish", "--results", str(store.folder), "-o", str(other))
    assert "is not a harbench bundle" in _one_line(res)
    assert (other / "notes.txt").read_text() == "mine"
    res = _cli("publish", str(ids[0]), "--results", str(store.folder), "-o", str(out))
    assert res.exit_code == 0, res.output
    assert [r["id"] for r in Bundle(out).runs()] == [ids[0]]
    assert not list(tmp_path.glob(".*partial"))
    assert not (out / "runs" / str(ids[0]) / "jobs.csv").exists()  # CSV only with --csv


def test_claims_reads_bundles_in_three_formats(published):
    store, ids, out = published
    md = _cli("claims", str(out))
    assert md.exit_code == 0, md.output
    assert f"## bundle: run {ids[0]} (suite0, 30 jobs" in md.output
    data = json.loads(_cli("claims", str(out), "--format", "json").output)
    assert [d["runs"] for d in data] == [[i] for i in ids]
    assert all(d["bundle_digest"] == json.loads((out / MANIFEST).read_text())["manifest_digest"] for d in data)
    assert _cli("claims", str(out), "--format", "latex").exit_code == 0
    assert "not a bundle" in _one_line(_cli("claims", str(out / "nothere")))


def _folds(folder: Path) -> tuple[Store, list[int]]:
    """Two runs of one study in folds: the same suite, different target users (u0-u1, then u2-u4)."""
    store = Store(folder)
    ids = []
    for fold, users in enumerate((USERS[:2], USERS[2:])):
        run_id = store.start_run("study", "study.yaml", f"name: study\n# fold {fold}\n", f"hash{fold}",
                                 {"jobs_planned": 2 * len(users), "hardware": {"cpu": {}}})
        items = []
        for user in users:
            for seed in (0, 1):
                spec = JobSpec("synthetic-drift", {"users": 5}, "generic", {}, "", "cpu", {}, seed, user)
                items.append((JobRecord(spec, "ok", mode="measured", metrics={"acc_seen": 0.5}), {}, {}))
        store.add_jobs(run_id, items)
        store.finish_run(run_id, "complete")
        ids.append(run_id)
    return store, ids


def test_folds_published_with_pool_are_judged_together(tmp_path, monkeypatch):
    import harbench.results.report as report

    def users_summary(rows, registry=None):  # a stand-in plugin summary: how many users its rows hold
        return [{"title": "users", "headers": ["users", "jobs"], "rows": [[len({r["user"] for r in rows}), len(rows)]]}]

    monkeypatch.setattr(report, "paper_summaries", users_summary)
    store, ids = _folds(tmp_path / "results")
    out = tmp_path / "pooled"
    res = _cli("publish", *map(str, ids), "--pool", "--results", str(store.folder), "-o", str(out))
    assert res.exit_code == 0, res.output
    assert json.loads((out / MANIFEST).read_text())["pool"] is True
    data = json.loads(_cli("claims", str(out), "--format", "json").output)
    assert [(d["runs"], d["pooled"], d["tables"][0]["rows"]) for d in data] == [(ids, True, [[5, 10]])]
    assert f"## pooled: runs {ids[0]}, {ids[1]} pooled (study, 10 jobs" in _cli("claims", str(out)).output
    # the same runs unpooled: one table per run; --pool pools an unpooled bundle too
    plain = tmp_path / "plain"
    assert _cli("publish", *map(str, ids), "--results", str(store.folder), "-o", str(plain)).exit_code == 0
    data = json.loads(_cli("claims", str(plain), "--format", "json").output)
    assert [d["tables"][0]["rows"] for d in data] == [[[2, 4]], [[3, 6]]]
    data = json.loads(_cli("claims", str(plain), "--pool", "--format", "json").output)
    assert [d["tables"][0]["rows"] for d in data] == [[[5, 10]]]


def test_runs_that_share_a_target_are_never_pooled(published, tmp_path):
    store, ids, out = published  # both runs hold every user: pooling would count each job twice
    line = _one_line(_cli("publish", *map(str, ids), "--pool", "--results", str(store.folder), "-o",
                          str(tmp_path / "p")))
    assert f"cannot pool run {ids[0]} and run {ids[1]}: both hold the generic job of user 'u0'" in line
    assert not (tmp_path / "p").exists()
    line = _one_line(_cli("claims", str(out), "--pool"))
    assert f"cannot pool bundle run {ids[0]} and bundle run {ids[1]}" in line
