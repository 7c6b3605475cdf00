"""User-level statistics for reports: confidence intervals, harm rate, worst decile, paired tests.

The user is the unit of evaluation: a method that helps the average user while hurting one user in five is a
different method from one that helps everyone a little. So per method this module reduces each user to one number
(the mean over seeds and over whatever else the group pools), then reports the share of users made worse than
``generic`` (harm rate), the mean of the worst decile of users, and Wilcoxon signed-rank tests paired by user
against reference methods, Holm-corrected over every comparison shown.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Sequence

import numpy as np

from .claims import bootstrap_interval
from .frame import Keys
from .query import GroupKey, group_key_columns, group_rows, key_value, number

REFERENCES = ("generic", "finetune-full")


# ------------------------------------------------------------------------------------------ statistics


def finite(values: Iterable[Any]) -> list[float]:
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
    """Mean, standard deviation and a two-sided Student-t confidence interval of the mean."""

    n: int
    mean: float
    std: float
    lo: float
    hi: float


def estimate(values: Iterable[Any], level: float = 0.95) -> Estimate:
    """With one value the interval is that value's (unknowable) width: NaN, shown as '—' rather than a fake ±0."""
    return _estimate(finite(values), level)


def _estimate(vals: list[float], level: float) -> Estimate:
    n = len(vals)
    if n == 0:
        return Estimate(0, math.nan, math.nan, math.nan, math.nan)
    mean = statistics.fmean(vals)
    if n == 1:
        return Estimate(1, mean, 0.0, math.nan, math.nan)
    std = stdev(vals, mean)
    half = _t_quantile(level, n - 1) * std / math.sqrt(n)
    return Estimate(n, mean, std, mean - half, mean + half)


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
def _t_quantile(level: float, dof: int) -> float:
    """Student-t quantile: ``scipy.stats.t.ppf`` is ``scipy.special.stdtrit``, without importing scipy.stats
    (~1 s: a ``--format json`` report needs no other part of it)."""
    from scipy import special

    return float(special.stdtrit(dof, 0.5 + level / 2))


def estimate_array(vals: np.ndarray, level: float = 0.95) -> Estimate:
    """:func:`estimate` of finite values already in an array: the same figures, bit for bit."""
    return _estimate(vals.tolist(), level)


def user_estimate_array(user_means: np.ndarray, level: float = 0.95) -> Estimate:
    """:func:`user_estimate` from the users' means already in an array (the same figures, bit for bit)."""
    n = len(user_means)
    if n == 0:
        return Estimate(0, math.nan, math.nan, math.nan, math.nan)
    values = user_means.tolist()
    lo, hi = bootstrap_interval(values, level)
    mean = statistics.fmean(values)
    return Estimate(n, mean, stdev(values, mean), lo, hi)


def user_key(row: dict[str, Any], keys: Keys | None = None) -> tuple:
    """Users of different datasets (or dataset parameters) are different units, even with the same id."""
    return (row.get("dataset"), (keys or key_value)(row.get("dataset_params")), row.get("user"))


def per_user(rows: Iterable[dict[str, Any]], metric: str) -> dict[tuple, float]:
    """One value per user: the mean of ``metric`` over that user's successful jobs (seeds, pooled targets)."""
    return _means_by(rows, metric, user_key)


def _means_by(rows: Iterable[dict[str, Any]], metric: str, key) -> dict[tuple, float]:
    """The mean of ``metric``'s finite values over the successful jobs sharing ``key(row)``."""
    values: dict[tuple, list[float]] = {}
    keys = Keys()  # a dict column's key text once per (shared) object, not once per row
    by_user = key is user_key
    isfinite = math.isfinite
    for r in rows:
        if r.get("status", "ok") != "ok":
            continue
        v = r.get(metric)
        if type(v) is not float:
            vals = finite([v])
            if not vals:
                continue
            v = vals[0]
        elif not isfinite(v):
            continue
        k = (r.get("dataset"), keys(r.get("dataset_params")), r.get("user")) if by_user else key(r, keys)
        if k in values:
            values[k].append(v)
        else:
            values[k] = [v]
    return {k: statistics.fmean(v) for k, v in values.items()}


def configuration_key(row: dict[str, Any], keys: Keys | None = None) -> tuple:
    """One method configuration's job on one user and seed, whatever the target: a quantity that does not depend
    on the target (accuracy, calibration, parameter counts) is one observation per such key, not one per target."""
    return (*user_key(row, keys), row.get("method"), row.get("variant"), (keys or key_value)(row.get("method_params")),
            row.get("seed"))


def once_per_configuration(rows: Iterable[dict[str, Any]], metric: str) -> list[float]:
    """The values of a target-independent ``metric`` of the successful jobs, one per method configuration × user
    × seed (the mean over the targets it ran on), so pooling targets does not multiply the observations."""
    return list(_means_by(rows, metric, configuration_key).values())


def user_estimate(rows: Iterable[dict[str, Any]], metric: str, level: float = 0.95) -> Estimate:
    """Mean and standard deviation over users (each user the mean over its seeds and the targets pooled), with
    a bootstrap interval of the mean over users (:func:`harbench.bootstrap_interval`, BCa). The bootstrap
    distribution of a mean lies within the users' values, so an accuracy interval never leaves [0, 1]; below 3
    users there is no interval (NaN)."""
    vals = list(per_user(rows, metric).values())
    if not vals:
        return Estimate(0, math.nan, math.nan, math.nan, math.nan)
    lo, hi = bootstrap_interval(vals, level)
    mean = statistics.fmean(vals)
    return Estimate(len(vals), mean, stdev(vals, mean), lo, hi)


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


def harm_rate(method: dict[tuple, float], reference: dict[tuple, float], tolerance: float = 1e-9,
              higher_is_better: bool | None = True) -> tuple[float, int]:
    """Share of paired users made worse than the reference (below it when higher is better, above it when lower
    is better); returns (rate, number of paired users). Without a direction nobody is worse: NaN."""
    users = sorted(set(method) & set(reference), key=str)
    if not users or higher_is_better is None:
        return math.nan, len(users)
    sign = 1.0 if higher_is_better else -1.0
    worse = sum(sign * (method[u] - reference[u]) < -tolerance for u in users)
    return worse / len(users), len(users)


@dataclass(frozen=True)
class Paired:
    """A paired comparison over users: median difference (method − reference), raw and Holm-adjusted p."""

    reference: str
    n: int
    median_diff: float
    p: float
    p_holm: float = math.nan


def wilcoxon(method: dict[tuple, float], reference: dict[tuple, float], name: str) -> Paired:
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


# -------------------------------------------------------------------------------------- user-level table


@dataclass
class UserLevel:
    """Per method (× the other grouping columns): the user-level view of one metric."""

    key: dict[str, Any]
    users: int
    mean: float
    harm: float
    worst_decile: float
    paired: list[Paired] = field(default_factory=list)


def user_level(rows: Sequence[dict[str, Any]], by: Sequence[str] | None = None, metric: str = "acc_seen",
               references: Sequence[str] = REFERENCES, higher_is_better: bool | None = True,
               target_independent: bool = False) -> list[UserLevel]:
    """Harm rate, worst decile and paired tests of every method, within strata of the other grouping columns.

    A method is compared with a reference method in the same stratum (same values of the non-method grouping
    columns), paired by user. When the reference ran with several variants, its default variant ('') is used
    if present, otherwise the first in sorted order. Holm's correction runs over every test in the table.
    ``higher_is_better`` is the metric's declared direction: it decides who is harmed and who is worst.
    A ``target_independent`` metric (accuracy: anything that is not a cost a target measures or models) is not
    split by ``hardware``: each method configuration is one row whose users are each counted once, and the Holm
    family is not multiplied by the number of targets.
    """
    columns = group_key_columns(by)
    if target_independent:
        columns = [c for c in columns if c != "hardware"]
    if "method" not in columns:
        columns = ["method", "variant", *columns]
    ok = [r for r in rows if r.get("status") == "ok"]
    groups = group_rows(ok, columns)
    stratum_cols = [c for c in columns if c not in ("method", "variant")]

    def stratum(key: GroupKey) -> tuple:
        return tuple(v for c, v in zip(columns, key) if c in stratum_cols)

    reference_rows: dict[tuple[str, tuple], list[dict[str, Any]]] = {}
    for ref in references:
        candidates: dict[tuple, dict[str, list]] = {}
        for key, items in groups.items():
            d = dict(zip(columns, key))
            if d["method"] == ref:
                candidates.setdefault(stratum(key), {})[d["variant"]] = items
        for s, variants in candidates.items():
            chosen = "" if "" in variants else sorted(variants)[0]
            reference_rows[(ref, s)] = variants[chosen]

    out: list[UserLevel] = []
    for key, items in groups.items():
        d = dict(zip(columns, key))
        values = per_user(items, metric)
        generic = reference_rows.get(("generic", stratum(key)))
        if generic is not None:
            harm, _ = harm_rate(values, per_user(generic, metric), higher_is_better=higher_is_better)
        elif metric == "acc_seen" and higher_is_better:  # gain_seen is acc_seen minus the generic model's, per user: same pairing
            gains = per_user(items, "gain_seen")
            harm, _ = harm_rate(gains, {u: 0.0 for u in gains})
        else:
            harm = math.nan
        paired = []
        for ref in references:
            ref_items = reference_rows.get((ref, stratum(key)))
            if ref_items is None or (d["method"] == ref and ref_items is items):
                continue
            paired.append(wilcoxon(values, per_user(ref_items, metric), ref))
        out.append(UserLevel(d, len(values), statistics.fmean(values.values()) if values else math.nan, harm,
                             worst_decile(values.values(), higher_is_better), paired))
    family = [p for u in out for p in u.paired]
    for p, adj in zip(family, holm([p.p for p in family])):
        object.__setattr__(p, "p_holm", adj)
    return out


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points not dominated under (lower x, higher y), sorted by x: the trade-off curve."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best_y = [], -math.inf
    for i in order:
        x, y = points[i]
        if math.isnan(x) or math.isnan(y):
            continue
        if y > best_y:
            front.append(i)
            best_y = y
    return front


def energy_methods(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The energy methods of the jobs that measured or modelled some work ("none": a job that executed none, e.g.
    ``generic`` on an estimated target, is no other method)."""
    return sorted({str(r["energy_method"]) for r in rows
                   if r.get("status") == "ok" and r.get("energy_method") not in (None, "", "none")})


def energy_note(rows: Iterable[dict[str, Any]]) -> str | None:
    """The warning every energy comparison across measurement methods must carry."""
    found = energy_methods(rows)
    if len(found) > 1:
        return (f"note: energy figures come from different energy methods ({', '.join(found)}); figures from "
                f"different methods are not directly comparable — compare within one method.")
    return None
