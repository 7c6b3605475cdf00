"""Measurement on this host: energy regions (codecarbon), latency loops, and statistics over raw samples."""

from .energy import Energy, EnergyMeter
from .latency import LatencyRun, latency_loop
from .stats import Stats, mean_std

__all__ = ["Energy", "EnergyMeter", "LatencyRun", "latency_loop", "Stats", "mean_std"]
