"""``harbench estimator-check``: calibrate a device's estimator on k measured architectures and score it on the
rest, repeated over seeded draws, next to two references (FLOPs alone, the profile's roofline) fitted the same way.

The shipped roofline is also scored as it is (0 shots: no fit, every row at or above ``min_ms``).

The protocol is held-out: each repeat draws k rows (seed + repeat) from the rows at or above ``min_ms``, fits on
them, and scores only the other rows. Rows below ``min_ms`` are excluded (cells whose output is cut off by
``none`` edges measure a fraction of a millisecond: not a modelling target) and counted in the output.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy.stats import spearmanr

from . import opmodel
from .measurements import Measurements, require_rows
from .nasbench201 import DEFAULT_RULE, network_trace
from .profiles import ComputeUnit, profile_from_file

ESTIMATORS = ("flops", "roofline-v1", opmodel.ESTIMATOR)
METRICS = ("spearman", "mape", "within_10", "within_20", "coverage")


def shipped_unit(profile_dirs: Sequence[Path], name: str, unit: str = "cpu") -> tuple[ComputeUnit, str]:
    """The unit of the profile as the plugin ships it (a user's calibrated copy must not change the check)."""
    for folder in profile_dirs:
        path = Path(folder) / f"{name}.yaml"
        if path.is_file():
            return profile_from_file(path).unit(unit, None), str(path)
    raise FileNotFoundError(f"no shipped profile {name!r} in {', '.join(str(f) for f in profile_dirs)}")


def feature_matrix(measurements: Measurements, unit: ComputeUnit, rule: str = DEFAULT_RULE) -> tuple[np.ndarray, np.ndarray]:
    """(features of every row, FLOPs of every row); architectures with the same live cell share one trace."""
    memo: dict[tuple[str, ...], tuple[np.ndarray, float]] = {}
    feats, flops = [], []
    for m in measurements.rows:
        live = m.genotype.live_edges(rule)
        key = tuple(op if keep else "none" for op, keep in zip(m.genotype.ops, live))
        if key not in memo:
            trace = network_trace(m.genotype, rule)
            memo[key] = (opmodel.features(trace, unit), trace.flops)
        f, fl = memo[key]
        feats.append(f)
        flops.append(fl)
    return np.array(feats), np.array(flops)


def scores(predicted: np.ndarray, measured: np.ndarray, interval: tuple[np.ndarray, np.ndarray] | None) -> dict[str, float | None]:
    error = np.abs(predicted - measured) / measured
    rho = float(spearmanr(predicted, measured)[0]) if len(measured) > 1 else float("nan")
    coverage = None
    if interval is not None:
        coverage = float(100.0 * np.mean((measured >= interval[0]) & (measured <= interval[1])))
    return {"spearman": rho, "mape": float(100.0 * error.mean()), "within_10": float(100.0 * np.mean(error <= 0.10)),
            "within_20": float(100.0 * np.mean(error <= 0.20)), "coverage": coverage}


@dataclass(frozen=True)
class CheckResult:
    """Per estimator, per shots: each metric's list over repeats; plus the row accounting."""

    target: str
    measurements: str
    rows: int
    excluded: int
    min_ms: float
    repeats: int
    seed: int
    rule: str
    profile: str
    runs: dict[str, dict[int, dict[str, list[float | None]]]]

    def summary(self, estimator: str, shots: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for metric, values in self.runs[estimator][shots].items():
            vals = [v for v in values if v is not None]
            out[metric] = ({"median": statistics.median(vals), "min": min(vals), "max": max(vals)} if vals else None)
        return out

    def to_json(self, shots: int) -> dict[str, Any]:
        main = self.summary(opmodel.ESTIMATOR, shots)
        return {
            "target": self.target, "estimator": opmodel.ESTIMATOR, "measurements": self.measurements,
            "shots": shots, "repeats": self.repeats, "seed": self.seed, "min_ms": self.min_ms,
            "rows": self.rows, "excluded": self.excluded, "evaluated": self.rows - self.excluded - shots,
            "dead_code_rule": self.rule, "profile": self.profile,
            **{k: main[k] for k in ("spearman", "mape", "within_10", "within_20")},
            "interval_coverage": main["coverage"],
            "references": {name: self.summary(name, shots) for name in ESTIMATORS if name != opmodel.ESTIMATOR},
            "by_shots": {str(k): {name: self.summary(name, k) for name in ESTIMATORS} for k in self.runs[opmodel.ESTIMATOR]},
        }

    def markdown(self) -> str:
        def cell(s: dict[str, Any] | None, digits: int) -> str:
            if s is None:
                return "—"
            return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"

        lines = [f"Measurements: {self.measurements}; {self.rows - self.excluded} rows ≥ {self.min_ms:g} ms "
                 f"({self.excluded} excluded); {self.repeats} repeats (seeds {self.seed}–{self.seed + self.repeats - 1}), "
                 f"each calibrated on k random rows and scored on the others; median (min–max) over repeats.",
                 "",
                 "| estimator | shots | Spearman ρ | MAPE % | within ±10 % | within ±20 % | interval coverage % |",
                 "|---|---:|---:|---:|---:|---:|---:|"]
        for name in ESTIMATORS:
            for k in sorted(self.runs[name]):
                s = self.summary(name, k)
                lines.append(f"| {name} | {k} | {cell(s['spearman'], 3)} | {cell(s['mape'], 1)} | "
                             f"{cell(s['within_10'], 1)} | {cell(s['within_20'], 1)} | {cell(s['coverage'], 1)} |")
        return "\n".join(lines)

    def text(self, shots: int) -> str:
        lines = [f"{self.target}: {self.measurements}, {self.rows - self.excluded - shots} held-out rows "
                 f"(>= {self.min_ms:g} ms; {self.excluded} excluded below), {shots} shots, {self.repeats} repeats"]
        for name in ESTIMATORS:
            s = self.summary(name, shots)
            parts = [f"{m} {s[m]['median']:.3g} [{s[m]['min']:.3g}, {s[m]['max']:.3g}]" for m in METRICS if s[m]]
            lines.append(f"  {name:<12} " + "; ".join(parts))
        return "\n".join(lines)


def run_check(target: str, measurements: Measurements, unit: ComputeUnit, profile: str, shots: Sequence[int],
              repeats: int = 5, min_ms: float = 1.0, seed: int = 0, rule: str = DEFAULT_RULE) -> CheckResult:
    latency = np.array([m.latency_ms for m in measurements.rows]) / 1e3
    eligible = np.flatnonzero(latency * 1e3 >= min_ms)
    for k in shots:
        require_rows(measurements, k, usable=len(eligible), held_out=1)
    feats, flops = feature_matrix(measurements, unit, rule)
    flops_feats = np.zeros_like(feats)
    flops_feats[:, opmodel.FEATURES.index("roofline")] = flops  # FLOPs alone, scaled by the same 1-column fit
    runs: dict[str, dict[int, dict[str, list[float | None]]]] = {name: {} for name in ESTIMATORS}
    # the shipped profile as it is (0 shots, no fit): how far an uncalibrated estimate is off
    shipped = scores(feats[eligible, opmodel.FEATURES.index("roofline")], latency[eligible], None)
    runs["roofline-v1"][0] = {m: [v] for m, v in shipped.items()}
    for k in shots:
        for name in ESTIMATORS:
            runs[name][k] = {m: [] for m in METRICS}
        for r in range(repeats):
            rng = np.random.default_rng(seed + r)
            train = rng.choice(eligible, size=k, replace=False)
            test = np.setdiff1d(eligible, train)
            for name in ESTIMATORS:
                x = flops_feats if name == "flops" else feats
                columns = opmodel.columns_for(k) if name == opmodel.ESTIMATOR else ("roofline",)
                model = opmodel.fit(x[train], latency[train], columns, unit=unit)
                predicted = model.predict(x[test])
                interval = None
                if name == opmodel.ESTIMATOR and model.ratio_low is not None:
                    interval = (predicted * model.ratio_low, predicted * model.ratio_high)
                for metric, value in scores(predicted, latency[test], interval).items():
                    runs[name][k][metric].append(value)
    return CheckResult(target, measurements.describe(), len(measurements.rows), len(measurements.rows) - len(eligible),
                       min_ms, repeats, seed, rule, profile, runs)
