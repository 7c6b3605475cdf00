"""The embedded SQLite results store: runs, jobs, metrics and raw samples; one transaction per finished job.

WAL mode keeps the file consistent if the process is killed mid-write; every report and export is derived from
these tables.

Several processes may use one store at once (two runs, a report while a run writes): writers wait for each other
(a busy timeout, and ``BEGIN IMMEDIATE`` so a job's transaction never fails half-way on a lock), readers never wait
for writers (WAL). Every reading method opens the file read-only (``mode=ro``, or ``immutable=1`` when the folder
cannot even hold SQLite's ``-shm`` file), so ``report`` and ``export`` work on a read-only results folder.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..records import JobRecord
from .digest import loads_or_none, metrics_json, record_digest, samples_digest
from .rows import row_chunks, table_columns

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
    digest TEXT, metrics TEXT,
    UNIQUE (run_id, key)
);
-- A job's metrics are jobs.metrics, one JSON object (added by connect() to older stores); this table holds
-- the metrics of records written before it, and is still read for them.
CREATE TABLE IF NOT EXISTS metrics (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    name TEXT NOT NULL, value REAL, text TEXT,
    PRIMARY KEY (job_id, name)
);
CREATE TABLE IF NOT EXISTS samples (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL, data TEXT NOT NULL, digest TEXT,
    PRIMARY KEY (job_id, kind)
);
-- a run's jobs in id order without sorting them (the readers' one cursor; 1 s of 2 at 10^5 jobs)
CREATE INDEX IF NOT EXISTS jobs_by_run ON jobs(run_id, id);
"""


class StoreError(RuntimeError):
    pass


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


CHUNK = 5000  # jobs read per step by the row readers (their metrics in one range query)
BUSY_TIMEOUT_S = 60.0  # how long a writer waits for another process's transaction (one job's commit: milliseconds)
_SETUP_TRIES = 20


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
                for table, column in (("jobs", "digest"), ("jobs", "metrics"), ("samples", "digest")):
                    if column not in table_columns(con, table):  # a store from before digests / the JSON metrics
                        con.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
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
            "hardware, hardware_params, seed, status, mode, error, traceback, facts, provenance, seconds, finished, "
            "metrics) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, s.key, s.dataset, _json(s.dataset_params), s.user, s.method, _json(s.method_params),
             s.variant, s.hardware, _json(s.hardware_params), s.seed, rec.status, rec.mode, rec.error,
             rec.traceback, _json(rec.facts), _json(provenance), rec.seconds, time.time(), metrics_json(rec.metrics)),
        )
        job_id = cur.lastrowid
        row = con.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()  # the values as SQLite keeps them
        con.execute("UPDATE jobs SET digest=? WHERE id=?", (record_digest(row), job_id))
        for kind, data in samples.items():
            text = json.dumps(data)
            con.execute("INSERT INTO samples (job_id, kind, data, digest) VALUES (?,?,?,?)",
                        (job_id, kind, text, samples_digest(job_id, kind, text)))

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
        """One flat dict per job: identity columns, status, provenance, facts and every metric.

        Rows share equal values (a parsed ``method_params`` dict, a user id string) instead of holding copies, so
        10^5 rows fit in ~150 MB: treat them as read-only. Every record is checked against its digest first."""
        rows: list[dict[str, Any]] = []
        damaged: list[int] = []
        for chunk, bad in self._row_chunks(run_id):
            rows += chunk
            damaged += bad
        if damaged:
            raise self._mismatch(run_id, damaged)
        return rows

    def iter_job_rows(self, run_id: int, chunk: int | None = None) -> Iterator[dict[str, Any]]:
        """The rows of :meth:`job_rows`, streamed from the cursor ``chunk`` jobs at a time, in one read transaction
        (memory does not grow with the run). A damaged record raises :class:`StoreError` when its chunk is reached,
        before any row of that chunk is yielded, so a writer of the stream must not keep what it wrote."""
        for rows, bad in self._row_chunks(run_id, chunk or CHUNK):
            if bad:
                raise self._mismatch(run_id, bad)
            yield from rows

    def count_jobs(self, run_id: int) -> int:
        with self._reading() as con:
            return int(con.execute("SELECT count(*) FROM jobs WHERE run_id=?", (run_id,)).fetchone()[0])

    def metric_names(self, run_id: int, exclude: Iterable[str] = ()) -> list[str]:
        """The metrics the run's jobs hold, but those in ``exclude``, in the order a pass over :meth:`job_rows` first
        meets them. ``exclude`` the names already known (an export's registered metrics): SQLite then returns only
        the rest, not 1.5 M (name, job) pairs to group for a 10^5-job run."""
        skip = sorted(set(exclude))
        marks = ",".join("?" * len(skip))
        with self._reading() as con:
            parts = [("SELECT m.name AS name, m.job_id AS job FROM metrics m JOIN jobs j ON j.id=m.job_id "
                      f"WHERE j.run_id=? AND m.name NOT IN ({marks})")]
            if "metrics" in table_columns(con, "jobs"):  # a damaged text (no JSON object) is the row reader's to report
                parts.append("SELECT e.key, j.id FROM jobs j, json_each(j.metrics) e WHERE j.run_id=? AND CASE WHEN "
                             f"json_valid(j.metrics) THEN json_type(j.metrics) END = 'object' AND e.key NOT IN ({marks})")
            query = f"SELECT name, min(job) AS first FROM ({' UNION ALL '.join(parts)}) GROUP BY name ORDER BY first, name"
            return [r[0] for r in con.execute(query, [v for _ in parts for v in (run_id, *skip)])]

    def _mismatch(self, run_id: int, damaged: list[int]) -> StoreError:
        return StoreError(f"the results store {self.path} is damaged: {len(damaged)} job record(s) of run {run_id} "
                          f"(job id {', '.join(map(str, damaged[:5]))}) no longer match their digest; their values "
                          "cannot be trusted (restore the store from a backup, or run the suite again)")

    def _row_chunks(self, run_id: int, chunk: int | None = None) -> Iterator[tuple[list[dict[str, Any]], list[int]]]:
        """(rows, ids of damaged records) per ``chunk`` jobs, all in one read transaction (one snapshot)."""
        with self._reading() as con:
            yield from row_chunks(con, run_id, chunk or CHUNK)

    def sample_kinds(self, run_id: int) -> list[str]:
        """The kinds of raw samples the run's jobs hold (``latency_s``, a metric's repeats), in name order."""
        with self._reading() as con:
            return [r[0] for r in con.execute("SELECT DISTINCT s.kind FROM samples s JOIN jobs j ON j.id=s.job_id "
                                              "WHERE j.run_id=? ORDER BY s.kind", (run_id,))]

    def samples(self, run_id: int, kind: str) -> Iterator[tuple[dict[str, Any], list[float]]]:
        """The run's raw samples of ``kind`` (latency), streamed from the cursor, each list checked against its
        digest (a flipped bit would move a comparison's verdict); ``CHUNK`` lists are parsed in one ``json.loads``."""
        names = ("method", "variant", "hardware", "user", "seed")
        with self._reading() as con:
            checked = "s.digest" if "digest" in table_columns(con, "samples") else "NULL"  # (a store from before)
            cur = con.cursor()
            cur.row_factory = None
            cur.execute(f"SELECT j.method, j.variant, j.hardware, j.user, j.seed, s.data, s.job_id, {checked} "
                        "FROM samples s JOIN jobs j ON j.id=s.job_id WHERE j.run_id=? AND s.kind=? ORDER BY s.job_id",
                        (run_id, kind))
            while batch := cur.fetchmany(CHUNK):
                damaged = [r[6] for r in batch if r[7] is not None and r[7] != samples_digest(r[6], kind, r[5])]
                if damaged:
                    raise StoreError(f"the results store {self.path} is damaged: the {kind} samples of "
                                     f"{len(damaged)} job record(s) of run {run_id} (job id "
                                     f"{', '.join(map(str, damaged[:5]))}) no longer match their digest")
                try:
                    data = json.loads("[" + ",".join(r[5] for r in batch) + "]")
                except ValueError:
                    data = []
                if len(data) != len(batch):  # (a store from before the digests, damaged)
                    data = [loads_or_none(r[5]) for r in batch]
                for r, values in zip(batch, data):
                    yield dict(zip(names, r[:5])), values


def finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
