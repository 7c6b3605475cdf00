"""Tables and exports, all derived from the store's one long table of jobs."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable

from tabulate import tabulate

from .analysis import REFERENCES, energy_methods, estimate, group_key_columns, group_rows, user_level

IDENTITY = ["run_id", "suite", "dataset", "dataset_params", "user", "method", "method_params", "variant",
            "hardware", "seed", "status", "mode"]
METRIC_COLUMNS = ["acc_seen", "acc_unseen", "f1_seen", "f1_unseen", "energy_method", "gain_seen", "adapt_s",
                  "adapt_j", "adapt_j_net", "adapt_flops", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99",
                  "infer_mj", "infer_mj_net", "params", "params_trained", "model_kb", "flops"]
TABLE_COLUMNS = ["acc_seen", "acc_unseen", "gain_seen", "f1_seen", "adapt_s", "adapt_j", "latency_ms_p50",
                 "infer_mj", "params_trained"]
PERCENT = {"acc_seen", "acc_unseen", "gain_seen", "f1_seen", "f1_unseen"}


ESTIMABLE = {"adapt_s", "adapt_j", "adapt_j_net", "adapt_flops", "latency_ms_p50", "latency_ms_p90",
             "latency_ms_p99", "infer_mj", "infer_mj_net"}  # cost figures a target may model instead of measure
ESTIMATED_MARK = " (est.)"


def _digits(value: float, name: str) -> int:
    magnitude = abs(value)
    return 3 if magnitude < 1 else 2 if magnitude < 100 else 0


def _fmt(mean: float, std: float, name: str, ci: tuple[float, float] | None = None) -> str:
    if math.isnan(mean):
        return "—"
    if name in PERCENT:
        text = f"{100 * mean:.1f} ± {100 * std:.1f}"
        if ci is not None and not math.isnan(ci[0]):
            text += f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
        return text
    if name.startswith("params"):
        return f"{mean:,.0f}"
    digits = _digits(mean, name)
    text = f"{mean:.{digits}f} ± {std:.{digits}f}"
    if ci is not None and not math.isnan(ci[0]):
        text += f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return text


def summary_table(rows: list[dict[str, Any]], columns: list[str] = TABLE_COLUMNS, *, by: list[str] | None = None,
                  ci: bool = False) -> tuple[list[str], list[list[str]]]:
    """One row per group (default method × variant × hardware): mean ± std over users and seeds of the successful
    jobs, with ``ci`` a 95 % Student-t confidence interval of the mean in brackets.

    Cost figures of groups that contain ``estimated`` jobs carry " (est.)": a modelled joule is not a measured one.
    """
    key_columns = group_key_columns(by)
    headers = [*key_columns, "mode", "n", "failed", *columns, "energy_method"]
    table = []
    for key, items in group_rows(rows, key_columns).items():
        ok = [r for r in items if r["status"] == "ok"]
        modes = sorted({r["mode"] for r in ok if r["mode"]})
        line: list[Any] = [*key, "/".join(modes) or "—", len(ok), sum(r["status"] == "failed" for r in items)]
        for c in columns:
            e = estimate([r.get(c) for r in ok])
            cell = _fmt(e.mean, e.std, c, (e.lo, e.hi) if ci else None)
            if "estimated" in modes and c in ESTIMABLE and cell != "—":
                cell += ESTIMATED_MARK
            line.append(cell)
        line.append("/".join(energy_methods(ok)) or "—")
        skipped = [r for r in items if r["status"] == "skipped"]
        if skipped and not ok:
            line[len(key_columns) + 1] = f"skipped: {skipped[0].get('error')}"
        table.append(line)
    return headers, table


def user_level_table(rows: list[dict[str, Any]], *, by: list[str] | None = None,
                     metric: str = "acc_seen") -> tuple[list[str], list[list[str]]]:
    """Per method, with the user as the unit: harm rate, worst-decile mean, paired Wilcoxon tests (Holm)."""
    results = user_level(rows, by, metric)
    refs = list(REFERENCES)
    key_columns = list(results[0].key) if results else group_key_columns(by)
    headers = [*key_columns, "users", f"{metric} mean", "harm rate", "worst decile",
               *[f"vs {r}: median Δ (p Holm)" for r in refs]]
    table = []
    for u in results:
        by_ref = {p.reference: p for p in u.paired}
        cells = []
        for r in refs:
            p = by_ref.get(r)
            if p is None or p.n == 0:
                cells.append("—")
            else:
                star = " *" if p.p_holm < 0.05 else ""
                cells.append(f"{_pct_or_num(p.median_diff, metric, signed=True)} (p={_p(p.p_holm)}, n={p.n}){star}")
        table.append([*u.key.values(), u.users, _pct_or_num(u.mean, metric), _pct(u.harm),
                      _pct_or_num(u.worst_decile, metric), *cells])
    return headers, table


def _pct(value: float) -> str:
    return "—" if math.isnan(value) else f"{100 * value:.0f} %"


def _pct_or_num(value: float, metric: str, signed: bool = False) -> str:
    if math.isnan(value):
        return "—"
    sign = "+" if signed else ""
    if metric in PERCENT:
        return f"{100 * value:{sign}.1f}"
    return f"{value:{sign}.{_digits(value, metric)}f}"


def _p(p: float) -> str:
    if math.isnan(p):
        return "—"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


USER_LEVEL_NOTE = ("user-level: each user is the mean over seeds; harm rate = share of users below generic; worst "
                   "decile = mean of the worst 10 % of users; median Δ in points, two-sided Wilcoxon signed-rank "
                   "paired by user, Holm-corrected over the table (* p < 0.05).")


def paper_summaries(rows: list[dict[str, Any]], registry: Any = None) -> list[dict[str, Any]]:
    """The plugins' paper-style summaries (``harbench_report_summary``) of these rows, in hook order.

    A summary built from rows that include ``estimated`` jobs gets a note saying so, whatever the plugin wrote.
    """
    if registry is None:
        from .plugins import get_registry

        registry = get_registry()
    export = export_rows(rows)
    estimated = sorted({r["hardware"] for r in export if r.get("mode") == "estimated" and r.get("status") == "ok"})
    answers = []
    for answer in registry.hook.harbench_report_summary(rows=export):
        if not answer:
            continue
        answer = dict(answer)
        if estimated:
            mark = f"estimated figures included (modelled, not measured, on: {', '.join(estimated)})"
            answer["note"] = f"{answer.get('note') or ''}\n{mark}".strip()
        answers.append(answer)
    return answers


def load_frame(run: str | int = "latest", results: str | Path = "results"):
    """The export rows of ``run`` as a pandas DataFrame (one row per job; the export's column contract)."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("harbench.load needs pandas: pip install 'harbench[pandas]'") from None
    from .store import Store

    store = Store(results)
    rows = export_rows(store.job_rows(int(store.resolve_run(run)["id"])))
    return pd.DataFrame(rows, columns=[*IDENTITY, *METRIC_COLUMNS, "facts", "error", "provenance"])


def render(headers: list[str], table: list[list[Any]], fmt: str, numparse: bool = True) -> str:
    if fmt == "json":
        return json.dumps([dict(zip(headers, row)) for row in table], indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(headers)
        w.writerows(table)
        return buf.getvalue()
    return tabulate(table, headers=headers, tablefmt=fmt, disable_numparse=not numparse)


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
