"""Pareto fronts: the options no other option beats on both axes."""

from __future__ import annotations

import math
from typing import Sequence


def pareto_front(points: Sequence[tuple[float, float]], x_tolerance: float = 0.0) -> list[int]:
    """Indices of the points not dominated under (lower x, higher y), sorted by x: the trade-off curve.

    ``x_tolerance``: costs within this relative difference of each other are the same cost (a figure must not draw
    a trade-off across 0.002 ms): of such neighbours on the front only the more accurate stays."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best_y = -math.inf
    for i in order:
        x, y = points[i]
        if math.isnan(x) or math.isnan(y):
            continue
        if y > best_y:
            if front and x_tolerance > 0 and x - points[front[-1]][0] <= x_tolerance * abs(points[front[-1]][0]):
                front.pop()  # the cheaper neighbour is no cheaper in practice, and less accurate
            front.append(i)
            best_y = y
    return front
