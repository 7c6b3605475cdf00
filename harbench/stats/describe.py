"""Descriptive statistics of plain samples: means, standard deviations, Student-t intervals over a flat sample,
the worst decile and the harm rate of users.

These describe numbers; they do not know what a job, a user or a seed is. The interval a view shows for a cell of
a run (users and seeds as levels) is :func:`harbench.stats.cells.cell_estimate`'s, not :func:`estimate`'s.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Sequence

import numpy as np


def number(value: Any) -> float | None:
    """A value as a float, or None for None, bools and text (one reading for every view and statistic)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def finite(values: Iterable[Any]) -> list[float]:
    """The finite numbers among ``values`` (None, bools, text and inf/NaN are left out)."""
    out = []
    isfinite = math.isfinite
    for v in values:
        if type(v) is float:  # the common case, without number()'s checks
            if isfinite(v):
                out.append(v)
            continue
        n = number(v)
        if n is not None and isfinite(n):
            out.append(n)
    return out


@dataclass(frozen=True)
class Estimate:
    """Mean, standard deviation and a two-sided confidence interval of the mean.

    ``method`` names how the interval was obtained (``t over users``, ``t over users and seeds
    (Satterthwaite)``, ``t over values``), so every view can say what its brackets mean."""

    n: int
    mean: float
    std: float
    lo: float
    hi: float
    method: str = "t over values"
    seeds: int = 0  # seeds used as a level (0: the sample had no seed level)


def estimate(values: Iterable[Any], level: float = 0.95) -> Estimate:
    """A Student-t interval over a flat sample. With one value the interval is that value's (unknowable) width:
    NaN, shown as '—' rather than a fake ±0."""
    return _estimate(finite(values), level)


def _estimate(vals: list[float], level: float) -> Estimate:
    n = len(vals)
    if n == 0:
        return Estimate(0, math.nan, math.nan, math.nan, math.nan)
    mean = statistics.fmean(vals)
    if n == 1:
        return Estimate(1, mean, 0.0, math.nan, math.nan)
    std = stdev(vals, mean)
    half = t_quantile(level, n - 1) * std / math.sqrt(n)
    return Estimate(n, mean, std, mean - half, mean + half)


def estimate_array(vals: np.ndarray, level: float = 0.95) -> Estimate:
    """:func:`estimate` of finite values already in an array: the same figures, bit for bit."""
    return _estimate(vals.tolist(), level)


def stdev(vals: Sequence[float], mean: float | None = None) -> float:
    """The sample standard deviation, from the exactly rounded mean (``statistics.fmean``) and an exactly rounded
    sum (``math.fsum``) of the squared deviations: within a few ulps of ``statistics.stdev``, whose exact rational
    arithmetic cost 1.5 s of a 10^5-row report, and the same on every CPU (no SIMD-ordered reduction)."""
    n = len(vals)
    if n < 2:
        return 0.0
    m = statistics.fmean(vals) if mean is None else mean
    d = np.asarray(vals, dtype=float) - m  # elementwise: each difference and square rounded once, as in Python
    return math.sqrt(math.fsum((d * d).tolist()) / (n - 1))


@lru_cache(maxsize=4096)
def t_quantile(level: float, dof: float) -> float:
    """The two-sided ``level`` Student-t quantile: ``scipy.stats.t.ppf`` is ``scipy.special.stdtrit``, without
    importing scipy.stats (~1 s: a ``--format json`` report needs no other part of it)."""
    from scipy import special

    return float(special.stdtrit(dof, 0.5 + level / 2))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return math.nan, math.nan
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def means_by(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The mean of ``values`` per distinct code (in code order), each exactly ``statistics.fmean`` of its values
    (``fsum / n``): the same figures on every CPU, whatever order numpy would sum in."""
    if len(values) == 0:
        return values
    order = np.argsort(codes, kind="stable")
    ordered = values[order].tolist()
    starts = [0, *(np.flatnonzero(np.diff(codes[order])) + 1).tolist(), len(ordered)]
    return np.array([math.fsum(ordered[a:b]) / (b - a) for a, b in zip(starts, starts[1:])])


def worst_decile(values: Iterable[float], higher_is_better: bool | None = True) -> float:
    """Mean of the worst tenth of users (at least one user): what the unluckiest users actually get. "Worst"
    follows the metric's direction (the highest latencies for a lower-is-better metric); a metric without a
    direction has no worst users (NaN)."""
    if higher_is_better is None:
        return math.nan
    vals = sorted(finite(values), reverse=not higher_is_better)
    if not vals:
        return math.nan
    k = max(1, math.ceil(len(vals) / 10))
    return statistics.fmean(vals[:k])


def harm_rate(method: dict[Any, float], reference: dict[Any, float], tolerance: float = 1e-9,
              higher_is_better: bool | None = True) -> tuple[float, int]:
    """Share of paired users made worse than the reference (below it when higher is better, above it when lower
    is better); returns (rate, number of paired users). Without a direction nobody is worse: NaN."""
    users = sorted(set(method) & set(reference), key=str)
    if not users or higher_is_better is None:
        return math.nan, len(users)
    sign = 1.0 if higher_is_better else -1.0
    worse = sum(sign * (method[u] - reference[u]) < -tolerance for u in users)
    return worse / len(users), len(users)
