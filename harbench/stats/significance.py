"""Tests: one-sided t tests on the interval's standard error, the equivalence test (TOST), and Wilcoxon's
signed-rank test paired by user."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


def t_sf(t: np.ndarray | float, df: np.ndarray | float) -> np.ndarray:
    """P(T > t) for Student's t with ``df`` degrees of freedom (scipy.special.stdtr, vectorised)."""
    from scipy import special

    return np.asarray(special.stdtr(df, -np.asarray(t, dtype=float)))


def directional_p(mean: np.ndarray, se: np.ndarray, df: np.ndarray, threshold: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """One-sided p-values of "mean > threshold" and "mean < threshold" (H0: the opposite or equal)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (np.asarray(mean) - np.asarray(threshold)) / np.asarray(se)
    return t_sf(t, df), t_sf(-t, df)


def tost_p(mean: np.ndarray, se: np.ndarray, df: np.ndarray, center: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """The two one-sided tests' p-value for "|mean - center| < margin" (H0: the effect is at least ``margin``)."""
    above, _ = directional_p(mean, se, df, np.asarray(center) - np.asarray(margin))
    _, below = directional_p(mean, se, df, np.asarray(center) + np.asarray(margin))
    return np.maximum(above, below)


@dataclass(frozen=True)
class Paired:
    """A paired comparison over users: median difference (method − reference), raw and Holm-adjusted p."""

    reference: str
    n: int
    median_diff: float
    p: float
    p_holm: float = math.nan


def wilcoxon(method: dict[Any, float], reference: dict[Any, float], name: str) -> Paired:
    """Two-sided Wilcoxon signed-rank over the users both have; all-equal pairs give p = 1 (no evidence)."""
    users = sorted(set(method) & set(reference), key=str)
    diffs = np.array([method[u] - reference[u] for u in users], dtype=float)
    if len(diffs) == 0:
        return Paired(name, 0, math.nan, math.nan)
    median = float(np.median(diffs))
    if len(diffs) < 2 or np.all(np.abs(diffs) < 1e-12):
        return Paired(name, len(diffs), median, 1.0 if len(diffs) else math.nan)
    from scipy import stats

    p = float(stats.wilcoxon(diffs, zero_method="wilcox", alternative="two-sided").pvalue)
    return Paired(name, len(diffs), median, p)
