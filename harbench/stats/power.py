"""How many users would decide a claim: power of the directional t test at the observed spread.

An inconclusive verdict is an answer only with its price: "with 5 users the interval straddles 0; at this spread,
14 users would decide an effect of the paper's size 80 % of the time". The power is the noncentral t's
(``scipy.stats.nct``: exact for normal data under the module's variance model), not a normal approximation.

Variance model (the interval's, :mod:`harbench.stats.intervals`): ``se^2(n') = var_seed + var_user * n / n'``.
The seed part does not shrink with more users: when it alone keeps the power below the target, no number of users
is enough, and the answer says that more seeds are needed instead.
"""

from __future__ import annotations

import math

import numpy as np

MAX_USERS = 100_000


def power_at(users: np.ndarray, effect: np.ndarray, var_seed: np.ndarray, var_user: np.ndarray,
             users_now: np.ndarray, seeds: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The probability that a two-sided level-``alpha`` t test on ``users`` users (and the same seeds) rejects
    in the direction of a true effect ``effect``, at the variance components observed with ``users_now`` users."""
    from scipy import special, stats

    users = np.asarray(users, dtype=float)
    vu = np.asarray(var_user) * np.asarray(users_now) / users
    vs = np.asarray(var_seed, dtype=float)
    v = vs + vu
    s = np.asarray(seeds, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where((s >= 2) & (vs > 0), v * v / (vs * vs / np.maximum(s - 1, 1) + vu * vu / (users - 1)),
                      users - 1)
        nc = np.abs(np.asarray(effect)) / np.sqrt(v)
    crit = special.stdtrit(df, 1 - np.asarray(alpha) / 2)
    return np.asarray(stats.nct.sf(crit, df, nc))


def users_for_power(effect: np.ndarray, var_seed: np.ndarray, var_user: np.ndarray, users_now: np.ndarray,
                    seeds: np.ndarray, alpha: np.ndarray, power: float = 0.8) -> np.ndarray:
    """The smallest number of users (>= 2) at which :func:`power_at` reaches ``power``, per claim (vectorised
    bisection over all claims at once); NaN where no number up to :data:`MAX_USERS` does (the seed part of the
    variance, or a zero effect, stops it)."""
    effect = np.atleast_1d(np.asarray(effect, dtype=float))
    args = [np.broadcast_to(np.asarray(a, dtype=float), effect.shape)
            for a in (var_seed, var_user, users_now, seeds, alpha)]
    ok = np.isfinite(effect) & (effect != 0) & np.all([np.isfinite(a) for a in args], axis=0)
    ok &= power_at(np.full(effect.shape, float(MAX_USERS)), effect, *args) >= power
    lo = np.full(effect.shape, 1.0)  # power below target at lo (or lo is below the smallest design)
    hi = np.full(effect.shape, float(MAX_USERS))
    while True:
        todo = ok & (hi - lo > 1)
        if not todo.any():
            break
        mid = np.floor((lo + hi) / 2)
        enough = power_at(np.where(todo, mid, 2.0), effect, *args) >= power
        hi = np.where(todo & enough, mid, hi)
        lo = np.where(todo & ~enough, mid, lo)
    return np.where(ok, np.maximum(hi, 2.0), np.nan)


def power_sentence(needed: float, users_now: int, seeds: int, alpha: float, power: float = 0.8) -> str:
    if math.isnan(needed):
        return (f"no number of users reaches {100 * power:.0f} % power at level {alpha:.3g}: the seed-to-seed "
                f"spread dominates; more seeds are needed" if seeds >= 2 else
                f"no number of users up to {MAX_USERS:,} reaches {100 * power:.0f} % power at level {alpha:.3g}")
    return (f"~{int(needed)} users (now {users_now}, {seeds} seed{'s' * (seeds != 1)}) would decide an effect of "
            f"the claimed size with {100 * power:.0f} % power at level {alpha:.3g} (noncentral t, observed spread)")
