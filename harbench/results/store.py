"""The embedded SQLite results store: runs, jobs, metrics and raw samples; one transaction per finished job.

WAL mode keeps the file consistent if the process is killed mid-write; every report and export is derived from
these tables.

Several processes may use one store at once (two runs, a report while a run writes): writers wait for each other
(a busy timeout, and ``BEGIN IMMEDIATE`` so a job's transaction never fails half-way on a lock), readers never wait
for writers (WAL). Every reading method opens the file read-only (``mode=ro``, or ``immutable=1`` when the folder
cannot even hold SQLite's ``-shm`` file), so ``report`` and ``export`` work on a read-only results folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import time
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..records import JobRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    suite TEXT NOT NULL, suite_path TEXT, suite_yaml TEXT, suite_hash TEXT,
    started REAL, ended REAL, status TEXT, env TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL,
    dataset TEXT, dataset_params TEXT, user TEXT, method TEXT, method_params TEXT, variant TEXT,
    hardware TEXT, hardware_params TEXT, seed INTEGER, status TEXT, mode TEXT,
    error TEXT, traceback TEXT, facts TEXT, provenance TEXT, seconds REAL, finished REAL,
    UNIQUE (run_id, key)
);
CREATE TABLE IF NOT EXISTS metrics (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    name TEXT NOT NULL, value REAL, text TEXT,
    PRIMARY KEY (job_id, name)
);
CREATE TABLE IF NOT EXISTS samples (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (job_id, kind)
);
"""


class StoreError(RuntimeError):
    pass


_DIGESTED = ("run_id", "key", "dataset", "dataset_params", "user", "method", "method_params", "variant", "hardware",
             "hardware_params", "seed", "status", "mode", "error", "facts", "provenance")


def record_digest(job: Any, metrics: Iterable[tuple[str, Any, Any]]) -> str:
    """SHA-256 of a job row's stored values and its metrics: a flipped bit in either no longer matches.

    SQLite's integrity check sees pages, not values; this sees values."""
    h = hashlib.sha256(repr([job[c] for c in _DIGESTED]).encode())
    h.update(repr(sorted((n, v, t) for n, v, t in metrics)).encode())
    return h.hexdigest()


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


BUSY_TIMEOUT_S = 60.0  # how long a writer waits for another process's transaction (one job's commit: milliseconds)
_SETUP_TRIES = 20


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in con.execute(f"PRAGMA table_info({table})")}


class Store:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / "harbench.sqlite"

    def connect(self, create: bool = False) -> sqlite3.Connection:
        """A connection that may write (creating the store when ``create``)."""
        if not self.path.exists() and not create:
            raise StoreError(f"no results store at {self.path}; run a suite first or pass --results DIR")
        self.folder.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        con.row_factory = sqlite3.Row
        for attempt in range(_SETUP_TRIES):  # switching a new file to WAL can be refused while another opens it
            try:
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA foreign_keys=ON")
                con.executescript(SCHEMA)
                if "digest" not in _columns(con, "jobs"):  # a store from before digests
                    con.execute("ALTER TABLE jobs ADD COLUMN digest TEXT")
                return con
            except sqlite3.OperationalError as exc:
                if "duplicate column" in str(exc):  # another process added it first
                    return con
                if "locked" not in str(exc) or attempt == _SETUP_TRIES - 1:
                    con.close()
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def read(self) -> sqlite3.Connection:
        """A read-only connection: it never writes the file, the folder or SQLite's side files, and never waits for
        a writer. On a folder that cannot hold the ``-shm`` file SQLite needs for WAL, the file is opened as
        immutable — refused when an uncheckpointed ``-wal`` sits beside it, whose commits that would not see."""
        if not self.path.exists():
            raise StoreError(f"no results store at {self.path}; run a suite first or pass --results DIR")
        uri = self.path.resolve().as_uri()
        try:
            con = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            if os.access(self.folder, os.W_OK):
                raise
            wal = self.path.with_name(self.path.name + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise StoreError(f"the results store {self.path} is read-only and has a write-ahead log ({wal.name}) "
                                 "that was never folded into it (a run was killed): make the folder writable once "
                                 "and run harbench report, or copy the folder elsewhere") from None
            con = sqlite3.connect(f"{uri}?immutable=1", uri=True)
        except sqlite3.DatabaseError as exc:  # "file is not a database"
            raise self._damaged(exc) from None
        con.row_factory = sqlite3.Row
        return con

    def _damaged(self, detail: object) -> StoreError:
        return StoreError(f"the results store {self.path} is damaged ({detail}); nothing was written to it — keep a "
                          "copy, and use another --results folder (or restore it from a backup)")

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection for one view, closed afterwards; a file SQLite finds malformed is one line."""
        try:
            with closing(self.read()) as con:
                yield con
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as exc:  # "database disk image is malformed"
            raise self._damaged(exc) from None

    def check(self) -> None:
        """SQLite's own check of the file (pages, indexes): a damaged store is said in one line, never written."""
        if not self.path.exists():
            return
        try:
            with closing(self.read()) as con:
                result = [r[0] for r in con.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            result = [str(exc)]
        if result != ["ok"]:
            raise self._damaged(result[0])

    # ------------------------------------------------------------------------------------------ writing
    @contextmanager
    def _writing(self, create: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction, closed afterwards. ``BEGIN IMMEDIATE`` takes the write lock first (waiting out
        another process's commit), so no statement inside can fail on a lock half-way."""
        con = self.connect(create)
        try:
            con.execute("BEGIN IMMEDIATE")
            yield con
            con.commit()
        except BaseException:
            con.rollback()
            raise
        finally:
            con.close()

    def start_run(self, suite: str, path: str, text: str, suite_hash: str, env: dict) -> int:
        with self._writing(create=True) as con:
            cur = con.execute(
                "INSERT INTO runs (suite, suite_path, suite_yaml, suite_hash, started, status, env) VALUES (?,?,?,?,?,?,?)",
                (suite, path, text, suite_hash, time.time(), "running", _json(env)),
            )
            return int(cur.lastrowid)

    def reopen_run(self, run_id: int) -> None:
        with self._writing() as con:
            con.execute("UPDATE runs SET status='running', ended=NULL WHERE id=?", (run_id,))

    def finish_run(self, run_id: int, status: str) -> None:
        with self._writing() as con:
            con.execute("UPDATE runs SET ended=?, status=? WHERE id=?", (time.time(), status, run_id))

    def add_job(self, run_id: int, rec: JobRecord, provenance: dict, samples: dict[str, list[float]]) -> None:
        """Commit one job with its metrics and raw samples atomically (replacing an earlier failed attempt)."""
        with self._writing() as con:
            self._insert_job(con, run_id, rec, provenance, samples)

    def add_jobs(self, run_id: int, items: Iterable[tuple[JobRecord, dict, dict[str, list[float]]]]) -> int:
        """Commit many jobs — (record, provenance, samples) — in one transaction: all or none. For records that
        already exist elsewhere (a warm run's cached jobs, an import), so one commit costs one fsync, not one per job;
        a computed job is still committed alone, as soon as it finishes (``add_job``)."""
        n = 0
        with self._writing() as con:
            for rec, provenance, samples in items:
                self._insert_job(con, run_id, rec, provenance, samples)
                n += 1
        return n

    @staticmethod
    def _insert_job(con: sqlite3.Connection, run_id: int, rec: JobRecord, provenance: dict,
                    samples: dict[str, list[float]]) -> None:
        s = rec.spec
        con.execute("DELETE FROM jobs WHERE run_id=? AND key=?", (run_id, s.key))
        cur = con.execute(
            "INSERT INTO jobs (run_id, key, dataset, dataset_params, user, method, method_params, variant, "
            "hardware, hardware_params, seed, status, mode, error, traceback, facts, provenance, seconds, finished) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, s.key, s.dataset, _json(s.dataset_params), s.user, s.method, _json(s.method_params),
             s.variant, s.hardware, _json(s.hardware_params), s.seed, rec.status, rec.mode, rec.error,
             rec.traceback, _json(rec.facts), _json(provenance), rec.seconds, time.time()),
        )
        job_id = cur.lastrowid
        stored = []
        for name, value in rec.metrics.items():
            if isinstance(value, str):
                stored.append((name, None, value))
            elif value is not None:
                stored.append((name, float(value), None))
        con.executemany("INSERT INTO metrics VALUES (?,?,?,?)", [(job_id, *m) for m in stored])
        row = con.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        con.execute("UPDATE jobs SET digest=? WHERE id=?", (record_digest(row, stored), job_id))
        for kind, data in samples.items():
            con.execute("INSERT INTO samples VALUES (?,?,?)", (job_id, kind, json.dumps(data)))

    # ------------------------------------------------------------------------------------------ reading
    def runs(self) -> list[sqlite3.Row]:
        with self._reading() as con:
            return con.execute("SELECT * FROM runs ORDER BY id").fetchall()

    def resolve_run(self, ref: str | int | None) -> sqlite3.Row:
        with self._reading() as con:
            if ref in (None, "latest"):
                row = con.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
            else:
                try:
                    row = con.execute("SELECT * FROM runs WHERE id=?", (int(ref),)).fetchone()
                except ValueError:
                    row = con.execute("SELECT * FROM runs WHERE suite=? ORDER BY id DESC LIMIT 1", (ref,)).fetchone()
        if row is None:
            raise StoreError(f"no run {ref!r} in {self.path}" if ref not in (None, "latest") else f"no runs in {self.path}")
        return row

    def resumable_run(self, suite_hash: str) -> sqlite3.Row | None:
        if not self.path.exists():
            return None
        with self._reading() as con:
            return con.execute(
                "SELECT * FROM runs WHERE suite_hash=? ORDER BY id DESC LIMIT 1", (suite_hash,)
            ).fetchone()

    def done_keys(self, run_id: int) -> set[str]:
        with self._reading() as con:
            rows = con.execute("SELECT key FROM jobs WHERE run_id=? AND status IN ('ok','skipped')", (run_id,))
            return {r["key"] for r in rows}

    def job_rows(self, run_id: int) -> list[dict[str, Any]]:
        """One flat dict per job: identity columns, status, provenance, facts and every metric."""
        with self._reading() as con:
            run = con.execute("SELECT suite FROM runs WHERE id=?", (run_id,)).fetchone()
            jobs = con.execute("SELECT * FROM jobs WHERE run_id=? ORDER BY id", (run_id,)).fetchall()
            metrics = con.execute(
                "SELECT m.* FROM metrics m JOIN jobs j ON j.id=m.job_id WHERE j.run_id=?", (run_id,)
            ).fetchall()
        by_job: dict[int, dict[str, Any]] = {}
        raw: dict[int, list[tuple[str, Any, Any]]] = {}
        for m in metrics:
            by_job.setdefault(m["job_id"], {})[m["name"]] = m["text"] if m["text"] is not None else m["value"]
            raw.setdefault(m["job_id"], []).append((m["name"], m["value"], m["text"]))
        damaged = [j["id"] for j in jobs if "digest" in j.keys() and j["digest"] is not None and j["digest"] != record_digest(j, raw.get(j["id"], []))]
        if damaged:
            raise StoreError(f"the results store {self.path} is damaged: {len(damaged)} job record(s) of run {run_id} "
                             f"(job id {', '.join(map(str, damaged[:5]))}) no longer match their digest; their values "
                             "cannot be trusted (restore the store from a backup, or run the suite again)")
        rows = []
        for j in jobs:
            row = {
                "run_id": run_id, "suite": run["suite"], "dataset": j["dataset"],
                "dataset_params": json.loads(j["dataset_params"]), "user": j["user"], "method": j["method"],
                "method_params": json.loads(j["method_params"]), "variant": j["variant"], "hardware": j["hardware"],
                "seed": j["seed"], "status": j["status"], "mode": j["mode"], "error": j["error"],
                "facts": json.loads(j["facts"] or "{}"), "provenance": json.loads(j["provenance"] or "{}"),
            }
            row.update(by_job.get(j["id"], {}))
            rows.append(row)
        return rows

    def samples(self, run_id: int, kind: str) -> Iterable[tuple[dict[str, Any], list[float]]]:
        with self._reading() as con:
            rows = con.execute(
                "SELECT j.method, j.variant, j.hardware, j.user, j.seed, s.data FROM samples s JOIN jobs j ON j.id=s.job_id "
                "WHERE j.run_id=? AND s.kind=?", (run_id, kind)).fetchall()
        for r in rows:
            yield {k: r[k] for k in ("method", "variant", "hardware", "user", "seed")}, json.loads(r["data"])


def finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
