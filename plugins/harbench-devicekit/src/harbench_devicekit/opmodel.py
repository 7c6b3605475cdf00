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
GEMM_OPS = frozenset({"mm", "addmm", "bmm", "baddbmm", "linear"})
POOL_OPS = frozenset({"avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d",
                      "max_pool2d_with_indices", "max_pool3d_with_indices", "_adaptive_avg_pool2d",
                      "_adaptive_avg_pool3d", "adaptive_max_pool2d", "adaptive_max_pool1d"})
FEATURES = ("roofline", "conv_spatial", "conv_pointwise", "conv_grouped", "pool_memory", "other_memory", "ops",
            "optimizer_ops")
MIN_INTERVAL_SHOTS = 3
HUBER = 0.1  # log-ratio where the loss turns from quadratic to linear (about 10 %)
PRIOR_WEIGHT = 0.01  # weight of (log coefficient - log prior)^2 against the Huber loss of each shot


def features(trace: OpTrace, unit: ComputeUnit) -> np.ndarray:
    """The trace's features, in the order of :data:`FEATURES`: the profile's roofline seconds; the FLOPs of each
    convolution class over peak (matrix products count as pointwise: a GEMM without spatial reuse); the bytes of
    pooling and of every other operator over bandwidth; the operator count of the graph and, apart (issued one at a
    time from Python, dearer), of optimizer updates."""
    f = np.zeros(len(FEATURES))
    f[0] = float(sum(roofline_seconds(trace, unit)))
    for op in trace.ops:
        if op.kind:
            f[FEATURES.index(f"conv_{op.kind}")] += op.flops / unit.peak_flops
        elif op.op in GEMM_OPS:
            f[2] += op.flops / unit.peak_flops
        elif op.op in POOL_OPS:
            f[4] += op.bytes / unit.bandwidth_bytes_s
        else:
            f[5] += op.bytes / unit.bandwidth_bytes_s
    optimizer = trace.count("optimizer")
    f[6] = float(len(trace) - optimizer)
    f[7] = float(optimizer)
    return f


def prior(unit: ComputeUnit) -> np.ndarray:
    """Each feature's coefficient as the profile's own roofline sees it (1/eta_c for compute, 1/eta_m for memory,
    t_op per operator): where the shots say nothing about a class, the fit stays here."""
    cal = unit.calibration
    t_opt = cal.t_op_s if cal.t_op_optimizer_s is None else cal.t_op_optimizer_s
    return np.array([1.0, 1 / cal.eta_c, 1 / cal.eta_c, 1 / cal.eta_m, 1 / cal.eta_m, 1 / cal.eta_m,
                     max(cal.t_op_s, 1e-7), max(t_opt, 1e-7)])


def columns_for(shots: int) -> tuple[str, ...]:
    """The features fitted with ``shots`` measurements: fewer than 3 only rescale the profile's roofline; from 3,
    every class, each held near the profile's prior unless the shots say otherwise."""
    if shots < 3:
        return ("roofline",)
    return FEATURES[1:]


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
            raise ValueError(f"unknown feature(s) {', '.join(unknown) or 'none'} (known: {', '.join(FEATURES)}) or "
                             "as many coefficients as columns expected")
        low, high = block.get("ratio_low"), block.get("ratio_high")
        return OpModel(columns, tuple(float(c) for c in block["coefficients"]),
                       None if low is None else float(low), None if high is None else float(high),
                       int(block.get("shots", 0)), block.get("loo_mape_percent"), str(block.get("source", "")))


def _huber(x: np.ndarray, y: np.ndarray, coef: np.ndarray) -> float:
    r = np.abs(np.log(np.maximum(x @ coef, 1e-12) / y))
    return float(np.sum(np.where(r <= HUBER, 0.5 * r**2, HUBER * (r - 0.5 * HUBER))))


def _solve(x: np.ndarray, y: np.ndarray, prior_coef: np.ndarray | None = None) -> np.ndarray:
    """Coefficients minimising a Huber loss on log(predicted / measured), plus, with ``prior_coef``, a penalty on
    each log coefficient's distance from its prior.

    Why the log ratio: it treats 2x too slow and 2x too fast alike, where a relative-error loss lets one small
    network the features misread (1 ms measured, 13 ms predicted) outweigh the rest and push the fit towards
    under-prediction. Huber (quadratic within 10 %, linear beyond) keeps such a shot from dragging the fit. Why the
    prior: ten shots cannot pin six classes (a draw without 1x1 convolutions says nothing of them); the penalty
    keeps a class the shots do not inform at the profile's own estimate, scaled to the shots, and costs a class
    the shots do inform little. Without a prior the fit is non-negative least squares started from relative error.
    """
    if prior_coef is None:
        w = 1.0 / y
        start, _ = nnls(x * w[:, None], y * w)
        scale = np.where(start > 0, start, np.maximum(start.max(), 1.0) * 1e-3)
        ones = np.where(start > 0, 1.0, 0.0)
        result = minimize(lambda t: _huber(x, y, t * scale), ones, method="L-BFGS-B", bounds=[(0.0, None)] * x.shape[1])
        coef = result.x * scale
        return coef if _huber(x, y, coef) <= _huber(x, y, start) else start
    log_prior = np.log(prior_coef)

    def loss(theta: np.ndarray) -> float:
        return _huber(x, y, np.exp(theta)) + PRIOR_WEIGHT * float(np.sum((theta - log_prior) ** 2))

    return np.exp(minimize(loss, log_prior, method="L-BFGS-B").x)


def fit(feats: np.ndarray, measured_s: Sequence[float], columns: tuple[str, ...] | None = None,
        source: str = "", unit: ComputeUnit | None = None) -> OpModel:
    """Fit on the rows of ``feats`` (one per measured network) against ``measured_s`` (seconds). With ``unit``,
    the classes are held near the profile's prior (see :func:`_solve`), scaled by a one-column fit of the roofline."""
    y = np.asarray(measured_s, dtype=float)
    feats = np.asarray(feats)
    columns = columns or columns_for(len(y))
    idx = [FEATURES.index(c) for c in columns]
    x = feats[:, idx]
    prior_coef = None
    if unit is not None and columns != ("roofline",):
        scale = float(_solve(feats[:, :1], y)[0])
        prior_coef = prior(unit)[idx] * max(scale, 1e-9)

    def solve(rows: np.ndarray) -> np.ndarray:
        if prior_coef is None or unit is None:
            return _solve(x[rows], y[rows])
        return _solve(x[rows], y[rows], prior(unit)[idx] * max(float(_solve(feats[rows, :1], y[rows])[0]), 1e-9))

    coef = _solve(x, y, prior_coef)
    low = high = loo = None
    if len(y) >= MIN_INTERVAL_SHOTS:
        ratios = []
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            predicted = float(x[i] @ solve(keep))
            ratios.append(y[i] / predicted if predicted > 0 else np.inf)
        r = np.array(ratios)
        finite = r[np.isfinite(r)]
        if len(finite) == len(r):
            low, high = float(r.min()), float(r.max())
            loo = float(100.0 * np.mean(np.abs(1.0 / r - 1.0)))
    return OpModel(columns, tuple(float(c) for c in coef), low, high, len(y), loo, source)
