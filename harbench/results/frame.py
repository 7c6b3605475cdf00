"""A run's rows as columns: numpy arrays per metric and group codes per grouping, built once per view.

The tables that reduce every metric of every group (the full table, ``--format json|csv``) would otherwise walk
all rows once per group and metric in Python; here each column is read from the rows once, and each group's
reduction is a slice of a numpy array. The statistics are :mod:`harbench.stats`'s, computed from the same values.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..stats.cells import cell_estimates
from ..stats.describe import Estimate, means_by
from .query import GroupKey, Keys

__all__ = ["Frame", "Grouping", "means_by"]  # means_by lives in harbench.stats


def _number(value: Any) -> float:
    """``analysis.finite`` of one value as a float, NaN where it gives nothing (None, bool, inf) and for text: a
    group with a text value shows its labels, not a statistic, so a text that reads as a number counts for none."""
    if type(value) is float:
        return value if math.isfinite(value) else math.nan
    if value is None or isinstance(value, (bool, str)):
        return math.nan
    try:
        f = float(value)
    except (TypeError, ValueError):
        return math.nan
    return f if math.isfinite(f) else math.nan


_HASHABLE_KINDS = frozenset({str, int, float, bool, type(None)})  # key values that need no Keys text
_FLOAT_KINDS = frozenset({float, type(None)})


class Grouping:
    """Rows grouped by a key: the keys in the order rows first show them (as ``query.group_rows``), each row's
    group code, and each group's row indices."""

    def __init__(self, keys: list[GroupKey], codes: np.ndarray):
        self.keys = keys
        self.codes = codes
        order = np.argsort(codes, kind="stable")
        bounds = np.asarray(np.searchsorted(codes[order], np.arange(len(keys) + 1)))
        self.members = [order[int(bounds[g]):int(bounds[g + 1])] for g in range(len(keys))]


class Frame:
    def __init__(self, rows: Sequence[dict[str, Any]]):
        self.rows = rows if isinstance(rows, list) else list(rows)
        self.ok = np.fromiter((r.get("status") == "ok" for r in self.rows), dtype=bool, count=len(self.rows))
        self.keys = Keys()
        self._groupings: dict[Any, Grouping] = {}
        self._values: dict[str, np.ndarray] = {}
        self._texts: dict[str, dict[int, str]] = {}

    def grouping(self, columns: Sequence[str]) -> Grouping:
        """Groups by the values of ``columns`` (``query.group_rows``): the keys in the order rows first show them.

        Built from per-column codes (one list per column, a C-level lookup per row) combined in numpy, rather than a
        key tuple per row: 0.3 µs a row instead of ~3 µs, and the decision view groups 10^5 rows three ways."""
        name = tuple(columns)
        if name not in self._groupings:
            if not name:
                self._groupings[name] = Grouping([()], np.zeros(len(self.rows), dtype=np.int64))
            else:
                distinct, codes = self._column_codes(name[0])
                keys: list[tuple] = [(d,) for d in distinct]
                for column in name[1:]:  # one column at a time, re-coded densely: no product of counts overflows
                    distinct, more = self._column_codes(column)
                    unique, first, inverse = np.unique(codes * len(distinct) + more, return_index=True,
                                                       return_inverse=True)
                    order = np.argsort(first, kind="stable")  # first appearance
                    rank = np.empty(len(unique), dtype=np.int64)
                    rank[order] = np.arange(len(unique))
                    keys = [keys[u // len(distinct)] + (distinct[u % len(distinct)],) for u in unique[order].tolist()]
                    codes = rank[inverse.reshape(-1)]
                self._groupings[name] = Grouping(keys, codes)
        return self._groupings[name]

    def _column_codes(self, column: str) -> tuple[list[Any], np.ndarray]:
        """The distinct key values of ``column`` (``Keys``: dicts as their JSON text, None as "") in first-appearance
        order, and each row's index into them."""
        k = self.keys
        values = [r.get(column) for r in self.rows]
        if not _HASHABLE_KINDS.issuperset(map(type, values)):
            values = [k(v) for v in values]
        elif None in values:
            values = ["" if v is None else v for v in values]
        distinct = list(dict.fromkeys(values))
        lookup = {v: i for i, v in enumerate(distinct)}
        return distinct, np.fromiter(map(lookup.__getitem__, values), dtype=np.int64, count=len(values))

    def groups(self, columns: Sequence[str]) -> Iterator[tuple[GroupKey, list[dict[str, Any]], list[dict[str, Any]],
                                                                np.ndarray]]:
        """Per group of ``columns``: its key, its rows, its successful rows and their positions (for the arrays)."""
        g = self.grouping(columns)
        for key, members in zip(g.keys, g.members):
            items = [self.rows[i] for i in members]
            yield key, items, [r for r in items if r["status"] == "ok"], members[self.ok[members]]

    def by_key(self, name: str, key: Callable[[dict[str, Any]], Any]) -> Grouping:
        """Groups by ``key(row)`` (a user, a method configuration), cached under ``name``."""
        if name not in self._groupings:
            self._groupings[name] = self._group(key)
        return self._groupings[name]

    def _group(self, key: Callable[[dict[str, Any]], Any]) -> Grouping:
        index: dict[Any, int] = {}
        codes = np.fromiter((index.setdefault(key(r), len(index)) for r in self.rows), dtype=np.int64,
                            count=len(self.rows))
        return Grouping(list(index), codes)

    def values(self, metric: str) -> np.ndarray:
        """The metric's finite numbers, NaN elsewhere (missing, a label, inf)."""
        if metric not in self._values:
            column = [r.get(metric) for r in self.rows]
            if _FLOAT_KINDS.issuperset(map(type, column)):  # floats and None (the store's rows): numpy converts
                values = np.array(column, dtype=float)
                values[~np.isfinite(values)] = math.nan
            else:
                values = np.fromiter(map(_number, column), dtype=float, count=len(column))
            self._values[metric] = values
            self._texts[metric] = {i: str(column[i]) for i in np.flatnonzero(np.isnan(values)).tolist()
                                   if isinstance(column[i], str)}  # a label is never a number
        return self._values[metric]

    def texts(self, metric: str) -> dict[int, str]:
        """Row index -> text of the rows where the metric is a label (``energy_method``)."""
        self.values(metric)
        return self._texts[metric]

    def user_codes(self) -> np.ndarray:
        """The user of each row (``analysis.user_key``: dataset, dataset parameters, user id)."""
        k = self.keys
        return self.by_key("user", lambda r: (r.get("dataset"), k(r.get("dataset_params")), r.get("user"))).codes

    def configuration_codes(self) -> np.ndarray:
        """The method configuration × user × seed of each row (``analysis.configuration_key``)."""
        k = self.keys
        return self.by_key("configuration", lambda r: (r.get("dataset"), k(r.get("dataset_params")), r.get("user"),
                                                       r.get("method"), r.get("variant"), k(r.get("method_params")),
                                                       r.get("seed"))).codes

    def seed_codes(self) -> np.ndarray:
        """The seed of each row."""
        return self.by_key("seed", lambda r: r.get("seed")).codes

    def cell(self, metric: str, index: np.ndarray, bounds: tuple[float, float] | None = None) -> Estimate:
        """The figures of one table cell: ``metric`` over the rows at ``index`` (finite values only), reduced by
        :func:`harbench.stats.cells.cell_estimate` (users and seeds as levels) — the function every view's
        cells come from, so one cell shows one interval in text, JSON, CSV, LaTeX, HTML and figures."""
        return self.cells(metric, [index], bounds)[0]

    def cells(self, metric: str, indices: Sequence[np.ndarray], bounds: tuple[float, float] | None = None
              ) -> list[Estimate]:
        """:meth:`cell` of many groups at once (a table's column): the same figures, one bootstrap per design."""
        values, users, seeds = self.values(metric), self.user_codes(), self.seed_codes()
        parts = []
        for index in indices:
            v = values[index]
            finite = ~np.isnan(v)
            parts.append((v[finite], users[index][finite], seeds[index][finite]))
        return cell_estimates(parts, bounds=bounds)

