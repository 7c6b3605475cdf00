"""Exports (JSON, CSV, Parquet) and ``harbench.load()``: one row per job, the documented column contract.

:func:`export_run` streams a run from the store's cursor to the file, a chunk of jobs at a time, so its memory does
not grow with the run; :func:`write_export` writes rows already in memory the same way (the same bytes). Both
write a temporary file beside the target and rename it into place at the end: a failure (a damaged record met
half-way) leaves no half-written export.
"""

from __future__ import annotations

import csv
import json
import math
import os
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .store import Store
from .tables import IDENTITY, TRAILER, metric_columns, registered_metrics

PARQUET_ROWS = 10_000  # rows per Parquet row group (and per conversion to Arrow)


def export_columns(rows: Sequence[dict[str, Any]] = (), registry: Any = None) -> list[str]:
    """The export's columns: identity, every metric (core first, then plugins'), facts, error, provenance."""
    return [*IDENTITY, *(m.name for m in metric_columns(rows, registry)), *TRAILER]


def export_row(r: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """One job row in the export's columns (``names``: the metric columns)."""
    columns = [*IDENTITY, *names, *TRAILER]
    row = dict(zip(columns, map(r.get, columns)))
    for k in ("facts", "provenance"):
        if k not in r:
            row[k] = {}
    return row


def export_rows(rows: Iterable[dict[str, Any]], registry: Any = None) -> list[dict[str, Any]]:
    rows = list(rows)
    names = [m.name for m in metric_columns(rows, registry)]
    return [export_row(r, names) for r in rows]


def run_columns(store: Store, run_id: int, registry: Any = None) -> list[str]:
    """:func:`export_columns` of a run's rows without reading them: the registered metrics, then the metrics the
    run holds that no plugin declares, in the order the rows first hold them."""
    declared = [m.name for m in registered_metrics(registry)]
    known = set(declared) | set(IDENTITY) | set(TRAILER)
    return [*IDENTITY, *declared, *store.metric_names(run_id, exclude=known), *TRAILER]


def export_run(store: Store, run_id: int, fmt: str, path: str | Path, registry: Any = None) -> int:
    """Write run ``run_id``'s export to ``path``, streamed from the store; returns the number of rows."""
    columns = run_columns(store, run_id, registry)
    names = columns[len(IDENTITY):len(columns) - len(TRAILER)]

    def rows() -> Iterator[dict[str, Any]]:
        return (export_row(r, names) for r in store.iter_job_rows(run_id))

    return _write(rows, fmt, path, columns)


def write_export(rows: Iterable[dict[str, Any]], fmt: str, path: str | Path) -> int:
    """Write export rows (:func:`export_rows`) to ``path``; returns the number of rows."""
    items = rows if isinstance(rows, (list, tuple)) else list(rows)
    return _write(lambda: iter(items), fmt, path, list(items[0]) if items else export_columns())


_OBJECTS = (dict, list)
_OBJECT_TYPES = frozenset(_OBJECTS)
_OBJECT_COLUMNS = frozenset({"dataset_params", "method_params", "facts", "provenance"})


class _Texts:
    """JSON text of the dict and list cells (parameters, facts, provenance), once per object: the store's reader
    shares one parsed object among the rows holding equal texts, so 10^5 rows hold a few hundred distinct ones.
    Each entry keeps its object, so an id is never reused while cached; the cache is emptied as it grows.
    ``encode``: the text of one object (default: the CSV/Parquet cells' ``json.dumps(..., sort_keys=True)``)."""

    def __init__(self, encode: Callable[[Any], str] | None = None) -> None:
        self.encode = encode or (lambda v: json.dumps(v, sort_keys=True, default=str))
        self.cache: dict[int, tuple[Any, str]] = {}

    def __call__(self, v: Any) -> Any:
        return self.text(v) if isinstance(v, _OBJECTS) else v

    def text(self, v: Any) -> str:
        hit = self.cache.get(id(v))
        if hit is not None and hit[0] is v:
            return hit[1]
        if len(self.cache) > 10_000:
            self.cache.clear()
        text = self.encode(v)
        self.cache[id(v)] = (v, text)
        return text


def _flat(row: dict[str, Any], texts: _Texts | None = None) -> dict[str, Any]:
    t = texts or _Texts()
    return {k: t(v) for k, v in row.items()}


def _write(rows: Callable[[], Iterator[dict[str, Any]]], fmt: str, path: str | Path, columns: list[str]) -> int:
    """``rows()`` gives a fresh pass over the rows (Parquet takes two: the column types, then the values)."""
    writers = {"json": _json, "csv": _csv, "parquet": _parquet}
    if fmt not in writers:
        raise ValueError(f"unknown export format {fmt!r}; expected json, csv or parquet")
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        n = writers[fmt](rows, partial, columns)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return n


def _json(rows: Callable[[], Iterator[dict[str, Any]]], path: Path, columns: list[str]) -> int:
    """``json.dumps(rows, indent=2, default=str)``, written one row at a time. The standard encoder has no C path
    with ``indent``: a row is assembled here from each value's C-encoded text instead (17 s -> a few seconds for
    10^5 rows), the same bytes; ``tests/test_results_scale.py`` compares them."""
    n = 0
    obj = _Texts(lambda v: json.dumps(v, indent=2, default=str).replace("\n", "\n    ")).text  # nested 2 deep

    encode = {float: _float, str: encode_basestring_ascii, int: int.__repr__, type(None): lambda v: "null",
              bool: lambda v: "true" if v else "false", dict: obj, list: obj}
    def other(v: Any) -> str:  # a subclass (numpy's float64, an IntEnum), a tuple, or default=str: the json module's
        return obj(v) if isinstance(v, (dict, list, tuple)) else json.dumps(v, default=str)

    keys: dict[str, str] = {}
    with path.open("w") as f:
        for row in rows():
            parts = []
            for k, v in row.items():
                key = keys.get(k)
                if key is None:
                    key = keys[k] = "\n    " + encode_basestring_ascii(k) + ": "
                parts.append(key + encode.get(type(v), other)(v))
            text = "{" + ",".join(parts) + "\n  }" if parts else "{}"
            f.write(("[\n  " if n == 0 else ",\n  ") + text)
            n += 1
        f.write("\n]" if n else "[]")
    return n


def _float(v: float) -> str:
    """The json module's float text: repr, and NaN / Infinity / -Infinity for the non-finite."""
    if v != v:
        return "NaN"
    if v in (math.inf, -math.inf):
        return "Infinity" if v > 0 else "-Infinity"
    return float.__repr__(v)


def _csv(rows: Callable[[], Iterator[dict[str, Any]]], path: Path, columns: list[str]) -> int:
    n = 0
    texts = _Texts()
    with path.open("w", newline="") as f:
        w = csv.writer(f)  # (csv.DictWriter checks each row's keys against the columns: a third of the time)
        w.writerow(columns)
        names = set(columns)
        known = [i for i, c in enumerate(columns) if c in _OBJECT_COLUMNS]  # parameters, facts, provenance
        for row in rows():
            if row.keys() != names and row.keys() - names:  # as csv.DictWriter: a missing cell is empty, an extra one
                raise ValueError(f"dict contains fields not in fieldnames: {sorted(row.keys() - names)}")
            cells = list(map(row.get, columns))
            for i in known:
                cells[i] = texts(cells[i])
            if not _OBJECT_TYPES.isdisjoint(map(type, cells)):  # a dict or list elsewhere (C loops: no per-cell call)
                cells = [texts(v) for v in cells]
            w.writerow(cells)
            n += 1
    return n


def _parquet(rows: Callable[[], Iterator[dict[str, Any]]], path: Path, columns: list[str]) -> int:
    """Each column's type is what Arrow infers from all its values (as ``Table.from_pylist`` of every row would):
    one pass collects a value of each Python type a column holds, the second writes row groups of that schema."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("Parquet export needs the parquet extra: pip install 'harbench[parquet]'") from None
    seen: dict[str, dict[type, Any]] = {}
    texts = _Texts()
    for row in rows():
        for k, v in _flat(row, texts).items():
            kinds = seen.setdefault(k, {})
            if v is not None and type(v) not in kinds:
                kinds[type(v)] = v
    names = list(seen) or columns
    schema = pa.schema([(k, pa.array(list(seen.get(k, {}).values())).type if seen.get(k) else pa.null())
                        for k in names])
    n = 0
    with pq.ParquetWriter(str(path), schema) as writer:
        chunk: list[dict[str, Any]] = []
        for row in rows():
            chunk.append(_flat(row, texts))
            if len(chunk) == PARQUET_ROWS:
                writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
                n += len(chunk)
                chunk = []
        if chunk or n == 0:
            writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
            n += len(chunk)
    return n


def write_stream(rows: Callable[[], Iterator[dict[str, Any]]], fmt: str, path: str | Path, columns: list[str]) -> int:
    """Write the rows of ``rows()`` (a fresh pass per call: Parquet takes two) to ``path`` as ``fmt``, atomically;
    returns the number of rows. For writers of other row streams (a published bundle's job table)."""
    return _write(rows, fmt, path, columns)
