"""Pareto fronts: the options no other option beats on both axes."""

from __future__ import annotations

import math
from typing import Sequence


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
