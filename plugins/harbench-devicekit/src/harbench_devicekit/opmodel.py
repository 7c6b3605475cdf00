"""``opmodel-v1``: latency as a small linear model over features of the traced operators, fitted from k measured
networks, with an interval from the fit's held-out residuals.

Why features and not one roofline: measured boards do not spend time where a single ``max(FLOPs/peak,
bytes/bandwidth)`` says. Convolutions and matrix products (the GEMM class) run at their own fraction of peak, and
also pay for streaming their weights and activations; element-wise operators (ReLU, BatchNorm, pooling, sums) are
memory-bound; every operator costs a dispatch; every call a fixed overhead. Each of those is a feature computed
from the trace (seconds at the profile's peak and bandwidth, or a count), so a fitted coefficient reads as
``1 / efficiency`` or as seconds per operator. Nothing in the features names a network: two networks with the same
operators get the same estimate.

Few shots cannot pin many coefficients, so the columns grow with k (:func:`columns_for`): one shot scales the
profile's own roofline, a few fit the GEMM and memory terms, ten or more add the per-operator dispatch.

The interval: for each shot, the ratio measured / predicted of a fit made without it (leave-one-out); the
estimate's interval is ``[estimate x min ratio, estimate x max ratio]``. With n shots that bracket covers a new
network with probability about (n-1)/(n+1) if errors are exchangeable; ``harbench estimator-check`` measures the
real coverage on held-out rows. Fewer than 3 shots give no interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy.optimize import minimize, nnls

from .profiles import ComputeUnit
from .roofline import roofline_seconds
from .trace import OpTrace

ESTIMATOR = "opmodel-v1"
GEMM_OPS = frozenset({"convolution", "_convolution", "mm", "addmm", "bmm", "baddbmm", "linear", "conv1d", "conv2d"})
FEATURES = ("roofline", "gemm_compute", "gemm_memory", "other_memory", "ops", "call")
MIN_INTERVAL_SHOTS = 3
HUBER = 0.1  # log-ratio where the loss turns from quadratic to linear (about 10 %)


def features(trace: OpTrace, unit: ComputeUnit) -> np.ndarray:
    """The trace's features, in the order of :data:`FEATURES` (seconds, except ``ops``: a count; ``call``: 1)."""
    gemm_flops = gemm_bytes = other_bytes = 0.0
    for op in trace.ops:
        if op.op in GEMM_OPS:
            gemm_flops += op.flops
            gemm_bytes += op.bytes
        else:
            other_bytes += op.bytes
    roofline = float(sum(roofline_seconds(trace, unit)))
    return np.array([roofline, gemm_flops / unit.peak_flops, gemm_bytes / unit.bandwidth_bytes_s,
                     other_bytes / unit.bandwidth_bytes_s, float(len(trace)), 1.0])


def columns_for(shots: int) -> tuple[str, ...]:
    """The features fitted with ``shots`` measurements: never more than about a third of the shots."""
    if shots < 3:
        return ("roofline",)
    if shots < 10:
        return ("gemm_compute", "other_memory")
    return ("gemm_compute", "gemm_memory", "other_memory", "ops")


@dataclass(frozen=True)
class OpModel:
    """Fitted coefficients over named features, and the leave-one-out ratio range that makes the interval."""

    columns: tuple[str, ...]
    coefficients: tuple[float, ...]
    ratio_low: float | None = None
    ratio_high: float | None = None
    shots: int = 0
    loo_mape: float | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def predict(self, feats: np.ndarray) -> np.ndarray:
        """Seconds for one feature vector (1-D) or a matrix of them (rows)."""
        idx = [FEATURES.index(c) for c in self.columns]
        return np.asarray(feats)[..., idx] @ np.asarray(self.coefficients)

    def interval(self, seconds: float) -> tuple[float, float] | None:
        if self.ratio_low is None or self.ratio_high is None:
            return None
        return seconds * self.ratio_low, seconds * self.ratio_high

    def to_json(self) -> dict[str, Any]:
        return {"estimator": ESTIMATOR, "columns": list(self.columns), "coefficients": list(self.coefficients),
                "ratio_low": self.ratio_low, "ratio_high": self.ratio_high, "shots": self.shots,
                "loo_mape_percent": self.loo_mape, "source": self.source, **self.extra}

    @staticmethod
    def from_json(block: dict[str, Any]) -> "OpModel":
        columns = tuple(str(c) for c in block["columns"])
        unknown = [c for c in columns if c not in FEATURES]
        if unknown or len(block["coefficients"]) != len(columns):
            raise ValueError(f"opmodel block: unknown feature(s) {unknown} or coefficients do not match columns")
        low, high = block.get("ratio_low"), block.get("ratio_high")
        return OpModel(columns, tuple(float(c) for c in block["coefficients"]),
                       None if low is None else float(low), None if high is None else float(high),
                       int(block.get("shots", 0)), block.get("loo_mape_percent"), str(block.get("source", "")))


def _solve(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative coefficients minimising a Huber loss on log(predicted / measured).

    Why the log ratio: it treats 2x too slow and 2x too fast alike, where a relative-error loss lets one small
    network the features misread (1 ms measured, 13 ms predicted) outweigh the rest and push the fit towards
    under-prediction. Huber (quadratic within 10 %, linear beyond) keeps such a shot from dragging the fit. The start
    is the non-negative least-squares fit on relative error; a negative cost per operator is never a fit."""
    w = 1.0 / y
    start, _ = nnls(x * w[:, None], y * w)
    scale = np.where(start > 0, start, np.maximum(start.max(), 1.0) * 1e-3)

    def loss(theta: np.ndarray) -> float:
        predicted = np.maximum(x @ (theta * scale), 1e-12)
        r = np.abs(np.log(predicted / y))
        return float(np.sum(np.where(r <= HUBER, 0.5 * r**2, HUBER * (r - 0.5 * HUBER))))

    result = minimize(loss, np.where(start > 0, 1.0, 0.0), method="L-BFGS-B", bounds=[(0.0, None)] * x.shape[1])
    coef = result.x * scale
    return coef if loss(result.x) <= loss(np.where(start > 0, 1.0, 0.0)) else start


def fit(feats: np.ndarray, measured_s: Sequence[float], columns: tuple[str, ...] | None = None,
        source: str = "") -> OpModel:
    """Fit on the rows of ``feats`` (one per measured network) against ``measured_s`` (seconds)."""
    y = np.asarray(measured_s, dtype=float)
    columns = columns or columns_for(len(y))
    x = np.asarray(feats)[:, [FEATURES.index(c) for c in columns]]
    coef = _solve(x, y)
    low = high = loo = None
    if len(y) >= MIN_INTERVAL_SHOTS:
        ratios = []
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            predicted = float(x[i] @ _solve(x[keep], y[keep]))
            ratios.append(y[i] / predicted if predicted > 0 else np.inf)
        r = np.array(ratios)
        finite = r[np.isfinite(r)]
        if len(finite) == len(r):
            low, high = float(r.min()), float(r.max())
            loo = float(100.0 * np.mean(np.abs(1.0 / r - 1.0)))
    return OpModel(columns, tuple(float(c) for c in coef), low, high, len(y), loo, source)
