"""Checks on what plugins return at the boundary: costs a target reports, values a metric computes, and whether a
model's predictions depend on the batch they are evaluated in.

A job whose plugin output fails a check fails with one line naming the plugin and the value; nothing unchecked
reaches the store (a negative energy would otherwise be "the least adapt energy" in the decision view).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .messages import OutputRejected

# a difference of accuracies (gain_seen) is a fraction of the test windows too, but may be negative
_SIGNED_FRACTIONS = ("gain_",)


def _bad(value: Any, signed: bool = False) -> bool:
    if value is None:
        return False
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return True
    return not math.isfinite(value) or (not signed and value < 0)


def _check_costs(plugin: str, what: str, cost: Any, names: tuple[str, ...], net: str) -> None:
    """``names`` finite and >= 0, the net figure ``net`` (gross minus idle power) finite: one rule for a phase's
    cost and an inference's."""
    for name in names:
        value = getattr(cost, name)
        if _bad(value):
            raise OutputRejected(f"hardware target {plugin!r} reported {what} {name} = {value!r}; expected a finite "
                                 "number >= 0")
    if _bad(getattr(cost, net), signed=True):
        raise OutputRejected(f"hardware target {plugin!r} reported {what} {net} = {getattr(cost, net)!r}; "
                             "expected a finite number")


def check_phase_cost(plugin: str, phase: str, cost: Any) -> None:
    """Seconds, gross joules and peak memory finite and >= 0; net joules (gross minus idle power) finite."""
    _check_costs(plugin, phase, cost, ("seconds", "joules", "peak_mb"), "joules_net")


def check_inference_cost(plugin: str, cost: Any) -> None:
    samples = cost.latency_s
    if not isinstance(samples, (list, tuple)) or not samples:
        raise OutputRejected(f"hardware target {plugin!r} reported no inference latency samples ({samples!r})")
    bad = next((s for s in samples if _bad(s)), None)
    if bad is not None or any(s is None for s in samples):
        raise OutputRejected(f"hardware target {plugin!r} reported an inference latency of {bad!r} s; expected "
                             "finite numbers >= 0")
    _check_costs(plugin, "inference", cost, ("joules_per_window", "peak_mb"), "joules_net_per_window")


def check_model_stats(method: str, stats: dict[str, Any]) -> None:
    for name in ("params", "model_kb"):
        if _bad(stats.get(name)) or stats.get(name) is None:
            raise OutputRejected(f"method {method!r}: the model's {name} = {stats.get(name)!r}; expected a finite "
                                 "number >= 0")


def check_metric(metric: str, unit: str, value: Any) -> None:
    """A fraction metric lies in [0, 1] ([-1, 1] for a gain); NaN and infinity become "no value" elsewhere."""
    if unit != "fraction" or not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return
    low = -1.0 if metric.startswith(_SIGNED_FRACTIONS) else 0.0
    if not low <= value <= 1.0:
        raise OutputRejected(f"metric {metric!r} computed {value!r}, a fraction outside [{low:g}, 1]")


# ------------------------------------------------------------------------------------------ transduction

# Logits of one window evaluated in two batches of different size and company differ only by the kernels' blocking
# (float32 sums in another order: ~1e-6 relative). A model that normalises with the batch (BatchNorm pinned to
# train(), a forward that re-standardises its input) moves them by O(0.1)-O(1). The bound sits between the two,
# 100x above the first on any SIMD kernel.
TRANSDUCTION_RTOL = 1e-3


def transductive(first: torch.Tensor, second: torch.Tensor) -> str | None:
    """None when two evaluations of the same windows agree; else what differs, in words."""
    if first.shape != second.shape:
        return f"output shapes {tuple(first.shape)} and {tuple(second.shape)}"
    if not len(first):
        return None
    a, b = first.to(torch.float64), second.to(torch.float64)
    scale = 1.0 + float(a.abs().max())
    gap = float((a - b).abs().max())
    if not math.isfinite(gap) or gap > TRANSDUCTION_RTOL * scale:
        moved = int(((a - b).abs() > TRANSDUCTION_RTOL * scale).any(dim=1).sum())
        return (f"logits moved by up to {gap:.3g} (bound {TRANSDUCTION_RTOL * scale:.3g}) on {moved} of {len(a)} test "
                "windows when evaluated in another batch order and size")
    return None
