"""The paper-style comparison for ``harbench report``: every SMLDist variant's size, speed and accuracy.

Pure over export rows (dicts), so it is unit-tested on fabricated rows. Rows are grouped by hardware and by the
method parameters other than ``variant`` (a "setting"); within a setting, the note checks the paper's claims:
the student is much smaller, faster and nearly as accurate as the teacher, and SMLDist beats the baselines.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from typing import Any, Iterable

METHOD = "smldist"
ORDER = ("teacher", "student-scratch", "student-hinton", "smldist",
         "smldist-no-stage", "smldist-no-memory", "smldist-no-conditional")


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(vals) / len(vals) if vals else None


def _seed_spread(rows: list[dict], key: str) -> tuple[float | None, float | None]:
    """Mean over all jobs and the standard deviation of the per-seed means (0 with a single seed)."""
    by_seed: dict[Any, list[float]] = defaultdict(list)
    for r in rows:
        if r.get(key) is not None:
            by_seed[r.get("seed")].append(r[key])
    means = [m for m in (_mean(v) for v in by_seed.values()) if m is not None]
    if not means:
        return None, None
    return _mean(r.get(key) for r in rows), statistics.pstdev(means) if len(means) > 1 else 0.0


def _pct(mean: float | None, std: float | None = None) -> str:
    """A percentage, with the seed spread when one was computed."""
    if mean is None:
        return "-"
    return f"{100 * mean:.1f}" if std is None else f"{100 * mean:.1f} ± {100 * std:.1f}"


def _variant(row: dict) -> str:
    return (row.get("method_params") or {}).get("variant", "smldist")


def _setting(row: dict) -> str:
    others = {k: v for k, v in (row.get("method_params") or {}).items() if k != "variant"}
    return json.dumps(others, sort_keys=True, default=str)


def _stats(rows: list[dict]) -> dict[str, Any]:
    acc, acc_sd = _seed_spread(rows, "acc_seen")
    f1, f1_sd = _seed_spread(rows, "f1_seen")
    heads = Counter((r.get("facts") or {}).get("head") for r in rows if (r.get("facts") or {}).get("head"))
    return {
        "jobs": len(rows), "params": _mean(r.get("params") for r in rows), "flops": _mean(r.get("flops") for r in rows),
        "latency": _mean(r.get("latency_ms_p50") for r in rows), "acc": acc, "acc_sd": acc_sd, "f1": f1, "f1_sd": f1_sd,
        "acc_unseen": _mean(r.get("acc_unseen") for r in rows),
        "val_acc": _mean((r.get("facts") or {}).get("val_acc") for r in rows),
        "heads": ", ".join(f"{h} {n}" for h, n in heads.most_common()),
    }


def _ratio(a: float | None, b: float | None) -> str:
    return "n/a" if not a or not b else f"{a / b:.1f}x"


def _points(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None else f"{100 * (a - b):+.1f}"


def _claims(label: str, by_variant: dict[str, dict[str, Any]]) -> list[str]:
    notes = []
    s, t = by_variant.get("smldist"), by_variant.get("teacher")
    if s and t:
        notes.append(
            f"{label}student vs teacher: params {_ratio(t['params'], s['params'])} fewer, FLOPs "
            f"{_ratio(t['flops'], s['flops'])} fewer, p50 latency {_ratio(t['latency'], s['latency'])} lower; "
            f"acc {_points(s['acc'], t['acc'])} pts, macro-F1 {_points(s['f1'], t['f1'])} pts."
        )
    for base in ("student-hinton", "student-scratch"):
        b = by_variant.get(base)
        if s and b:
            notes.append(f"{label}smldist - {base}: acc {_points(s['acc'], b['acc'])} pts, "
                         f"macro-F1 {_points(s['f1'], b['f1'])} pts.")
    return notes


def summarize(rows: list[dict]) -> dict | None:
    ours = [r for r in rows if r.get("method") == METHOD and r.get("status") == "ok"]
    if not ours:
        return None
    groups: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in ours:
        groups[(r.get("hardware") or "?", _setting(r))][_variant(r)].append(r)
    settings = sorted({setting for _, setting in groups})
    table, notes = [], []
    for (hardware, setting), variants in sorted(groups.items()):
        tag = "" if len(settings) == 1 else f"#{settings.index(setting) + 1} "
        by_variant = {v: _stats(rs) for v, rs in variants.items()}
        for v in sorted(by_variant, key=lambda v: (ORDER.index(v) if v in ORDER else len(ORDER), v)):
            st = by_variant[v]
            table.append([
                hardware, f"{tag}{v}", st["jobs"],
                "-" if st["params"] is None else f"{st['params'] / 1e3:.0f}k",
                "-" if st["flops"] is None else f"{st['flops'] / 1e6:.2f}M",
                "-" if st["latency"] is None else f"{st['latency']:.2f}",
                _pct(st["acc"], st["acc_sd"]), _pct(st["f1"], st["f1_sd"]),
                _pct(st["acc_unseen"]), _pct(st["val_acc"]), st["heads"] or "-",
            ])
        notes += _claims(f"[{hardware}{'' if not tag else ' ' + tag.strip()}] ", by_variant)
    if len(settings) > 1:
        notes += [f"#{i + 1} = {s}" for i, s in enumerate(settings)]
    return {
        "title": "SMLDist: teacher vs distilled student and baselines (acc/F1 on the user's seen context, after adapt)",
        "headers": ["hardware", "variant", "jobs", "params", "FLOPs", "p50 ms", "acc %", "macro-F1 %",
                    "acc unseen %", "pop. val acc %", "head chosen"],
        "rows": table,
        "note": " ".join(notes) + " (± = std of per-seed means)",
    }
