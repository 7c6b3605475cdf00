"""Hostile inputs that validate but cannot run: caught before or while they run, in one line, never a traceback."""

from __future__ import annotations

from click.testing import CliRunner

from harbench.cli import main
from harbench.results.store import Store
from harbench.run import Runner
from harbench.suite import parse_suite

from .conftest import tiny_suite


def run(registry, text, folder):
    summary = Runner(parse_suite(text, "hostile.yaml", registry), registry, Store(folder)).run()
    return Store(folder).job_rows(summary.run_id)


def test_an_infinite_or_huge_timeout_means_none(registry, tmp_path):
    for i, value in enumerate([".inf", "1.0e10"]):
        rows = run(registry, tiny_suite(methods="[generic]", extra=f"timeout_s: {value}"), tmp_path / str(i))
        assert [r["status"] for r in rows] == ["ok", "ok"], [r["error"] for r in rows]


def test_the_time_limit_covers_generic_training(registry, tmp_path):
    text = tiny_suite(methods="[generic]", extra="timeout_s: 0.5").replace("generic: {epochs: 1}",
                                                                          "generic: {epochs: 100000}")
    rows = run(registry, text, tmp_path)
    assert {r["status"] for r in rows} == {"failed"}
    assert all("training the generic model exceeded its time limit of 0.5 s" in r["error"] for r in rows)


def test_a_non_finite_generic_model_is_refused_and_not_cached(registry, tmp_path):
    text = tiny_suite(methods="[generic]").replace("generic: {epochs: 1}", "generic: {epochs: 1, lr: .inf}")
    rows = run(registry, text, tmp_path)
    assert all("generic resnet1d model trained on dataset 'synthetic-drift' has non-finite weights" in r["error"]
               for r in rows)
    assert not list((tmp_path / "cache").glob("generic-*"))


def test_a_huge_suite_file_is_refused_in_one_line(registry, tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(tiny_suite() + "#" + "x" * (2 << 20) + "\n")
    res = CliRunner().invoke(main, ["validate", str(path)])
    assert res.exit_code == 2 and "a suite is at most 1 MiB" in res.output and len(res.output.splitlines()) == 1


def test_a_full_disk_or_read_only_store_is_one_line_exit_1(registry, write_suite, tmp_path, monkeypatch):
    import errno
    import sqlite3

    path = write_suite(tiny_suite(methods="[generic]"))

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(Store, "add_job", full)
    res = CliRunner().invoke(main, ["run", str(path), "--results", str(tmp_path / "a"), "-q"])
    assert res.exit_code == 1 and "disk full while writing" in res.output and "--resume" in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1

    def readonly(self, *args, **kwargs):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(Store, "start_run", readonly)
    res = CliRunner().invoke(main, ["run", str(path), "--results", str(tmp_path / "b"), "-q"])
    assert res.exit_code == 1 and "read-only or not writable" in res.output and "Traceback" not in res.output


def test_export_to_a_missing_folder_is_one_line(registry, write_suite, tmp_path):
    path = write_suite(tiny_suite(methods="[generic]"))
    assert CliRunner().invoke(main, ["run", str(path), "--results", str(tmp_path), "-q"]).exit_code == 0
    res = CliRunner().invoke(main, ["export", "--results", str(tmp_path), "-o", str(tmp_path / "no" / "x.csv"),
                                    "--format", "csv"])
    # bad input (exit 2, like every usage error): one line naming the missing folder, no traceback
    assert res.exit_code == 2 and "does not exist" in res.output and "Traceback" not in res.output


def test_a_method_that_kills_its_own_process_fails_only_its_job(registry, tmp_path):
    import os

    from harbench import Method

    from .conftest import plugin_module

    class Suicide(Method):
        name = "suicide"
        description = "exits its process"

        def adapt(self, generic, state, user, ctx):
            os._exit(3)

    registry.add_plugin(plugin_module("suicide", harbench_register_methods=lambda register: register(Suicide)),
                        "harbench-suicide", "0.1")
    rows = run(registry, tiny_suite(methods="[suicide, generic]"), tmp_path)
    status = {(r["method"], r["user"]): (r["status"], r["error"]) for r in rows}
    assert all(s == ("failed", "job: SandboxDied: method 'suicide' (adapt): its process exited with status 3 "
                    "(os._exit or a crash in native code)")
               for (m, _), s in status.items() if m == "suicide"), status
    assert all(s[0] == "ok" for (m, _), s in status.items() if m == "generic")


def test_absurd_sizes_are_refused_by_validate_in_one_line_each(registry, write_suite):
    cases = {
        "{users: 5, windows: 10000000}": "datasets[0].params: dataset 'synthetic-drift' would hold ~",
        "{users: 5, unseen_windows: 10000000}": "lower its users, windows, unseen_windows or sessions",
        "{users: 100000}": "would hold ~",
        "{users: 5, sessions: 10000000}": "would hold ~",
    }
    for params, message in cases.items():
        path = write_suite(tiny_suite().replace("{users: 5, windows: 8, sessions: 2, k: 3, unseen_windows: 3}", params))
        res = CliRunner().invoke(main, ["validate", str(path)])
        assert res.exit_code == 2 and message in res.output, (params, res.output)
        assert len(res.output.strip().splitlines()) == 1
    path = write_suite(tiny_suite(seeds="[" + ", ".join(map(str, range(100_000))) + "]", extra="max_jobs: 100000"))
    res = CliRunner().invoke(main, ["validate", str(path)])
    assert res.exit_code == 2 and "jobs, over max_jobs" in res.output
    assert CliRunner().invoke(main, ["validate", str(write_suite(tiny_suite()))]).exit_code == 0


def test_a_flipped_stored_value_and_a_damaged_store_file_are_said_in_one_line(registry, write_suite, tmp_path):
    import json
    import os
    import sqlite3
    import struct

    path = write_suite(tiny_suite(methods="[generic, {name: finetune-last, params: {epochs: 2}}]"))
    assert CliRunner().invoke(main, ["run", str(path), "--results", str(tmp_path), "-q"]).exit_code == 0
    assert CliRunner().invoke(main, ["report", "--results", str(tmp_path)]).exit_code == 0
    con = sqlite3.connect(tmp_path / "harbench.sqlite")  # a flipped bit that SQLite's own check cannot see
    with con:
        (text,) = con.execute("SELECT metrics FROM jobs ORDER BY id LIMIT 1").fetchone()
        value = json.loads(text)["acc_seen"]
        flipped = struct.unpack("<d", (struct.unpack("<Q", struct.pack("<d", value))[0] ^ 1).to_bytes(8, "little"))[0]
        con.execute("UPDATE jobs SET metrics=? WHERE id=(SELECT MIN(id) FROM jobs)",  # the last bit of acc_seen
                    (text.replace(f'"acc_seen": {value!r}', f'"acc_seen": {flipped!r}'),))
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    res = CliRunner().invoke(main, ["report", "--results", str(tmp_path)])
    assert res.exit_code == 2 and "no longer match their digest" in res.output and "Traceback" not in res.output
    db = tmp_path / "harbench.sqlite"
    for extra in ("-wal", "-shm"):
        if (tmp_path / f"harbench.sqlite{extra}").exists():
            sqlite3.connect(db).execute("PRAGMA wal_checkpoint(TRUNCATE)").connection.close()
    size = db.stat().st_size
    with open(db, "r+b") as f:  # 4 KB of garbage in the middle of the file
        f.seek((size // 2) // 4096 * 4096)
        f.write(os.urandom(4096))
    before = db.read_bytes()
    res = CliRunner().invoke(main, ["run", str(path), "--results", str(tmp_path), "-q"])
    assert res.exit_code in (1, 2) and "is damaged" in res.output and "Traceback" not in res.output, res.output
    assert db.read_bytes() == before  # nothing was written into the damaged file
    for args in (["report"], ["export", "-o", str(tmp_path / "x.json")]):  # the views say it too
        res = CliRunner().invoke(main, [*args, "--results", str(tmp_path)])
        assert res.exit_code in (1, 2) and "is damaged" in res.output and "Traceback" not in res.output, res.output
    db.write_bytes(os.urandom(8192))  # not a database at all
    res = CliRunner().invoke(main, ["report", "--results", str(tmp_path)])
    assert res.exit_code == 2 and "is damaged (file is not a database)" in res.output, res.output


def _descendants(pid: int) -> dict[int, int]:
    """Living (not zombie) processes below ``pid`` and their depth (1: children), from /proc."""
    import os

    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if state != "Z":
                parents.setdefault(int(ppid), []).append(int(entry))
    found: dict[int, int] = {}
    todo = [(pid, 0)]
    while todo:
        parent, depth = todo.pop()
        for child in parents.get(parent, []):
            found[child] = depth + 1
            todo.append((child, depth + 1))
    return found


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_parallel_run_leaves_no_worker_behind(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import pytest

    if not os.path.isdir("/proc/self"):
        pytest.skip("needs Linux's /proc")
    suite = tmp_path / "s.yaml"  # a generic model that trains for hours: a worker is busy when the driver dies
    suite.write_text(tiny_suite(methods="[generic, finetune-last]").replace("generic: {epochs: 1}",
                                                                           "generic: {epochs: 1000000}"))
    env = {**os.environ, "HARBENCH_LOAD_PLUGINS": "", "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen([sys.executable, "-m", "harbench.cli", "run", str(suite), "--results",
                               str(tmp_path / "r"), "--workers", "2", "-q"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # a worker's sandbox zygote (the driver's grandchild) exists once that worker has started its task
        deadline = time.monotonic() + 600  # a patience for a loaded machine, not a speed requirement
        while time.monotonic() < deadline and max(_descendants(driver.pid).values(), default=0) < 2:
            assert driver.poll() is None, "the run ended before its pool started"
            time.sleep(0.5)
        workers = set(_descendants(driver.pid))
        assert max(_descendants(driver.pid).values(), default=0) >= 2, workers
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.2)
    left = [p for p in workers if _alive(p)]
    for p in left:  # never leave them to the rest of the test session
        os.kill(p, signal.SIGKILL)
    assert not left, f"{len(left)} worker process(es) outlived their killed driver"
