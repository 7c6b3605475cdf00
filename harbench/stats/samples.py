"""Statistics over raw samples (latency percentiles), kept apart from the loops that collect them (as
pytest-benchmark does)."""

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
