"""Conformance of a metric plugin, and ``tiny_outputs()`` for a metric's own tests."""

from __future__ import annotations

import math
from typing import Any

import torch

from .. import (
    AdaptFacts,
    InferenceCost,
    JobOutputs,
    Metric,
    PhaseCost,
)
from ..builtin.datasets import SyntheticDrift
from .core import (
    FAST_CPU,
    SHORT_RUN,
    TINY_DATA,
    ConformanceReport,
    _builtin_registry,
    _check_parameters,
    _check_plugin_class,
    _Checker,
    _require,
    _short_run,
)

# ----------------------------------------------------------------------------------------------- metrics


def tiny_outputs(seed: int = 0) -> JobOutputs:
    """A small, plausible JobOutputs for testing a metric without running a job."""
    gen = torch.Generator().manual_seed(seed)
    info = SyntheticDrift(**TINY_DATA).describe()
    y = torch.randint(0, info.num_classes, (30,), generator=gen)
    noisy = torch.where(torch.rand(30, generator=gen) < 0.7, y, torch.randint(0, info.num_classes, (30,), generator=gen))
    # probabilities whose argmax is the prediction: softmax of random logits with the predicted class lifted
    logits = torch.randn(30, info.num_classes, generator=gen, dtype=torch.float64)
    logits.scatter_(1, noisy.view(-1, 1), logits.max(dim=1, keepdim=True).values + 1.0)
    prob = torch.softmax(logits, dim=1)
    return JobOutputs(
        info=info, y_seen=y, pred_seen=noisy, y_unseen=y.flip(0), pred_unseen=noisy.flip(0).roll(3),
        generic_acc_seen=0.5, adapt=PhaseCost(0.8, 4.0, 1.5, "conformance"),
        facts=AdaptFacts(params_trained=390, optimizer_steps=10, forward_samples=160, backward_samples=160,
                         batch_size=16, epochs=10),
        inference=InferenceCost([0.001, 0.0012, 0.0011, 0.0013], 0.002, 0.001, "conformance"),
        model_stats={"params": 10_000, "model_kb": 40.0, "flops": 2e6},
        prob_seen=prob, prob_unseen=prob.flip(0).roll(3, 0),
    )


def check_metric(cls: type[Metric], params: dict[str, Any] | None = None) -> ConformanceReport:
    """Check a :class:`harbench.Metric` on synthetic job outputs and in a tiny run."""
    params = dict(params or {})
    check = _Checker("metric", getattr(cls, "name", repr(cls)))
    if not check("interface", lambda: _metric_interface(cls, params)):
        return check.finish()
    if not check("parameter schema", lambda: _check_parameters(cls, params)):
        return check.finish()
    check("compute() returns a finite number, a label or None, deterministically", lambda: _metric_compute(cls, params))
    check(SHORT_RUN, lambda: _short_run(
        _builtin_registry("metric", cls), dataset={"name": "synthetic-drift", "params": TINY_DATA},
        methods=[{"name": "generic"}], hardware={"name": "cpu", "params": FAST_CPU},
        metrics=["acc_seen", cls.name]))
    return check.finish()


def _metric_interface(cls, params) -> str:
    _check_plugin_class(cls, Metric, params)
    _require(isinstance(cls.unit, str), "`unit` must be a string ('' when unitless)")
    _require(cls.higher_is_better in (True, False, None), "`higher_is_better` must be True, False or None (a label)")
    return f"unit {cls.unit!r}, higher_is_better={cls.higher_is_better}"


def _metric_compute(cls, params) -> str:
    out = tiny_outputs()
    before = (out.y_seen.clone(), out.pred_seen.clone())
    metric = cls(**params)
    a, b = metric.compute(out), metric.compute(tiny_outputs())
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    _require(a == b or both_nan, f"compute() gave {a!r} then {b!r} on the same outputs")
    _require(torch.equal(before[0], out.y_seen) and torch.equal(before[1], out.pred_seen), "compute() modified outputs")
    values = [metric.compute(tiny_outputs(seed)) for seed in range(5)]
    _require(any(v is not None for v in values), "compute() returned None on every tiny output: the metric would show "
             "'—' in every row; read what it needs from JobOutputs (see harbench.testing.tiny_outputs())")
    if isinstance(a, str):
        _require(cls.higher_is_better is None, "a metric returning text must declare higher_is_better = None")
    elif a is not None:
        _require(isinstance(a, (int, float)) and not isinstance(a, bool), f"compute() returned {type(a).__name__}")
        _require(math.isfinite(a), f"compute() returned {a!r}; return None when the value is unknown")
    return f"value {a!r} on the synthetic outputs"
