"""Reading a run's job records back as rows: one cursor over the jobs, each chunk's metrics parsed at once, every
record checked against its digest (:mod:`.digest`) before a row of its chunk is handed out."""

from __future__ import annotations

import json
import sqlite3
import sys
from itertools import groupby
from operator import itemgetter
from typing import Any, Iterator

from .digest import DIGESTED, digest_v1, digest_v2, loads_or_none


def table_columns(con: sqlite3.Connection, table: str) -> set[str]:
    """The columns a table has in this store (older stores lack some)."""
    return {r[1] for r in con.execute(f"PRAGMA table_info({table})")}


def row_chunks(con: sqlite3.Connection, run_id: int, chunk: int) -> Iterator[tuple[list[dict[str, Any]], list[int]]]:
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
    con.execute("BEGIN")
    present = table_columns(con, "jobs")
    columns = ", ".join(["id", *(c if c in present else "NULL" for c in ("digest", "metrics")), *DIGESTED])
    run = con.execute("SELECT suite FROM runs WHERE id=?", (run_id,)).fetchone()
    suite = run["suite"] if run is not None else None  # (no run: no jobs either)
    jobs = con.cursor()
    jobs.row_factory = None
    jobs.execute(f"SELECT {columns} FROM jobs WHERE run_id=? ORDER BY id", (run_id,))
    while True:
        batch = jobs.fetchmany(chunk)
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
        legacy = legacy_metrics(con, batch) if len(texts) < len(batch) else {}
        rows, damaged = [], []
        for b in batch:
            job_id, digest, text, values = b[0], b[1], b[2], b[3:]
            if text is not None:
                metrics = next(decoded)
                ok = isinstance(metrics, dict) and (digest is None or digest == digest_v2(values, text))
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


def legacy_metrics(con: sqlite3.Connection, batch: list[tuple]) -> dict[int, list[tuple[str, Any, Any]]]:
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
