"""User-level views for reports: per-user values, harm rate, worst decile, paired tests (the statistics
themselves live in :mod:`harbench.stats`).

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
from typing import Any, Iterable, Sequence

import numpy as np

from ..stats.cells import cell_estimate
from ..stats.describe import Estimate, estimate, estimate_array, finite, harm_rate, stdev, worst_decile
from ..stats.multiplicity import holm
from ..stats.pareto import pareto_front
from ..stats.significance import Paired, wilcoxon
from .frame import Keys
from .query import GroupKey, group_key_columns, group_rows, key_value

__all__ = ["Estimate", "Paired", "estimate", "estimate_array", "finite", "harm_rate", "holm", "pareto_front",
           "stdev", "wilcoxon", "worst_decile"]  # statistics live in harbench.stats; re-exported for old imports

REFERENCES = ("generic", "finetune-full")


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


def user_estimate(rows: Iterable[dict[str, Any]], metric: str, level: float = 0.95,
                  bounds: tuple[float, float] | None = None) -> Estimate:
    """Mean over users and the standard deviation of the per-user means, with the interval every view shows
    (:func:`harbench.stats.intervals.cell_estimate`: users and seeds as levels); ``bounds`` clip it (accuracy)."""
    ok = [r for r in rows if r.get("status", "ok") == "ok"]
    values = np.array([v if (v := _value(r.get(metric))) is not None else math.nan for r in ok], dtype=float)
    keep = ~np.isnan(values)
    keys = Keys()
    users = _codes([(r.get("dataset"), keys(r.get("dataset_params")), r.get("user")) for r in ok])
    seeds = _codes([r.get("seed") for r in ok])
    return cell_estimate(values[keep], users[keep], seeds[keep], level, bounds)


def _value(v: Any) -> float | None:
    f = finite([v])
    return f[0] if f else None


def _codes(keys: list[Any]) -> np.ndarray:
    index: dict[Any, int] = {}
    return np.fromiter((index.setdefault(k, len(index)) for k in keys), dtype=np.int64, count=len(keys))


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
