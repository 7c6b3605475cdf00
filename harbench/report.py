"""Tables and exports, all derived from the store's one long table of jobs."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable

from tabulate import tabulate

from .stats import mean_std

IDENTITY = ["run_id", "suite", "dataset", "dataset_params", "user", "method", "method_params", "variant",
            "hardware", "seed", "status", "mode"]
METRIC_COLUMNS = ["acc_seen", "acc_unseen", "f1_seen", "f1_unseen", "energy_method", "gain_seen", "adapt_s",
                  "adapt_j", "adapt_j_net", "adapt_flops", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99",
                  "infer_mj", "infer_mj_net", "params", "params_trained", "model_kb", "flops"]
TABLE_COLUMNS = ["acc_seen", "acc_unseen", "gain_seen", "f1_seen", "adapt_s", "adapt_j", "latency_ms_p50",
                 "infer_mj", "params_trained"]
PERCENT = {"acc_seen", "acc_unseen", "gain_seen", "f1_seen", "f1_unseen"}


def _fmt(mean: float, std: float, name: str) -> str:
    if math.isnan(mean):
        return "—"
    if name in PERCENT:
        return f"{100 * mean:.1f} ± {100 * std:.1f}"
    if name.startswith("params"):
        return f"{mean:,.0f}"
    magnitude = abs(mean)
    digits = 3 if magnitude < 1 else 2 if magnitude < 100 else 0
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def summary_table(rows: list[dict[str, Any]], columns: list[str] = TABLE_COLUMNS) -> tuple[list[str], list[list[str]]]:
    """One row per method × variant × hardware: mean ± std over users and seeds of the successful jobs."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["variant"] or "", r["hardware"]), []).append(r)
    headers = ["method", "variant", "hardware", "mode", "n", "failed", *columns, "energy_method"]
    table = []
    for (method, variant, hardware), items in groups.items():
        ok = [r for r in items if r["status"] == "ok"]
        modes = sorted({r["mode"] for r in ok if r["mode"]})
        line = [method, variant, hardware, "/".join(modes) or "—", len(ok),
                sum(r["status"] == "failed" for r in items)]
        for c in columns:
            line.append(_fmt(*mean_std([r.get(c) for r in ok]), c))
        line.append("/".join(sorted({str(r.get("energy_method")) for r in ok if r.get("energy_method")})) or "—")
        if "estimated" in modes:  # estimated figures are marked wherever they appear
            line = [f"{v} (est.)" if isinstance(v, str) and "±" in v and c in ("adapt_s", "adapt_j", "latency_ms_p50", "infer_mj") else v
                    for v, c in zip(line, headers)]
        skipped = [r for r in items if r["status"] == "skipped"]
        if skipped and not ok:
            line[4] = f"skipped: {skipped[0].get('error')}"
        table.append(line)
    return headers, table


def render(headers: list[str], table: list[list[Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([dict(zip(headers, row)) for row in table], indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(headers)
        w.writerows(table)
        return buf.getvalue()
    return tabulate(table, headers=headers, tablefmt=fmt)


def export_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        row = {k: r.get(k) for k in IDENTITY}
        for c in METRIC_COLUMNS:
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
            w = csv.DictWriter(f, fieldnames=list(flat[0]) if flat else IDENTITY + METRIC_COLUMNS)
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
