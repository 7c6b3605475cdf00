"""A job record's integrity digest and the stored form of its metrics.

Each job row of the store carries a SHA-256 of what it stores, checked whenever a run's rows are read: SQLite's
own integrity check sees pages, not values, so a flipped bit in a stored metric would otherwise change a mean
silently. v2 digests (records written since 2026-12) cover the job's columns and its metrics' JSON text; v1
digests, of records written before, cover the rows of the ``metrics`` table and are still checked.
"""

from __future__ import annotations

import hashlib
import json
import math
from operator import itemgetter
from typing import Any, Iterable, Sequence

_first = itemgetter(0)

DIGESTED = ("run_id", "key", "dataset", "dataset_params", "user", "method", "method_params", "variant", "hardware",
             "hardware_params", "seed", "status", "mode", "error", "facts", "provenance")


def record_digest(job: Any, metrics: Iterable[tuple[str, Any, Any]] = ()) -> str:
    """The digest of a job row as stored: its :data:`DIGESTED` values and its metrics, so a flipped bit in either
    no longer matches. SQLite's integrity check sees pages, not values; this sees values.

    A row with a ``metrics`` JSON column (every record written since 2026-12) is digested with it (v2); a record
    written before keeps its metrics in the ``metrics`` table, given as ``(name, value, text)`` (v1)."""
    values = tuple(job[c] for c in DIGESTED)
    text = job["metrics"] if "metrics" in job.keys() else None
    if text is not None:
        return digest_v2(values, text)
    return digest_v1(values, sorted(metrics, key=_first))


_V2 = "2:"  # the digest's format: a v1 digest (64 hex digits, no prefix) is still checked as it was written


def digest_v2(values: tuple[Any, ...], metrics: str) -> str:
    """v2: the job's :data:`DIGESTED` columns and its metrics' JSON text, as stored. Digesting the text rather
    than the parsed values costs no float formatting: ``repr`` of 1.5 M floats was 2.5 s of every view of a
    10^5-job run, and the text is what a flipped bit changes."""
    h = hashlib.sha256(repr(values).encode())
    h.update(b"\x00")
    h.update(metrics.encode())
    return _V2 + h.hexdigest()


def digest_v1(values: tuple[Any, ...], metrics: Sequence[tuple]) -> str:
    """v1, for records written before the ``metrics`` column: the values and the (name, value, text) metric rows
    in name order, as ``repr`` text."""
    h = hashlib.sha256(repr(list(values)).encode())
    h.update(repr([tuple(m[-3:]) for m in metrics]).encode())
    return h.hexdigest()


def loads_or_none(text: str) -> Any:
    """``json.loads``, None for a text that is not JSON (a damaged record: its digest says so)."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def metrics_json(metrics: dict[str, Any]) -> str:
    """A job's metrics as stored: numbers as floats (``repr``: they read back bit for bit), texts as they are, in
    name order; a missing value (None) is left out and a non-finite one is ``null`` (valid JSON, so SQLite's
    ``json_extract`` reads every record)."""
    out: dict[str, Any] = {}
    for name, value in metrics.items():
        if value is None:
            continue
        if isinstance(value, str):
            out[name] = value
        else:
            v = float(value)
            out[name] = v if math.isfinite(v) else None
    return json.dumps(out, sort_keys=True, allow_nan=False)


def samples_digest(job_id: int, kind: str, data: str) -> str:
    """The digest of one job's raw samples as stored (the latency samples ``compare`` tests): its job, kind and
    JSON text, so a flipped bit, or a list moved to another job, no longer matches."""
    return hashlib.sha256(f"{job_id}\x00{kind}\x00{data}".encode()).hexdigest()
