"""Verdicts on a paper's claims from per-user values: one rule, used by every plugin's summary.

A claim is a statement about a per-user quantity (a paired difference, a ratio, a gain): "TBFT's best block beats
Block Avg", "CRoP's ΔG is positive". The user is the unit of evaluation, so seeds are averaged within a user first
(:func:`per_user_mean`), then the mean over users gets a 95 % bootstrap interval (scipy's BCa; percentile when BCa
is degenerate) and a verdict:

* ``reproduced``: the whole interval lies on the claimed side of the threshold;
* ``not reproduced``: the whole interval lies on the other side (the data contradict the claim);
* ``inconclusive``: the interval straddles the threshold, or there are fewer than 3 users.

Bootstrap intervals respect a metric's range (an accuracy interval never leaves [0, 1]), which a Student-t interval
on a handful of users does not.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any, Callable, Hashable, Iterable, Literal, Mapping

Verdict = Literal["reproduced", "not reproduced", "inconclusive"]
MIN_USERS = 3


@dataclass(frozen=True)
class ClaimResult:
    """One claim's evidence: the mean over users of a per-user value, its interval and the verdict."""

    claim: str
    mean: float
    low: float
    high: float
    n_users: int
    verdict: Verdict
    threshold: float = 0.0
    direction: str = ">"  # the claim is "value > threshold" or "value < threshold"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def text(self, scale: float = 1.0, unit: str = "") -> str:
        """``+3.1 [+0.4, +5.9] pts, 9 users: reproduced`` (values multiplied by ``scale``)."""
        if math.isnan(self.low):
            interval = "[—]"
        else:
            interval = f"[{self.low * scale:+.2f}, {self.high * scale:+.2f}]"
        return f"{self.mean * scale:+.2f} {interval}{unit}, {self.n_users} users: {self.verdict}"


def bootstrap_interval(values: Iterable[float], level: float = 0.95, resamples: int = 4000,
                       seed: int = 0) -> tuple[float, float]:
    """A bootstrap interval of the mean (scipy.stats.bootstrap, BCa); NaNs below :data:`MIN_USERS` values."""
    vals = sorted(float(v) for v in values if v is not None and math.isfinite(float(v)))  # order-independent
    if len(vals) < MIN_USERS:
        return math.nan, math.nan
    if max(vals) - min(vals) < 1e-15:  # no spread: the bootstrap distribution is a point
        return vals[0], vals[0]
    import numpy as np
    from scipy import stats

    data = (np.asarray(vals),)
    for method in ("BCa", "percentile"):
        res = stats.bootstrap(data, np.mean, confidence_level=level, n_resamples=resamples, method=method,
                              random_state=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return low, high
    return math.nan, math.nan


def verdict(low: float, high: float, threshold: float = 0.0, direction: str = ">") -> Verdict:
    if math.isnan(low) or math.isnan(high):
        return "inconclusive"
    if direction == ">":
        return "reproduced" if low > threshold else "not reproduced" if high < threshold else "inconclusive"
    if direction == "<":
        return "reproduced" if high < threshold else "not reproduced" if low > threshold else "inconclusive"
    raise ValueError(f"direction must be '>' or '<', got {direction!r}")


def judge(claim: str, per_user: Mapping[Hashable, float] | Iterable[float], threshold: float = 0.0,
          direction: str = ">", level: float = 0.95) -> ClaimResult:
    """The verdict on "mean over users of ``per_user`` ``direction`` ``threshold``"."""
    values = list(per_user.values()) if isinstance(per_user, Mapping) else list(per_user)
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    mean = statistics.fmean(vals) if vals else math.nan
    low, high = bootstrap_interval(vals, level)
    return ClaimResult(claim, mean, low, high, len(vals), verdict(low, high, threshold, direction), threshold,
                       direction)


def per_user_mean(rows: Iterable[Mapping[str, Any]], value: Callable[[Mapping[str, Any]], float | None],
                  user: Callable[[Mapping[str, Any]], Hashable] | None = None) -> dict[Hashable, float]:
    """Average ``value(row)`` over the rows of each user (its seeds); rows whose value is None/NaN are left out.

    ``user`` defaults to (dataset, dataset_params, user): the same id in two datasets is two users.
    """
    key = user or (lambda r: (r.get("dataset"), str(r.get("dataset_params")), r.get("user")))
    groups: dict[Hashable, list[float]] = defaultdict(list)
    for r in rows:
        v = value(r)
        if v is not None and math.isfinite(float(v)):
            groups[key(r)].append(float(v))
    return {k: statistics.fmean(v) for k, v in groups.items()}


def paired(a: Mapping[Hashable, float], b: Mapping[Hashable, float]) -> dict[Hashable, float]:
    """Per-user ``a - b`` over the users present in both."""
    return {u: a[u] - b[u] for u in a.keys() & b.keys()}
