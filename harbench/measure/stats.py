"""Statistics over raw samples, kept apart from the loops that collect them (as pytest-benchmark does)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass
class Stats:
    samples: Sequence[float]

    def percentile(self, q: float) -> float:
        """Linear-interpolated percentile, ``q`` in [0, 100]."""
        return float(np.percentile(self.samples, q)) if len(self.samples) else math.nan

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else math.nan


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return math.nan, math.nan
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)
