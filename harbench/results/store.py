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
import sys
import time
from contextlib import closing, contextmanager
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..records import JobRecord
from .digest import DIGESTED, digest_v1, digest_v2, loads_or_none, metrics_json, record_digest

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
    kind TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (job_id, kind)
);
"""


class StoreError(RuntimeError):
    pass


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


CHUNK = 5000  # jobs read per step by the row readers (their metrics in one range query)
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
                for column in ("digest", "metrics"):  # a store from before digests, from before the JSON metrics
                    if column not in _columns(con, "jobs"):
                        con.execute(f"ALTER TABLE jobs ADD COLUMN {column} TEXT")
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
            if "metrics" in _columns(con, "jobs"):  # a damaged text (no JSON object) is the row reader's to report
                parts.append("SELECT e.key, j.id FROM jobs j, json_each(j.metrics) e WHERE j.run_id=? AND CASE WHEN "
                             f"json_valid(j.metrics) THEN json_type(j.metrics) END = 'object' AND e.key NOT IN ({marks})")
            query = f"SELECT name, min(job) AS first FROM ({' UNION ALL '.join(parts)}) GROUP BY name ORDER BY first, name"
            return [r[0] for r in con.execute(query, [v for _ in parts for v in (run_id, *skip)])]

    def _mismatch(self, run_id: int, damaged: list[int]) -> StoreError:
        return StoreError(f"the results store {self.path} is damaged: {len(damaged)} job record(s) of run {run_id} "
                          f"(job id {', '.join(map(str, damaged[:5]))}) no longer match their digest; their values "
                          "cannot be trusted (restore the store from a backup, or run the suite again)")

    def _row_chunks(self, run_id: int, chunk: int | None = None) -> Iterator[tuple[list[dict[str, Any]], list[int]]]:
        """(rows, ids of damaged records) per ``chunk`` jobs, from one cursor over the jobs in one read transaction
        (one snapshot of the store). Each chunk's metrics JSON is parsed in one ``json.loads`` (the parser shares
        one string per metric name across the chunk); the metrics of records written before that column come
        from one range query on the ``metrics`` table's primary key."""
        shared: dict[str, Any] = {}  # equal JSON texts parse to one shared object

        def parsed(text: str | None, default: str = "null") -> Any:
            text = text or default
            if text in shared:
                return shared[text]
            if len(shared) > 100_000:
                shared.clear()
            hit = shared[text] = json.loads(text)
            return hit

        same = {}.setdefault  # same(s, s): one object for equal values (user ids, names repeat in every row)
        with self._reading() as con:
            con.execute("BEGIN")
            present = _columns(con, "jobs")
            columns = ", ".join(["id", *(c if c in present else "NULL" for c in ("digest", "metrics")), *DIGESTED])
            run = con.execute("SELECT suite FROM runs WHERE id=?", (run_id,)).fetchone()
            suite = run["suite"] if run is not None else None  # (no run: no jobs either)
            jobs = con.cursor()
            jobs.row_factory = None
            jobs.execute(f"SELECT {columns} FROM jobs WHERE run_id=? ORDER BY id", (run_id,))
            while True:
                batch = jobs.fetchmany(chunk or CHUNK)
                if not batch:
                    break
                texts = [b[2] for b in batch if b[2] is not None]
                try:
                    parsed_all = json.loads("[" + ",".join(texts) + "]") if texts else []
                except ValueError:
                    parsed_all = []
                if len(parsed_all) != len(texts):  # a damaged text: read them one by one
                    parsed_all = [loads_or_none(t) for t in texts]
                decoded = iter(parsed_all)
                legacy = self._legacy_metrics(con, batch) if len(texts) < len(batch) else {}
                rows, damaged = [], []
                for b in batch:
                    job_id, digest, text, values = b[0], b[1], b[2], b[3:]
                    if text is not None:
                        metrics = next(decoded)
                        ok = digest is None or (digest == digest_v2(values, text) and isinstance(metrics, dict))
                    else:
                        stored = legacy[job_id]
                        metrics = {n: v if t is None else t for n, v, t in stored}
                        ok = digest is None or digest == digest_v1(values, stored)
                    if not ok:
                        damaged.append(job_id)
                        continue
                    (_, _, dataset, dataset_params, user, method, method_params, variant, hardware, _, seed, status,
                     mode, error, facts, provenance) = values
                    row = {
                        "run_id": run_id, "suite": suite, "dataset": same(dataset, dataset),
                        "dataset_params": parsed(dataset_params), "user": same(user, user),
                        "method": same(method, method), "method_params": parsed(method_params),
                        "variant": same(variant, variant), "hardware": same(hardware, hardware), "seed": seed,
                        "status": same(status, status), "mode": same(mode, mode), "error": error,
                        "facts": parsed(facts, "{}"), "provenance": parsed(provenance, "{}"),
                    }
                    row.update(metrics)
                    rows.append(row)
                yield rows, damaged
            con.rollback()

    @staticmethod
    def _legacy_metrics(con: sqlite3.Connection, batch: list[tuple]) -> dict[int, list[tuple[str, Any, Any]]]:
        """(name, value, text) per job of ``batch``, in name order, from the ``metrics`` table (records written
        before the ``metrics`` column; an interned name per metric, as the JSON parser shares them)."""
        metrics: dict[int, list[tuple[str, Any, Any]]] = {b[0]: [] for b in batch}
        cur = con.cursor()
        cur.row_factory = None
        cur.execute("SELECT job_id, name, value, text FROM metrics WHERE job_id BETWEEN ? AND ? ORDER BY job_id, name",
                    (batch[0][0], batch[-1][0]))
        intern = sys.intern
        for job_id, group in groupby(cur, key=itemgetter(0)):
            if job_id in metrics:  # (another run's job between two of this run's)
                metrics[job_id] = [(intern(n), v, t) for _, n, v, t in group]
        return metrics

    def samples(self, run_id: int, kind: str) -> Iterable[tuple[dict[str, Any], list[float]]]:
        names = ("method", "variant", "hardware", "user", "seed")
        with self._reading() as con:  # streamed from the cursor
            cur = con.cursor()
            cur.row_factory = None
            cur.execute("SELECT j.method, j.variant, j.hardware, j.user, j.seed, s.data FROM samples s "
                        "JOIN jobs j ON j.id=s.job_id WHERE j.run_id=? AND s.kind=?", (run_id, kind))
            for r in cur:
                yield dict(zip(names, r[:5])), json.loads(r[5])


def finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
