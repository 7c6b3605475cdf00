"""``harbench.estimate(target, model, example_input)``: the cost of one batch-1 inference of any ``nn.Module`` on a
hardware target, with its uncertainty, from Python.

Why through the target's ``run_inference``: the estimate is exactly what a benchmark run records for that target
(the same trace, profile and calibration), so a user can check the estimator on their own network against their own
measurement. An estimate from a calibrated profile carries an interval from the calibration residuals and says
which measurements back it; one from a profile nobody fitted to the board says ``uncalibrated`` and has no interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .api import Hardware


@dataclass(frozen=True)
class CostEstimate:
    """Latency (seconds), energy (joules per inference, None without a power model) and memory (MB) of one batch-1
    inference, each with an interval where the calibration gives one."""

    target: str
    status: str  # measured | calibrated | uncalibrated
    estimator: str
    latency_s: float
    latency_interval_s: tuple[float, float] | None
    joules: float | None
    joules_interval: tuple[float, float] | None
    peak_mb: float | None
    calibrated_from: str | None
    extra: dict[str, Any]

    def __str__(self) -> str:
        def span(v: tuple[float, float] | None, scale: float, unit: str) -> str:
            return f" [{v[0] * scale:.3g}, {v[1] * scale:.3g}] {unit}" if v else f" {unit}"

        energy = "" if self.joules is None else f", {self.joules * 1e3:.3g}{span(self.joules_interval, 1e3, 'mJ')}"
        return (f"{self.target}: {self.latency_s * 1e3:.3g}{span(self.latency_interval_s, 1e3, 'ms')}{energy} "
                f"({self.status}, {self.estimator})")


def _pair(value: Any) -> tuple[float, float] | None:
    return None if not value else (float(value[0]), float(value[1]))


def estimate(target: str | Hardware, model: torch.nn.Module, example_input: torch.Tensor,
             **params: Any) -> CostEstimate:
    """Estimate ``model``'s batch-1 inference on ``target`` (a hardware name such as ``"rpi4"`` with optional
    parameters, or a hardware object). ``example_input`` is one input batch; only its first item is used."""
    if isinstance(target, str):
        from .plugins import get_registry

        hardware = get_registry().get("hardware", target).cls(**params)
        assert isinstance(hardware, Hardware)
    else:
        hardware = target
    info = hardware.describe()
    was = model.training
    model.eval()
    try:
        cost = hardware.run_inference(model, example_input)
    finally:
        model.train(was)
    extra = dict(cost.extra)
    latency = sorted(cost.latency_s)[len(cost.latency_s) // 2]
    if info.mode == "measured":
        status = "measured"
    else:
        status = str(extra.get("calibration_status") or info.extra.get("calibration_status") or "uncalibrated")
    return CostEstimate(
        target=info.name, status=status, estimator=str(extra.get("estimator") or cost.energy_method),
        latency_s=float(latency), latency_interval_s=_pair(extra.get("latency_interval_s")),
        joules=cost.joules_per_window, joules_interval=_pair(extra.get("joules_interval")), peak_mb=cost.peak_mb,
        calibrated_from=extra.get("calibrated_from"), extra=extra,
    )
