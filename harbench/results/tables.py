"""Tables derived from the store's one long table of jobs, with each metric's unit and direction as its plugin
declares it."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from itertools import chain
from typing import Any, Iterable, Sequence

from tabulate import tabulate

from ..units import FRACTION
from .analysis import REFERENCES, energy_methods, user_level
from .frame import Frame
from .query import group_key_columns

IDENTITY = ["run_id", "suite", "dataset", "dataset_params", "user", "method", "method_params", "variant",
            "hardware", "seed", "status", "mode"]
TRAILER = ["facts", "error", "provenance"]
COST_UNITS = {"s", "ms", "J", "mJ", "MB", "mW", "ratio"}  # cost figures a target may model instead of measure
ESTIMATED_MARK = " (est.)"


@dataclass(frozen=True)
class MetricColumn:
    """A metric column of every view, as its metric plugin declares it (``harbench.Metric``)."""

    name: str
    unit: str = ""
    higher_is_better: bool | None = None
    description: str = ""
    distribution: str = "?"  # "harbench" for the core's built-ins; "?" for a stored metric no plugin declares now

    @property
    def core(self) -> bool:
        return self.distribution == CORE_DIST

    @property
    def percent(self) -> bool:
        return self.unit == FRACTION

    @property
    def estimable(self) -> bool:
        return self.unit in COST_UNITS

    @property
    def direction(self) -> str:
        return {True: "higher is better", False: "lower is better", None: "no direction"}[self.higher_is_better]


CORE_DIST = "harbench"


def registered_metrics(registry: Any = None) -> list[MetricColumn]:
    """Every registered metric, the core's first (in their registration order, which is the export's documented
    column order), then the plugins' in the order they registered."""
    if registry is None:
        from ..registry_snapshot import reading_registry  # a valid snapshot: no plugin, no torch

        registry = reading_registry()
    items = [MetricColumn(r.name, r.cls.unit, r.cls.higher_is_better, getattr(r.cls, "description", "") or "",
                          r.distribution) for r in registry.items["metric"].values()]
    return [m for m in items if m.core] + [m for m in items if not m.core]


def metric_columns(rows: Iterable[dict[str, Any]] = (), registry: Any = None) -> list[MetricColumn]:
    """The metric columns of a view: every registered metric, then any metric the rows hold that no installed
    plugin declares any more (stored by a plugin since uninstalled: its values are not dropped; no direction)."""
    columns = registered_metrics(registry)
    known = {m.name for m in columns} | set(IDENTITY) | set(TRAILER)
    return columns + [MetricColumn(k) for k in dict.fromkeys(chain.from_iterable(rows)) if k not in known]


def metric_info(name: str, registry: Any = None) -> MetricColumn:
    """The declared unit and direction of one metric (an undeclared column has neither)."""
    for m in registered_metrics(registry):
        if m.name == name:
            return m
    return MetricColumn(name)


# The main table's selection of the core's metrics (the export has them all); plugin metrics follow them.
CORE_TABLE_COLUMNS = ["acc_seen", "acc_unseen", "gain_seen", "f1_seen", "adapt_s", "adapt_j", "latency_ms_p50",
                      "infer_mj", "params_trained", "adapt_peak_mb", "infer_peak_mb", "infer_mw", "real_time_factor",
                      "adapt_share_24h"]


def table_columns(rows: Sequence[dict[str, Any]], registry: Any = None, every: bool = False) -> list[MetricColumn]:
    """The main table's columns: the core selection, then every non-core metric that some row holds a value of.
    ``every`` (``report --full``, JSON/CSV/LaTeX): after the core selection, every other stored metric too
    (calibration, latency p90/p99, f1_unseen, ...): a full table must not drop what the run measured."""
    by_name = {m.name: m for m in metric_columns(rows, registry)}
    keys = dict.fromkeys(chain.from_iterable(rows))

    def present(name: str) -> bool:
        return name in keys and any(r.get(name) is not None for r in rows)

    core = [by_name.get(c, MetricColumn(c)) for c in CORE_TABLE_COLUMNS]
    rest = [m for m in by_name.values() if m.name not in CORE_TABLE_COLUMNS and m.name != "energy_method"
            and (every or not m.core) and present(m.name)]
    return core + rest


def units_note(columns: Sequence[MetricColumn]) -> str:
    """What each column of the main table measures: its unit and direction, as the metric declares them."""
    parts = []
    for m in columns:
        unit = "points (%)" if m.percent else (m.unit or "unitless")
        arrow = {True: "↑", False: "↓", None: ""}[m.higher_is_better]
        parts.append(f"{m.name} {arrow}{' ' if arrow else ''}{unit}")
    return "columns: " + ", ".join(parts) + " (↑ higher is better, ↓ lower is better). " + INTERVALS_NOTE


INTERVALS_NOTE = ("intervals: every column: mean ± std of the per-user means [95 % t-interval over users and seeds: "
                  "seeds as a level when there are 2 or more (Satterthwaite df), else over users with the seed "
                  "fixed; none below 3 users and 3 seeds], jobs of one user and seed (targets, configurations) "
                  "averaged first; points (%) intervals clipped to [0, 100]. Coverage measured in "
                  "docs/statistics.md.")


def _digits(value: float, name: str = "") -> int:
    magnitude = abs(value)
    return 3 if magnitude < 1 else 2 if magnitude < 100 else 0


def _modelled(mean: float, std: float) -> str:
    """A modelled cost to the precision a model has (two significant digits; its spread over users only when it
    is not negligible): never ``0.151 ± 0.000``."""
    from .decision import sig

    return sig(mean) if not std or std < 0.05 * abs(mean) else f"{sig(mean)} ± {sig(std, 1)}"


def _fmt(mean: float, std: float, metric: MetricColumn, ci: tuple[float, float] | None = None) -> str:
    if math.isnan(mean):
        return "—"
    name = metric.name
    if metric.percent:
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


def summary_table(rows: list[dict[str, Any]], columns: Sequence[str | MetricColumn] | None = None, *,
                  by: list[str] | None = None, ci: bool = False, registry: Any = None,
                  frame: Frame | None = None) -> tuple[list[str], list[list[str]]]:
    """One row per group (default method × variant × hardware): mean ± std of the successful jobs, with ``ci`` a
    95 % interval of the mean in brackets (:data:`INTERVALS_NOTE`: :meth:`.frame.Frame.cell`, the one cell rule).

    Cost figures of groups that contain ``estimated`` jobs carry " (est.)": a modelled joule is not a measured one.
    ``columns`` default to :func:`table_columns` (the core selection, then the plugins' metrics the rows hold).
    ``frame``: these rows' columns when the caller has them already (:class:`.frame.Frame`).
    """
    if columns is None:
        metrics = table_columns(rows, registry)
    else:
        declared = {m.name: m for m in metric_columns(rows, registry)}
        metrics = [c if isinstance(c, MetricColumn) else declared.get(c, MetricColumn(c)) for c in columns]
    key_columns = group_key_columns(by)
    headers = [*key_columns, "mode", "n", "failed", *[m.name for m in metrics], "energy_method"]
    frame = frame if frame is not None and frame.rows is rows else Frame(rows)
    table = []
    groups = list(frame.groups(key_columns))
    cells = {m.name: frame.cells(m.name, [g[3] for g in groups], (0.0, 1.0) if m.percent else None)
             for m in metrics}  # a column at once: one bootstrap per design
    for g, (key, items, ok, ok_index) in enumerate(groups):
        modes = sorted({r["mode"] for r in ok if r["mode"]})
        line: list[Any] = [*key, "/".join(modes) or "—", len(ok), sum(r["status"] == "failed" for r in items)]
        for m in metrics:
            texts = frame.texts(m.name)
            labels = sorted({texts[i] for i in ok_index.tolist() if i in texts}) if texts else []
            if labels:  # a label metric (higher_is_better None): its distinct values
                line.append("/".join(labels))
                continue
            e = cells[m.name][g]
            cell = _fmt(e.mean, e.std, m, (e.lo, e.hi) if ci else None)
            if "estimated" in modes and m.estimable and cell != "—":
                cell = (_modelled(e.mean, e.std) if modes == ["estimated"] else cell) + ESTIMATED_MARK
            line.append(cell)
        line.append("/".join(energy_methods(ok)) or "—")
        skipped = [r for r in items if r["status"] == "skipped"]
        if skipped and not ok:
            line[len(key_columns) + 1] = f"skipped: {skipped[0].get('error')}"
        table.append(line)
    return headers, table


def user_level_table(rows: list[dict[str, Any]], *, by: list[str] | None = None,
                     metric: str = "acc_seen", registry: Any = None) -> tuple[list[str], list[list[str]]]:
    """Per method, with the user as the unit: harm rate, worst-decile mean, paired Wilcoxon tests (Holm).

    Harm and the worst decile follow the metric's declared direction (``higher_is_better``)."""
    info = metric_info(metric, registry)
    results = user_level(rows, by, metric, higher_is_better=info.higher_is_better,
                         target_independent=not info.estimable)
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
                cells.append(f"{_pct_or_num(p.median_diff, info, signed=True)} (p={_p(p.p_holm)}, n={p.n}){star}")
        table.append([*u.key.values(), u.users, _pct_or_num(u.mean, info), _pct(u.harm),
                      _pct_or_num(u.worst_decile, info), *cells])
    return headers, table


def _pct(value: float) -> str:
    return "—" if math.isnan(value) else f"{100 * value:.0f} %"


def _pct_or_num(value: float, metric: MetricColumn, signed: bool = False) -> str:
    if math.isnan(value):
        return "—"
    sign = "+" if signed else ""
    if metric.percent:
        return f"{100 * value:{sign}.1f}"
    return f"{value:{sign}.{_digits(value)}f}"


def _p(p: float) -> str:
    if math.isnan(p):
        return "—"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


USER_LEVEL_NOTE = ("user-level: each user is the mean over seeds; harm rate = share of users below generic; worst "
                   "decile = mean of the worst 10 % of users; median Δ in points, two-sided Wilcoxon signed-rank "
                   "paired by user, Holm-corrected over the table (* p < 0.05).")


def user_level_note(metric: str = "acc_seen", registry: Any = None) -> str:
    """The per-user table's note, in the metric's own direction and unit."""
    info = metric_info(metric, registry)
    if info.higher_is_better is None:
        harm = ("harm rate and worst decile = — (the metric declares no direction, so no user can be made "
                "worse by it)")
    else:
        worse, worst = ("below", "lowest") if info.higher_is_better else ("above", "highest")
        harm = (f"harm rate = share of users {worse} generic ({info.name}: {info.direction}); worst decile = mean "
                f"of the worst 10 % of users (the {worst} values)")
    unit = "points" if info.percent else (info.unit or "the metric's unit")
    pooled = "seeds" if info.estimable else "seeds and targets (it does not depend on the target: one row per method)"
    return (f"user-level: each user is the mean over {pooled}; {harm}; median Δ in {unit}, two-sided Wilcoxon "
            "signed-rank paired by user, Holm-corrected over the table (* p < 0.05).")


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


def __getattr__(name: str) -> Any:
    """``METRIC_COLUMNS``: the core's metric columns in their export order, read from the registry (not a list
    kept here), for code that imported the old constant."""
    if name == "METRIC_COLUMNS":
        return [m.name for m in registered_metrics() if m.core]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
