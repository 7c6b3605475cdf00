"""Measurement on this host: energy regions (codecarbon) and latency loops (their statistics: harbench.stats)."""

from .energy import Energy, EnergyMeter
from .latency import LatencyRun, latency_loop

__all__ = ["Energy", "EnergyMeter", "LatencyRun", "latency_loop"]
