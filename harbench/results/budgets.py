"""Budgets of the decision view (``--budget``, a suite's ``budgets:``): ``metric op value`` in the metric's stored
unit, written in the one unit convention of :mod:`harbench.units`."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

from ..units import parse_amount

_BUDGET = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*(.+?)\s*$")


@dataclass(frozen=True)
class Budget:
    """``metric op value`` in the metric's stored unit (a fraction metric's budget is written in points or %)."""

    metric: str
    op: str
    value: float
    text: str

    def allows(self, value: float | None) -> bool:
        if value is None or math.isnan(value):
            return False
        return {"<=": value <= self.value, "<": value < self.value, ">=": value >= self.value,
                ">": value > self.value}[self.op]


def parse_budget(text: str, fractions: Sequence[str] = (), known: Sequence[str] | None = None) -> Budget:
    """``latency_ms_p50<=5``, ``adapt_j<1``, ``acc_seen>=90pt`` (an accuracy-like bound takes ``pt``, ``%`` or
    ``frac``: :mod:`harbench.units`). A bad budget is a ValueError naming it."""
    m = _BUDGET.match(text)
    if not m:
        raise ValueError(f"budget {text!r}: expected METRIC<=VALUE (or <, >=, >), e.g. latency_ms_p50<=5")
    metric, op, raw = m.groups()
    if known is not None and metric not in known:
        raise ValueError(f"budget {text!r}: unknown metric {metric!r}; known: {', '.join(known)}")
    amount = parse_amount(raw, metric, fraction=metric in fractions, option="budget", clause=text.strip())
    return Budget(metric, op, -amount.value if amount.sign == "-" else amount.value, text.strip())
