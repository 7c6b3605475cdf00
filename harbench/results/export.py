"""Exports (JSON, CSV, Parquet) and ``harbench.load()``: one row per job, the documented column contract."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterable, Sequence

from .store import Store
from .tables import IDENTITY, TRAILER, metric_columns


def export_columns(rows: Sequence[dict[str, Any]] = (), registry: Any = None) -> list[str]:
    """The export's columns: identity, every metric (core first, then plugins'), facts, error, provenance."""
    return [*IDENTITY, *(m.name for m in metric_columns(rows, registry)), *TRAILER]


def export_rows(rows: Iterable[dict[str, Any]], registry: Any = None) -> list[dict[str, Any]]:
    rows = list(rows)
    names = [m.name for m in metric_columns(rows, registry)]
    out = []
    for r in rows:
        row = {k: r.get(k) for k in IDENTITY}
        for c in names:
            row[c] = r.get(c)
        row["facts"] = r.get("facts", {})
        row["error"] = r.get("error")
        row["provenance"] = r.get("provenance", {})
        out.append(row)
    return out


def write_export(rows: list[dict[str, Any]], fmt: str, path: str | Path) -> None:
    path = Path(path)
    if fmt == "json":
        path.write_text(json.dumps(rows, indent=2, default=str))
        return
    flat = [{k: json.dumps(v, sort_keys=True, default=str) if isinstance(v, (dict, list)) else v for k, v in r.items()}
            for r in rows]
    if fmt == "csv":
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(flat[0]) if flat else export_columns())
            w.writeheader()
            w.writerows(flat)
        return
    if fmt == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError("Parquet export needs the parquet extra: pip install 'harbench[parquet]'") from None
        pq.write_table(pa.Table.from_pylist(flat), str(path))
        return
    raise ValueError(f"unknown export format {fmt!r}; expected json, csv or parquet")


def load_frame(run: str | int = "latest", results: str | Path = "results"):
    """The export rows of ``run`` as a pandas DataFrame (one row per job; the export's column contract)."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("harbench.load needs pandas: pip install 'harbench[pandas]'") from None
    store = Store(results)
    job_rows = store.job_rows(int(store.resolve_run(run)["id"]))
    rows = export_rows(job_rows)
    return pd.DataFrame(rows, columns=export_columns(job_rows))


