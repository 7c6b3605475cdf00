"""Batch-1 latency loops on this host (MLPerf single-stream rules): raw per-pass samples, one energy region."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .energy import Energy, EnergyMeter


@dataclass
class LatencyRun:
    samples_s: list[float]
    energy: Energy


@torch.inference_mode()
def latency_loop(
    model: torch.nn.Module,
    example: torch.Tensor,
    *,
    warmup: int = 10,
    min_duration_s: float = 1.0,
    min_count: int = 100,
    meter: EnergyMeter | None = None,
) -> LatencyRun:
    """Untimed warm-up, then batch-1 forward passes until both ``min_duration_s`` and ``min_count`` are met.

    Each pass is timed on its own (raw samples are kept); the whole timed loop is one energy region.
    """
    model.eval()
    x = example[:1]
    for _ in range(warmup):
        model(x)
    samples: list[float] = []
    meter = meter or EnergyMeter(enabled=False)
    with meter.region() as energy:
        start = time.perf_counter()
        while len(samples) < min_count or time.perf_counter() - start < min_duration_s:
            t0 = time.perf_counter()
            model(x)
            samples.append(time.perf_counter() - t0)
    return LatencyRun(samples, energy[0])
