"""The two-level design's moments (seeds, users within seeds): the one computation every interval, robust method
and simulation starts from, in a module of its own so that the t-interval and the robust methods both use it
without importing each other."""

from __future__ import annotations

import numpy as np


def grid_moments(y: np.ndarray, two_seed_rule: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For grids ``y`` of shape (..., S, n) (seeds × users): the mean, the seed part and the user part of the
    squared standard error, and the degrees of freedom (NaN where the design has too few units).

    One function for one claim and for 10^5 simulated data sets: the simulation gates this code, not a copy."""
    y = np.asarray(y, dtype=float)
    s, n = y.shape[-2], y.shape[-1]
    mean = y.mean(axis=(-2, -1))
    shape = mean.shape
    if s >= 2 and n >= 2:
        vs = y.mean(axis=-1).var(axis=-1, ddof=1) / s
        vu = y.mean(axis=-2).var(axis=-1, ddof=1) / n
        v = vs + vu
        with np.errstate(divide="ignore", invalid="ignore"):
            if s == 2 and two_seed_rule:  # one df for the seed part: Banerjee's sum of the parts' own t half-widths, as a df
                from scipy import special

                q = 0.975
                c = np.sqrt(special.stdtrit(1, q) ** 2 * vs + special.stdtrit(n - 1, q) ** 2 * vu) / np.sqrt(v)
                df = np.asarray(special.stdtridf(q, np.where(v > 0, c, 2.0)), dtype=float)
            else:
                df = v * v / (vs * vs / (s - 1) + vu * vu / (n - 1))
        df = np.where(v > 0, df, np.nan)
    elif n >= 2:  # one seed: users only
        vs = np.zeros(shape)
        vu = y[..., 0, :].var(axis=-1, ddof=1) / n
        df = np.full(shape, n - 1.0)
    elif s >= 2:  # one user: seeds only
        vs = y[..., :, 0].var(axis=-1, ddof=1) / s
        vu = np.zeros(shape)
        df = np.full(shape, s - 1.0)
    else:
        vs = vu = df = np.full(shape, np.nan)
    return mean, vs, vu, df
