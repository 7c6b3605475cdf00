"""TBFT's two headline numbers for ``harbench report``, computed from a run's exported rows (a pure function).

The paper's numbers (recomputed in our notes): accuracy of the drift-matched block minus **Block Avg** (the mean
of the four single blocks), +15.30 points on average over its nine (dataset x size) cells; and the adapt-energy
saving versus full fine-tuning, 41.57 % for Block Avg (an average single block) with ~15 % for Block 1 and
~68-70 % for FC. A *cell* here is everything but the block: one dataset configuration (drift type, training
size), hardware and recipe, averaged over users and seeds.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from statistics import mean
from typing import Any, Iterable

from .blocks import DRIFT_TO_BLOCK, SINGLE_BLOCKS

METHOD = "tbft"
PAPER_GAP_POINTS = 15.30
PAPER_BLOCK_AVG_SAVING = 41.57
PAPER_SAVINGS = {"front": "15-16", "stage2": "34-38", "stage3": "45-47", "fc": "68-70"}
# parameters that pick the variant inside a cell rather than define the cell
_VARIANT_PARAMS = ("block", "auto_by")


@dataclass
class Cell:
    """All TBFT rows of one configuration, keyed by variant (a block name, ``all``, ``auto`` or ``auto-rgn``)."""

    dataset: str
    dataset_params: dict[str, Any]
    hardware: str
    drift: str | None = None
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    @property
    def label(self) -> str:
        parts = [self.dataset_params.get("adapt_context", self.dataset)]
        if "k" in self.dataset_params:
            parts.append(f"k={self.dataset_params['k']}")
        return " ".join(str(p) for p in parts)

    def mean(self, variant: str, column: str) -> float | None:
        values = [r[column] for r in self.rows.get(variant, []) if _number(r.get(column))]
        return mean(values) if values else None

    def matched_block(self) -> str | None:
        """The block the paper's taxonomy assigns to this cell's drift; else what ``auto`` chose most often."""
        if self.drift in DRIFT_TO_BLOCK:
            return DRIFT_TO_BLOCK[self.drift]
        chosen = [r["facts"].get("block") for r in self.rows.get("auto", []) if r.get("facts")]
        return max(set(chosen), key=chosen.count) if chosen else None


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _variant(row: dict[str, Any]) -> str:
    params = row.get("method_params") or {}
    block = params.get("block", (row.get("facts") or {}).get("block"))
    if block == "auto" and params.get("auto_by") == "rgn":
        return "auto-rgn"
    return str(block)


def group_cells(rows: Iterable[dict[str, Any]]) -> list[Cell]:
    cells: dict[str, Cell] = {}
    for row in rows:
        if row.get("method") != METHOD or row.get("status") != "ok":
            continue
        recipe = {k: v for k, v in (row.get("method_params") or {}).items() if k not in _VARIANT_PARAMS}
        key = json.dumps([row.get("dataset"), row.get("dataset_params"), row.get("hardware"), recipe],
                         sort_keys=True, default=str)
        cell = cells.setdefault(key, Cell(row.get("dataset", "?"), dict(row.get("dataset_params") or {}),
                                          row.get("hardware", "?")))
        facts = row.get("facts") or {}
        if facts.get("drift") is not None:
            cell.drift = facts["drift"]
        cell.rows[_variant(row)].append(_with_per_window_cost(row))
    return list(cells.values())


def _with_per_window_cost(row: dict[str, Any]) -> dict[str, Any]:
    """Adds ``<cost>_per_window``: the adapt cost per trained window, which removes the effect of early stopping
    ending blocks after different numbers of epochs (the paper timed one training pass of one sample)."""
    trained = (row.get("facts") or {}).get("backward_samples")
    out = dict(row)
    for column in ("adapt_j", "adapt_s"):
        if _number(trained) and trained > 0 and _number(row.get(column)):
            out[f"{column}_per_window"] = row[column] / trained
    return out


def energy_column(rows: list[dict[str, Any]]) -> str:
    """``adapt_j`` when every TBFT row has a measured energy, else the adapt time ``adapt_s`` as the proxy."""
    tbft = [r for r in rows if r.get("method") == METHOD and r.get("status") == "ok"]
    return "adapt_j" if tbft and all(_number(r.get("adapt_j")) for r in tbft) else "adapt_s"


def saving(cell: Cell, variant: str, column: str) -> float | None:
    """Percent of ``all``'s mean cost that ``variant`` saves (Block Avg: of the four single blocks' mean cost)."""
    full = cell.mean("all", column)
    if variant == "Block Avg":
        costs = [cell.mean(b, column) for b in SINGLE_BLOCKS]
        cost = mean(costs) if all(c is not None for c in costs) else None
    else:
        cost = cell.mean(variant, column)
    if full is None or cost is None or full <= 0:
        return None
    return 100.0 * (1.0 - cost / full)


@dataclass
class CellSummary:
    label: str
    drift: str
    accuracy: dict[str, float | None]  # percent, per variant and "Block Avg"
    matched: str | None
    gap_block_avg: float | None
    gap_all: float | None
    savings: dict[str, float | None]  # percent of all's energy, per single block, "Block Avg" and "TBFT"
    window_savings: dict[str, float | None]  # the same per trained window
    flop_savings: dict[str, float | None]  # the same for adapt_flops


def summarize_cell(cell: Cell, energy: str) -> CellSummary:
    acc = {v: (None if (m := cell.mean(v, "acc_seen")) is None else 100.0 * m) for v in cell.rows}
    singles = [acc.get(b) for b in SINGLE_BLOCKS]
    acc["Block Avg"] = mean(singles) if all(a is not None for a in singles) else None  # type: ignore[arg-type]
    matched = cell.matched_block()
    tbft_acc = acc.get(matched) if matched else None
    gap = None if tbft_acc is None or acc["Block Avg"] is None else tbft_acc - acc["Block Avg"]
    gap_all = None if tbft_acc is None or acc.get("all") is None else tbft_acc - acc["all"]  # type: ignore[operator]
    savings = {b: saving(cell, b, energy) for b in (*SINGLE_BLOCKS, "Block Avg")}
    savings["TBFT"] = savings.get(matched) if matched else None
    window = {b: saving(cell, b, f"{energy}_per_window") for b in SINGLE_BLOCKS}
    flops = {b: saving(cell, b, "adapt_flops") for b in SINGLE_BLOCKS}
    return CellSummary(cell.label, cell.drift or "-", acc, matched, gap, gap_all, savings, window, flops)


def _fmt(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+.2f}" if signed else f"{v:.2f}"


def _avg(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return mean(vals) if vals else None


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The report table, or ``None`` when the run lacks a cell with all four single blocks and ``all``."""
    energy = energy_column(rows)
    cells = [c for c in group_cells(rows) if all(c.rows.get(v) for v in (*SINGLE_BLOCKS, "all"))]
    if not cells:
        return None
    summaries = [summarize_cell(c, energy) for c in cells]
    autos = [v for v in ("auto", "auto-rgn") if any(v in s.accuracy for s in summaries)]
    headers = ["cell", "drift", *SINGLE_BLOCKS, "Block Avg", "all", *autos, "TBFT block",
               "TBFT-BlockAvg", "TBFT-all", "save TBFT %", "save BlockAvg %"]
    table = []
    for s in summaries:
        table.append([s.label, s.drift, *(_fmt(s.accuracy.get(v)) for v in (*SINGLE_BLOCKS, "Block Avg", "all", *autos)),
                      s.matched or "-", _fmt(s.gap_block_avg, True), _fmt(s.gap_all, True),
                      _fmt(s.savings["TBFT"]), _fmt(s.savings["Block Avg"])])
    gap = _avg(s.gap_block_avg for s in summaries)
    gap_all = _avg(s.gap_all for s in summaries)
    save_tbft = _avg(s.savings["TBFT"] for s in summaries)
    save_avg = _avg(s.savings["Block Avg"] for s in summaries)
    per_block = {b: _avg(s.savings[b] for s in summaries) for b in SINGLE_BLOCKS}
    per_window = {b: _avg(s.window_savings[b] for s in summaries) for b in SINGLE_BLOCKS}
    per_flops = {b: _avg(s.flop_savings[b] for s in summaries) for b in SINGLE_BLOCKS}
    table.append(["mean", "", *(_fmt(_avg(s.accuracy.get(v) for s in summaries)) for v in (*SINGLE_BLOCKS, "Block Avg", "all", *autos)),
                  "", _fmt(gap, True), _fmt(gap_all, True), _fmt(save_tbft), _fmt(save_avg)])
    best = _best_blocks(summaries)
    what = "energy" if energy == "adapt_j" else "time (no energy measured)"
    note = (
        f"accuracy = acc_seen %, mean over users and seeds; savings = 1 - mean {energy} / mean {energy} of 'all'. "
        f"TBFT - Block Avg = {_fmt(gap, True)} points (paper +{PAPER_GAP_POINTS:.2f}); TBFT - all = {_fmt(gap_all, True)}. "
        f"Adapt {what} saving vs all: TBFT {_fmt(save_tbft)} %, Block Avg {_fmt(save_avg)} % "
        f"(paper {PAPER_BLOCK_AVG_SAVING:.2f} %); per block "
        + ", ".join(f"{b} {_fmt(per_block[b])} % (paper {PAPER_SAVINGS[b]})" for b in SINGLE_BLOCKS)
        + ". Per trained window: " + ", ".join(f"{b} {_fmt(per_window[b])} %" for b in SINGLE_BLOCKS)
        + ". adapt_flops: " + ", ".join(f"{b} {_fmt(per_flops[b])} %" for b in SINGLE_BLOCKS)
        + f". Best single block per drift: {best}."
    )
    return {"title": "TBFT: drift-matched block vs Block Avg and full fine-tuning", "headers": headers,
            "rows": table, "note": note}


def _best_blocks(summaries: list[CellSummary]) -> str:
    """For each drift type, the single block with the highest accuracy averaged over its cells."""
    by_drift: dict[str, list[CellSummary]] = defaultdict(list)
    for s in summaries:
        by_drift[s.drift].append(s)
    parts = []
    for drift, group in sorted(by_drift.items()):
        means = {b: _avg(s.accuracy.get(b) for s in group) for b in SINGLE_BLOCKS}
        known = {b: m for b, m in means.items() if m is not None}
        if known:
            parts.append(f"{drift} -> {max(known, key=known.__getitem__)}")
    return "; ".join(parts) or "-"
