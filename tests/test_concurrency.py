"""Several processes on one results folder, and a folder nobody may write: each shared node is computed once,
no job is lost or duplicated, readers never fail on a writer's lock, and report/export only read."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import harbench.run  # noqa: F401  (loaded before a fork: a child without the rights to read it still has it)
from harbench.cli import main
from harbench.results.store import Store
from harbench.run import Runner
from harbench.suite import parse_suite

from .conftest import tiny_suite

INLINE = "isolation: inline"  # the sandbox is not what these tests are about; it would double each process's start

# Run in a subprocess: the harbench CLI, with every process stopping at its first look into the cache for a
# generic model (and for a prepare) until all of them got there, so that all of them find the entry missing at
# once -- the race is planted, not left to the scheduler. It writes the run's counters to a file.
RACER = r"""
import dataclasses, json, os, sys, time
from pathlib import Path

from harbench.run import cache, driver

barrier, parties, out = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
get, run, met = cache.WeightCache.get, driver.Runner.run, set()


def racing_get(self, kind, key):
    if kind in ("generic", "prepare") and kind not in met:
        met.add(kind)
        (barrier / f"{kind}-{os.getpid()}").touch()
        deadline = time.monotonic() + 600
        while len(list(barrier.glob(kind + "-*"))) < parties and time.monotonic() < deadline:
            time.sleep(0.02)
    return get(self, kind, key)


def counted_run(self):
    try:
        return run(self)
    finally:
        out.write_text(json.dumps(dataclasses.asdict(self.counters)))


cache.WeightCache.get, driver.Runner.run = racing_get, counted_run
from harbench.cli import main

main(sys.argv[4:])
"""


def test_concurrent_runs_share_each_node_and_lose_no_job_while_reports_read(tmp_path):
    same = tmp_path / "same.yaml"
    same.write_text(tiny_suite(methods="[generic]", extra=INLINE))
    other = tmp_path / "other.yaml"  # another suite: the same generic model, one more method
    other.write_text(tiny_suite(methods="[generic, {name: finetune-last, params: {epochs: 1}}]", extra=INLINE)
                     .replace("name: tiny", "name: other"))
    results, barrier = tmp_path / "results", tmp_path / "barrier"
    barrier.mkdir()
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    env = {**os.environ, "HARBENCH_LOAD_PLUGINS": "", "OMP_NUM_THREADS": "1"}
    suites = [same, same, other]
    procs = [subprocess.Popen([sys.executable, str(script), str(barrier), str(len(suites)), str(tmp_path / f"c{i}.json"),
                               "run", str(s), "--results", str(results), "-q"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, s in enumerate(suites)]
    reads = []  # report and export while the runs write: never a lock error, never a damaged record
    while any(p.poll() is None for p in procs):
        if results.joinpath("harbench.sqlite").exists() and list(barrier.glob("generic-*")):
            for args in (["report", "--results", str(results)],
                         ["export", "--results", str(results), "-o", str(tmp_path / "x.json")]):
                res = CliRunner().invoke(main, args)
                reads.append((res.exit_code, res.output))
        time.sleep(1.0)
    outputs = [p.communicate() for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
        assert "Traceback" not in err and "locked" not in err, err
    # a run that has only just started has no jobs to report yet: that is said in one line too
    assert reads and all(code == 0 or (code == 2 and "has no jobs" in text) for code, text in reads), reads[:3]
    assert not any("locked" in text or "damaged" in text for _, text in reads)

    counters = [json.loads((tmp_path / f"c{i}.json").read_text()) for i in range(len(suites))]
    assert sum(c["generic_trained"] for c in counters) == 1, counters  # one model, trained by one process
    assert sum(c["generic_cached"] for c in counters) == 2, counters  # ... the others waited and loaded it
    assert sum(c["prepared"] for c in counters) == 2, counters  # generic's prepare (shared) and finetune-last's

    store = Store(results)
    runs = store.runs()
    assert sorted(r["suite"] for r in runs) == ["other", "tiny", "tiny"] and {r["status"] for r in runs} == {"complete"}
    for r in runs:
        rows = store.job_rows(int(r["id"]))
        assert len(rows) == json.loads(r["env"])["jobs_planned"] == (4 if r["suite"] == "other" else 2)
        assert {row["status"] for row in rows} == {"ok"}
        assert len({(row["method"], row["variant"], row["user"], row["seed"]) for row in rows}) == len(rows)
    with sqlite3.connect(results / "harbench.sqlite") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT count(*) FROM jobs").fetchone()[0] == 8


def test_a_reader_never_waits_for_a_writer_and_sees_only_committed_jobs(registry, tmp_path):
    summary = Runner(parse_suite(tiny_suite(methods="[generic]", extra=INLINE), "t.yaml", registry),
                     registry, Store(tmp_path)).run()
    writer = sqlite3.connect(tmp_path / "harbench.sqlite", timeout=0)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another process in the middle of committing a job
        writer.execute("INSERT INTO jobs (run_id, key, status) VALUES (?, 'half-written', 'ok')", (summary.run_id,))
        res = CliRunner().invoke(main, ["export", "--results", str(tmp_path), "-o", str(tmp_path / "x.json")])
        assert res.exit_code == 0 and "wrote 2 rows" in res.output, res.output
        assert CliRunner().invoke(main, ["report", "--results", str(tmp_path)]).exit_code == 0
        assert [r["status"] for r in Store(tmp_path).job_rows(summary.run_id)] == ["ok", "ok"]
    finally:
        writer.rollback()
        writer.close()


def _read_only_copy(src: Path) -> tuple[Path, Path]:
    """A copy of a results folder that nobody may write, in a folder others may enter, and a writable place."""
    base = Path(tempfile.mkdtemp(prefix="harbench-ro-"))
    os.chmod(base, 0o755)
    folder, out = base / "results", base / "out"
    shutil.copytree(src, folder)
    out.mkdir()
    os.chmod(out, 0o777)
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            os.chmod(os.path.join(root, name), 0o444)
        os.chmod(root, 0o555)
    return folder, out


def _invoke_unprivileged(args: list[str]) -> tuple[int, str]:
    """The CLI as a user the folder's permissions apply to: as root (who ignores them), in a forked child that
    drops to ``nobody`` first; otherwise in this process."""
    if os.geteuid() != 0:
        res = CliRunner().invoke(main, args)
        return res.exit_code, res.output
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        try:
            os.setgid(65534)
            os.setuid(65534)
            res = CliRunner().invoke(main, args)
            answer = [res.exit_code, res.output + (repr(res.exception) if res.exit_code not in (0, 1, 2) else "")]
        except BaseException as exc:
            answer = [99, repr(exc)]
        os.write(write, json.dumps(answer).encode())
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 1 << 16):
        data += chunk
    os.close(read)
    os.waitpid(pid, 0)
    code, output = json.loads(data)
    return code, output


def test_report_and_export_work_on_a_read_only_results_folder_and_run_says_it_in_one_line(registry, tmp_path):
    text = tiny_suite(methods="[generic]", extra=INLINE)
    Runner(parse_suite(text, "t.yaml", registry), registry, Store(tmp_path / "src")).run()
    expected = CliRunner().invoke(main, ["report", "--results", str(tmp_path / "src")])
    assert expected.exit_code == 0
    folder, out = _read_only_copy(tmp_path / "src")
    try:
        if os.access(folder, os.W_OK) and os.geteuid() != 0:
            pytest.skip("this file system ignores permissions")
        suite = out / "t.yaml"
        suite.write_text(text)
        before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}

        code, output = _invoke_unprivileged(["report", "--results", str(folder)])
        assert (code, output) == (0, expected.output)
        code, output = _invoke_unprivileged(["export", "--results", str(folder), "-o", str(out / "rows.json")])
        assert code == 0 and "wrote 2 rows" in output, output
        assert len(json.loads((out / "rows.json").read_text())) == 2
        code, output = _invoke_unprivileged(["runs", "--results", str(folder)])
        assert code == 0 and "tiny" in output, output
        code, output = _invoke_unprivileged(["run", str(suite), "--results", str(folder), "-q"])
        assert code == 1 and "read-only or not writable" in output and len(output.strip().splitlines()) == 1, output

        assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before  # and nothing appeared
    finally:
        for root, dirs, files in os.walk(folder.parent):
            os.chmod(root, 0o755)
        shutil.rmtree(folder.parent)


def test_a_read_only_store_with_an_unfolded_write_ahead_log_is_refused_in_one_line(tmp_path):
    src = tmp_path / "src"
    writer = Store(src).connect(create=True)  # a run killed before SQLite folded its log into the file
    writer.execute("PRAGMA wal_autocheckpoint=0")
    with writer:
        writer.execute("INSERT INTO runs (suite, status) VALUES ('tiny', 'running')")
    base = Path(tempfile.mkdtemp(prefix="harbench-ro-"))
    try:
        os.chmod(base, 0o755)
        folder = base / "results"
        folder.mkdir()
        shutil.copy(src / "harbench.sqlite", folder)
        shutil.copy(src / "harbench.sqlite-wal", folder)  # its committed run is only in the log
        writer.close()
        for p in folder.iterdir():
            os.chmod(p, 0o444)
        os.chmod(folder, 0o555)
        code, output = _invoke_unprivileged(["report", "--results", str(folder)])
        assert code == 2 and "write-ahead log" in output and len(output.strip().splitlines()) == 1, output
    finally:
        os.chmod(base / "results", 0o755)
        shutil.rmtree(base)
