"""Queries over a run's rows: ``--where`` filters and grouping keys, shared by every view (report, compare,
plots, HTML, export) so that they all select and group the same way."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from ..stats.describe import number

GroupKey = tuple
_OPERATORS = ("!=", ">=", "<=", "=", ">", "<")


# ------------------------------------------------------------------------------------------- filtering


@dataclass(frozen=True)
class Condition:
    """One ``--where`` clause: ``column OP value[,value...]`` with OP one of = != < <= > >=."""

    column: str
    op: str
    values: tuple[str, ...]

    def matches(self, row: dict[str, Any]) -> bool:
        actual = row.get(self.column)
        if self.op in ("=", "!="):
            hit = any(_equal(actual, v) for v in self.values)
            return hit if self.op == "=" else not hit
        value = number(actual)
        bound = number(self.values[0])
        if value is None or bound is None:
            return False
        return {"<": value < bound, "<=": value <= bound, ">": value > bound, ">=": value >= bound}[self.op]


def parse_where(clauses: Iterable[str]) -> list[Condition]:
    """Parse ``dataset=synthetic-drift`` style clauses; a bad clause is a ValueError naming it."""
    out = []
    for clause in clauses:
        hits = [(clause.find(op), -len(op), op) for op in _OPERATORS if op in clause]
        if not hits:
            raise ValueError(f"--where {clause!r}: expected COLUMN=VALUE (or !=, <, <=, >, >=)")
        _, _, op = min(hits)  # the leftmost operator, the longer one when two start there ("<=" over "<")
        column, value = (part.strip() for part in clause.split(op, 1))
        if not column or not value:
            raise ValueError(f"--where {clause!r}: expected COLUMN=VALUE (or !=, <, <=, >, >=)")
        if op in ("=", "!="):
            out.append(Condition(column, op, tuple(v.strip() for v in value.split(","))))
        elif number(value) is None:
            raise ValueError(f"--where {clause!r}: {op} needs a number, got {value!r}")
        else:
            out.append(Condition(column, op, (value,)))
    return out


def filter_rows(rows: Sequence[dict[str, Any]], conditions: Sequence[Condition]) -> list[dict[str, Any]]:
    """Keep the rows matching every condition; a condition on a column no row has is an error, not an empty table."""
    if not conditions:
        return list(rows)
    known = set().union(*(r.keys() for r in rows)) if rows else set()
    for c in conditions:
        if rows and c.column not in known:
            raise ValueError(f"--where: unknown column {c.column!r}; known: {', '.join(sorted(known))}")
    return [r for r in rows if all(c.matches(r) for c in conditions)]


def _equal(actual: Any, wanted: str) -> bool:
    if actual is None:
        return wanted.lower() in ("none", "null", "")
    if isinstance(actual, (int, float)) and not isinstance(actual, bool):
        w = number(wanted)
        return w is not None and math.isclose(float(actual), w, rel_tol=1e-12, abs_tol=1e-12)
    return str(actual) == wanted


# ---------------------------------------------------------------------------------------------- grouping


def group_key_columns(by: Sequence[str] | None) -> list[str]:
    """The columns a table is grouped by; ``method`` always brings ``variant`` (two variants are two methods)."""
    columns = list(by) if by else ["method", "variant", "hardware"]
    if "method" in columns and "variant" not in columns:
        columns.insert(columns.index("method") + 1, "variant")
    return columns


def group_rows(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> dict[GroupKey, list[dict[str, Any]]]:
    groups: dict[GroupKey, list[dict[str, Any]]] = {}
    keys = Keys()
    for r in rows:
        key = tuple([v if v.__class__ is str else keys(v) for v in map(r.get, columns)])
        if key in groups:
            groups[key].append(r)
        else:
            groups[key] = [r]
    return groups


def key_value(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return "" if value is None else value


class Keys:
    """:func:`key_value` computed once per dict/list object (rows from the store share equal ones): one ``Keys``
    per pass over rows that are not changed during it."""

    def __init__(self) -> None:
        self._memo: dict[int, tuple[Any, Any]] = {}

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, (dict, list)):
            return "" if value is None else value
        hit = self._memo.get(id(value))
        if hit is None or hit[0] is not value:
            hit = self._memo[id(value)] = (value, key_value(value))
        return hit[1]
