"""Choosing the population and the targets by subject attribute (``age<40``, ``gender=F``, ``dominant_hand!=L``).

A condition is ``<attribute> <op> <value>`` with op one of ``< <= > >= = == !=``; a list of conditions must all
hold. Numbers compare as numbers, anything else as text.
"""

from __future__ import annotations

import operator
import re
from typing import Any, Mapping, Sequence

_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>|=)\s*([^\s<>=!](?:.*\S)?)\s*$")
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "=": operator.eq,
        "==": operator.eq, "!=": operator.ne}


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parse_conditions(conditions: Sequence[str], attributes: Sequence[str], where: str) -> list[tuple]:
    """Raise ValueError (one line naming ``where``) for a malformed condition or an unknown attribute."""
    parsed = []
    for text in conditions:
        m = _CONDITION.match(text)
        if not m:
            raise ValueError(f"{where}: {text!r} is not a condition like 'age<40' or 'gender=F'")
        name, op, value = m.groups()
        if name not in attributes:
            raise ValueError(f"{where}: unknown attribute {name!r} in {text!r}; known: {', '.join(attributes)}")
        parsed.append((name, op, value))
    return parsed


def matches(attrs: Mapping[str, Any], conditions: list[tuple]) -> bool:
    for name, op, value in conditions:
        have, want = _number(attrs.get(name)), _number(value)
        if have is not None and want is not None:
            ok = _OPS[op](have, want)
        elif op in ("=", "==", "!="):
            ok = _OPS[op](str(attrs.get(name)), value)
        else:
            ok = False
        if not ok:
            return False
    return True


def order_users(users: Sequence[str], attrs: Mapping[str, Mapping[str, Any]], targets: list[tuple],
                population: list[tuple]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(users in describe() order: target candidates first; target candidates; population candidates).

    A suite's ``target_users: N`` takes the first N users, so candidates come first; users matching neither
    filter are left out altogether.
    """
    cand = tuple(u for u in users if matches(attrs.get(u, {}), targets)) if targets else tuple(users)
    pop = tuple(u for u in users if matches(attrs.get(u, {}), population)) if population else tuple(users)
    rest = tuple(u for u in pop if u not in cand)
    return cand + rest, cand, pop
