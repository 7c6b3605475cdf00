"""Per-unit values from rows: the unit of replication is a user under a seed (:class:`Unit`).

A claim is about a quantity per user; seeds are a level of their own (training shared by every user of a seed),
so summaries keep the (user, seed) grid (:func:`per_unit_mean`) and let the interval average it.
:func:`per_user_mean` (seeds averaged within a user) is kept for plugins that want a per-user figure.

A unit is a *person*. :func:`per_unit_mean` keys a user by dataset configuration, so that differences pair the same
configuration; a claim pooled over configurations (a subject measured phone -> watch and watch -> phone, or under
several drift types) must then average each person's configurations (:func:`per_person`) before it is judged, or
one subject counts as two independent users and the interval is too narrow.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any, Callable, Hashable, Iterable, Mapping

from .intervals import Unit


def _default_user(r: Mapping[str, Any]) -> Hashable:
    return (r.get("dataset"), str(r.get("dataset_params")), r.get("user"))


def per_user_mean(rows: Iterable[Mapping[str, Any]], value: Callable[[Mapping[str, Any]], float | None],
                  user: Callable[[Mapping[str, Any]], Hashable] | None = None) -> dict[Hashable, float]:
    """Average ``value(row)`` over the rows of each user (its seeds); rows whose value is None/NaN are left out.

    ``user`` defaults to (dataset, dataset_params, user): the same id in two datasets is two users.
    """
    key = user or _default_user
    groups: dict[Hashable, list[float]] = defaultdict(list)
    for r in rows:
        v = value(r)
        if v is not None and math.isfinite(float(v)):
            groups[key(r)].append(float(v))
    return {k: statistics.fmean(v) for k, v in groups.items()}


def per_unit_mean(rows: Iterable[Mapping[str, Any]], value: Callable[[Mapping[str, Any]], float | None],
                  user: Callable[[Mapping[str, Any]], Hashable] | None = None) -> dict[Unit, float]:
    """Average ``value(row)`` over the rows of each user × seed (:class:`Unit`; targets or repeats pooled); rows
    whose value is None/NaN are left out. Judged by :func:`harbench.judge`, seeds are then a level."""
    key = user or _default_user
    groups: dict[Unit, list[float]] = defaultdict(list)
    for r in rows:
        v = value(r)
        if v is not None and math.isfinite(float(v)):
            groups[Unit(key(r), r.get("seed"))].append(float(v))
    return {k: statistics.fmean(v) for k, v in groups.items()}


def _default_person(r: Mapping[str, Any]) -> Hashable:
    return (r.get("dataset"), r.get("user"))


def per_person(values: Mapping[Hashable, float], rows: Iterable[Mapping[str, Any]],
               user: Callable[[Mapping[str, Any]], Hashable] | None = None,
               person: Callable[[Mapping[str, Any]], Hashable] | None = None) -> dict[Hashable, float]:
    """``values`` keyed by ``user(row)`` (as :func:`per_unit_mean` keyed them; :class:`Unit` or bare) re-keyed by
    ``person(row)`` (default: dataset and user id), each person's configurations averaged within a seed.

    Apply it after pairing (a difference pairs a configuration with itself) and before judging a claim that
    pools configurations. A value whose key no row produces is an error (the rows are not the values' rows)."""
    key, who = user or _default_user, person or _default_person
    mapping = {key(r): who(r) for r in rows}
    groups: dict[Hashable, list[float]] = defaultdict(list)
    for u, v in values.items():
        inner = u.user if isinstance(u, Unit) else u
        if inner not in mapping:
            raise KeyError(f"per_person: no row gives the unit {inner!r}")
        groups[Unit(mapping[inner], u.seed) if isinstance(u, Unit) else mapping[inner]].append(v)
    return {k: statistics.fmean(v) for k, v in groups.items()}


def paired(a: Mapping[Hashable, float], b: Mapping[Hashable, float]) -> dict[Hashable, float]:
    """Per-unit ``a - b`` over the units (users, or users × seeds) present in both."""
    return {u: a[u] - b[u] for u in a.keys() & b.keys()}


def ratio(a: Mapping[Hashable, float], b: Mapping[Hashable, float]) -> dict[Hashable, float]:
    """Per-unit ``a / b`` over the units present in both with a non-zero ``b``."""
    return {u: a[u] / b[u] for u in a.keys() & b.keys() if b[u]}
