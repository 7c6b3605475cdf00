"""Table cells: the figures of one cell of any view (text, JSON, CSV, LaTeX, HTML, figures) — the mean over users,
the standard deviation of the per-user means and the interval over users and seeds of :mod:`.intervals` — and of
a whole column at once (one bootstrap per design, not one per cell)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .describe import Estimate
from .intervals import MIN_USERS, grid_interval_many


def cell_estimate(values: np.ndarray, user_codes: np.ndarray, seed_codes: np.ndarray, level: float = 0.95,
                  bounds: tuple[float, float] | None = None) -> Estimate:
    """The figures of one table cell (text, JSON, CSV, LaTeX, HTML, figures: every view calls this): the mean
    over users, the standard deviation of the per-user means, and :func:`interval`'s interval over users and
    seeds. ``values`` are the cell's finite job values, ``user_codes``/``seed_codes`` each job's user and seed;
    jobs of one user and seed (targets pooled, repeated configurations) are averaged first."""
    return cell_estimates([(values, user_codes, seed_codes)], level, bounds)[0]


def cell_estimates(cells: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], level: float = 0.95,
                   bounds: tuple[float, float] | None = None) -> list[Estimate]:
    """:func:`cell_estimate` of many cells (a table's column): their grids judged in one
    :func:`grid_interval_many` call, so cells of one design share one bootstrap (a column of 10^5 jobs in one
    stack of matrix products, not one small product per cell)."""
    prepared = [_cell_grid(*cell) for cell in cells]
    todo = [i for i, p in enumerate(prepared) if p is not None]
    judged = grid_interval_many([prepared[i][0] for i in todo], level, ["linear"] * len(todo),  # type: ignore[index]
                                [bounds] * len(todo), [prepared[i][1] for i in todo],  # type: ignore[index]
                                [[] for _ in todo])
    out = [Estimate(0, math.nan, math.nan, math.nan, math.nan, "no values")] * len(cells)
    for i, (iv, _) in zip(todo, judged):
        grid = prepared[i][0]  # type: ignore[index]
        if iv.users == 0:
            continue
        user_means = grid.mean(axis=0)
        sd = float(np.std(user_means, ddof=1)) if len(user_means) > 1 else 0.0
        mean = math.fsum(grid.ravel().tolist()) / grid.size  # exactly rounded: the same figure on every CPU
        out[i] = Estimate(iv.users, mean, sd, iv.low, iv.high, iv.method, iv.seeds if iv.seeds > 1 else 0)
    return out


def _cell_grid(values: np.ndarray, user_codes: np.ndarray, seed_codes: np.ndarray
               ) -> tuple[np.ndarray, int] | None:
    """A cell's (seeds × users) grid of unit means and the users dropped from it; None without values."""
    from .describe import means_by

    if len(values) == 0:
        return None
    users, user_index = np.unique(user_codes, return_inverse=True)
    seeds, seed_index = np.unique(seed_codes, return_inverse=True)
    user_index, seed_index = user_index.reshape(-1), seed_index.reshape(-1)
    cell = seed_index * len(users) + user_index
    present = np.unique(cell)
    unit_means = means_by(values, cell)
    flat = np.full(len(seeds) * len(users), np.nan)
    flat[present] = unit_means
    grid: np.ndarray = flat.reshape(len(seeds), len(users))
    complete = ~np.isnan(grid).any(axis=0)
    if complete.sum() < MIN_USERS <= len(users):  # ragged: seeds averaged within users, one level
        return np.nanmean(grid, axis=0)[None, :], 0
    return grid[:, complete], int((~complete).sum())
