"""What personalization costs over a device's lifetime: monitoring power, keeping up, the adapt phase's share of a
day, and the break-even point between two methods; the report's lifetime table and its per-target notes.

A device that monitors continuously classifies one window every ``stride / rate_hz`` seconds (the dataset's
window stride), so

* ``infer_mw`` = energy per window (mJ) × windows per second: the average power of inference alone (mW);
* ``real_time_factor`` = median batch-1 latency ÷ the stride interval (> 1: the device cannot keep up);
* ``adapt_share_24h`` = adapt energy ÷ (adapt energy + 24 h of monitoring at ``infer_mw``);
* ``breakeven_h(A, B)``: hours of monitoring after which method A (adapt energy a_A, inference power p_A) costs no
  more than B overall and stays so: 0 when A is no dearer on both counts, (a_A − a_B) / (p_B − p_A) when A adapts
  dearer but infers cheaper, None when it never does.

Gross energy throughout (``adapt_j``, ``infer_mj``), as measured or estimated by the target; the device's idle
power between windows, sensing and the radio are not included.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Iterable, Sequence

from .query import group_rows

DAY_H = 24.0
BASELINES = ("finetune-full", "generic")


def windows_per_second(rate_hz: float, stride_samples: float) -> float:
    return rate_hz / stride_samples


def infer_mw(mj_per_window: float | None, windows_per_s: float) -> float | None:
    """mJ per window × windows per second = mW."""
    return None if mj_per_window is None else mj_per_window * windows_per_s


def real_time_factor(latency_s: float | None, stride_s: float) -> float | None:
    return None if latency_s is None else latency_s / stride_s


def adapt_share(adapt_j: float | None, infer_mw_value: float | None, hours: float = DAY_H) -> float | None:
    """The adapt phase's share of the energy of adapting once and then monitoring for ``hours``."""
    if adapt_j is None or infer_mw_value is None:
        return None
    monitoring_j = infer_mw_value / 1000.0 * hours * 3600.0
    total = adapt_j + monitoring_j
    return 0.0 if total == 0 else adapt_j / total


def breakeven_h(adapt_j: float, power_mw: float, base_adapt_j: float, base_power_mw: float) -> float | None:
    """Hours of monitoring after which the first method's total energy is at most the baseline's, for good."""
    if adapt_j <= base_adapt_j and power_mw <= base_power_mw:
        return 0.0
    if adapt_j > base_adapt_j and power_mw < base_power_mw:
        return (adapt_j - base_adapt_j) / ((base_power_mw - power_mw) / 1000.0) / 3600.0
    return None


# -------------------------------------------------------------------------------------------------- report


def _mean(rows: Iterable[dict[str, Any]], key: str) -> float | None:
    values = [float(v) for v in (r.get(key) for r in rows) if isinstance(v, (int, float)) and math.isfinite(v)]
    return statistics.fmean(values) if values else None


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if abs(value) < 1e5 else f"{value:.3g}"


def _label(method: str, variant: str) -> str:
    return f"{method} [{variant}]" if variant else method


def lifetime_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The report's lifetime table: per dataset × target × method, means over users and seeds of the adapt
    memory, adapt energy, monitoring power, real-time factor and adapt share of a day, and the break-even hours
    against ``finetune-full`` and ``generic`` (computed from those means). None when no row has the figures."""
    ok = [r for r in rows if r.get("status") == "ok"]
    if not any(r.get("infer_mw") is not None or r.get("adapt_peak_mb") is not None for r in ok):
        return None
    headers = ["dataset", "hardware", "method", "adapt_peak_mb", "adapt_j", "infer_mw", "real_time_factor",
               "adapt_share_24h %", *(f"breakeven_h vs {b}" for b in BASELINES)]
    table = []
    for (dataset, hardware), items in group_rows(ok, ["dataset", "hardware"]).items():
        means = {}
        for (method, variant), mine in group_rows(items, ["method", "variant"]).items():
            means[(method, variant)] = {k: _mean(mine, k) for k in
                                        ("adapt_peak_mb", "adapt_j", "infer_mw", "real_time_factor", "adapt_share_24h")}
        base = {b: next((m for (meth, var), m in means.items() if meth == b and not var), None) for b in BASELINES}
        for (method, variant), m in means.items():
            cells = []
            for b in BASELINES:
                ref = base[b]
                if method == b and not variant:
                    cells.append("(baseline)")
                elif ref is None or None in (m["adapt_j"], m["infer_mw"], ref["adapt_j"], ref["infer_mw"]):
                    cells.append("—")
                else:
                    h = breakeven_h(m["adapt_j"], m["infer_mw"], ref["adapt_j"], ref["infer_mw"])
                    cells.append("never" if h is None else _fmt(h))
            share = m["adapt_share_24h"]
            rtf = m["real_time_factor"]
            table.append([dataset, hardware, _label(method, variant), _fmt(m["adapt_peak_mb"]),
                          _fmt(m["adapt_j"], 3), _fmt(m["infer_mw"], 3),
                          _fmt(rtf, 4) + (" CANNOT KEEP UP" if rtf is not None and rtf > 1 else ""),
                          _fmt(None if share is None else 100 * share), *cells])
    note = ("Lifetime cost (means over users and seeds): infer_mw = infer_mj × windows per second (rate_hz / "
            "stride); real_time_factor = median latency ÷ stride interval (> 1: the device cannot keep up); "
            "adapt_share_24h = adapt_j ÷ (adapt_j + 24 h at infer_mw); breakeven_h vs B = hours of monitoring after "
            "which the method costs no more energy than B for good (0: from the start; never: it does not). Gross "
            "energy; idle power between windows, sensing and radio not included.")
    return {"title": "Lifetime cost per target", "headers": headers, "rows": table, "note": note}


def lifetime_notes(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Per target: the methods whose adaptation does not fit its memory (skipped, or kept with a warning), and the
    methods whose inference cannot keep up with the window stride."""
    notes = []
    for (hardware,), items in group_rows(list(rows), ["hardware"]).items():
        fit: dict[str, str] = {}
        slow: set[str] = set()
        for r in items:
            facts = r.get("facts") if isinstance(r.get("facts"), dict) else {}
            reason = facts.get("memory_check") if facts else None
            if r.get("status") == "skipped" and "does not fit" in str(r.get("error") or ""):
                reason = str(r.get("error"))
            rtf = r.get("real_time_factor")
            too_slow = r.get("status") == "ok" and isinstance(rtf, (int, float)) and rtf > 1
            if not (reason or too_slow):
                continue
            label = _label(str(r.get("method")), str(r.get("variant") or ""))
            if reason:
                fit.setdefault(label, reason.split(": ", 1)[-1])
            if too_slow:
                slow.add(label)
        if fit:
            notes.append(f"{hardware}: does not fit in memory: "
                         + "; ".join(f"{m} ({why})" for m, why in sorted(fit.items())))
        if slow:
            notes.append(f"{hardware}: cannot keep up with the window stride (real_time_factor > 1): "
                         + ", ".join(sorted(slow)))
    return notes
