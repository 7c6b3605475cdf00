"""Multiplicity: Holm's step-down adjustment over a declared family of tests.

Every verdict belongs to a family (a plugin's summary, a report's table); the family's tests are adjusted
together, so "reproduced" at a family-wise error rate of 5 % means what it says however many claims the family
holds. Holm rather than Benjamini–Hochberg: a verdict is a statement about one claim, and a reviewer signs each
one, so the family-wise error rate (not the false discovery rate) is the promise.
"""

from __future__ import annotations

import math
from typing import Sequence


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni step-down adjusted p-values (NaN entries are left out of the family and stay NaN)."""
    index = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    m = len(index)
    adjusted = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(index, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def holm_levels(pvalues: Sequence[float], alpha: float = 0.05) -> list[float]:
    """The level each test is compared with in Holm's step-down: ``alpha / (m - rank)`` for the test of rank
    ``rank`` (0 for the smallest p) among the ``m`` non-NaN tests; NaN for NaN entries."""
    index = sorted((i for i, p in enumerate(pvalues) if not math.isnan(p)), key=lambda i: pvalues[i])
    levels = [math.nan] * len(pvalues)
    for rank, i in enumerate(index):
        levels[i] = alpha / (len(index) - rank)
    return levels
