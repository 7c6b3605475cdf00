"""Measurement on this host: energy regions (codecarbon) and latency loops (their statistics: harbench.stats)."""

from ..stats.describe import mean_std
from ..stats.samples import Stats
from .energy import Energy, EnergyMeter
from .latency import LatencyRun, latency_loop

__all__ = ["Energy", "EnergyMeter", "LatencyRun", "latency_loop", "Stats", "mean_std"]
