"""The skew-robust parts of the interval: a studentized bootstrap over seeds and users, and, for a bounded
quantity near its bound (an accuracy near 100 %), a generalized pivotal interval for the mean distance to the bound.

Why. The t-interval of :mod:`.intervals` holds its coverage on normal data, but on skewed data its error falls on
one side: for accuracies near 100 % with a tail of worse users, or for right-skewed differences, the interval lies
wholly on one side of the true mean up to 10 % of the time at 5–12 users (docs/statistics.md). The interval a
verdict uses is therefore the hull of the t-interval and of these parts, and a direction verdict needs every part to
agree (an intersection–union test: its false-"reproduced" rate is at most the smallest of the parts').

* :func:`bootstrap_t`: the studentized ("bootstrap-t") interval, resampling seeds and users independently (Owen's
  pigeonhole bootstrap for a crossed design) and studentizing every resample with the same standard error formula
  as the t-interval (:func:`.moments.grid_moments`). It corrects for skewness from the sample itself (Hall 1992)
  but at 5–12 users it still errs on the skewed side about twice as often as nominal, so it is run at twice the
  confidence of the other side's error: each one-sided error ``(1 - level) / 4`` (the level the simulation showed
  is needed; docs/statistics.md gives the widths this costs on normal data). With fewer than
  :data:`MIN_BOOT_USERS` users a resample too often repeats one user (an infinite t), so it is not run there.
* :func:`bounded_gpq`: for a quantity with declared bounds whose mean lies within :data:`NEAR` (10 %) of the range
  from a bound (an accuracy of 90 % or more), the distance of each unit to that bound
  (the error rate of an accuracy) is modelled as lognormal, and the mean distance ``exp(mu + sigma^2/2)`` gets the
  generalized pivotal interval of Krishnamoorthy & Mathew (2003): ``mu`` from the t pivot on the design's standard
  error, ``sigma^2`` from the chi-square pivot of the variance of all units. A bounded quantity near its bound is
  skewed away from it, and its tail of bad users is rarely in a sample of 5; the sample cannot show it, the
  model supplies it. Units exactly at the bound get half the smallest positive distance. Farther from the bound
  the skew is the bootstrap's to correct, and a lognormal distance is the wrong model (one user at 99 % among
  users at 75 % would make the interval reach 0).

Both draw from fixed random numbers that depend only on the design (seeds × users), never on the other claims of a
batch: one claim gets one interval however it is judged.
"""

from __future__ import annotations

import functools
import math

import numpy as np

MIN_BOOT_USERS = 5
NEAR = 0.1  # the pivot applies to a mean within this share of the range from a bound (an accuracy >= 90 %)
RESAMPLES = 999
PIVOT_DRAWS = 2000
_SEED = 20261206
_CHUNK = 400


def t_sf_inverse(df: np.ndarray, p: float) -> np.ndarray:
    """The Student-t quantile with upper tail ``p``."""
    from scipy import special

    return np.asarray(special.stdtrit(df, 1 - p))


@functools.lru_cache(maxsize=32)
def _weights(seeds: int, users: int) -> tuple[np.ndarray, np.ndarray]:
    """The resampling counts (B × seeds and B × users) of the design: fixed, so results never depend on a batch.

    Kept per design (read-only): a report's cells mostly share one design, and drawing 999 multinomials over a
    thousand users is most of a cell's time (10^5 jobs: 56 of 92 s before this cache)."""
    rng = np.random.default_rng((_SEED, seeds, users))
    wu = rng.multinomial(users, np.full(users, 1 / users), RESAMPLES).astype(float)
    ws = (rng.multinomial(seeds, np.full(seeds, 1 / seeds), RESAMPLES).astype(float) if seeds >= 2
          else np.ones((RESAMPLES, 1)))
    ws.flags.writeable = wu.flags.writeable = False
    return ws, wu


def bootstrap_t(z: np.ndarray, mean: np.ndarray, se: np.ndarray, df: np.ndarray, level: float,
                threshold: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Studentized pigeonhole bootstrap of grids ``z`` (R, S, n) around ``mean`` with standard error ``se`` (and the
    t part's ``df``): (low, high) at ``level`` and the one-sided p-values of "mean > threshold" and "mean <
    threshold" (NaN without a threshold). Infinite t values (a resample without spread) are kept: they widen,
    never narrow.

    The p-values are not counts of resamples (999 resamples could not go below 0.001, and Holm over a family asks
    for less): the observed t is rescaled by (Student-t quantile / bootstrap quantile) at the interval's level and
    referred to Student's t, so p equals the interval's one-sided error exactly where the interval's bound meets
    the threshold, and the t tail carries it beyond."""
    from .significance import t_sf

    r, s, n = z.shape
    df = np.where(np.isfinite(df), df, 1.0)
    ws, wu = _weights(s, n)
    pairs = np.triu_indices(s)  # seed pairs (s <= s'), off-diagonal ones counted twice
    pair_weights = (ws[:, pairs[0]] * ws[:, pairs[1]] * np.where(pairs[0] == pairs[1], 1.0, 2.0)).T
    t_ref = np.asarray(t_sf_inverse(df, (1 - level) / 2))
    ranks = [max(0, math.ceil((1 - level) / 2 * RESAMPLES) - 1), math.ceil((1 + level) / 2 * RESAMPLES) - 1]
    low, high = np.empty(r), np.empty(r)
    p_gt, p_lt = np.full(r, np.nan), np.full(r, np.nan)
    for a in range(0, r, _CHUNK):
        zz = z[a:a + _CHUNK]
        if s == 1:  # users only: two matrix products
            x = zz[:, 0, :]
            grand = x @ wu.T / n
            v = ((x * x) @ wu.T / n - grand ** 2) / (n - 1)
        else:  # matrix products only: the users' squared means expand over pairs of seeds
            k = len(zz)  # one matrix product per chunk, not one small product per grid
            seed_means = (zz.reshape(k * s, n) @ wu.T).reshape(k, s, -1) / n  # (r, S, B): each seed's mean
            grand = (seed_means * ws.T[None]).sum(axis=1) / s
            products = (zz[:, pairs[0], :] * zz[:, pairs[1], :]).reshape(k * len(pairs[0]), n)
            cross = (products @ wu.T).reshape(k, len(pairs[0]), -1)  # (r, pairs, B): sum_u w_u z_s z_s'
            user_sq = (cross * pair_weights[None]).sum(axis=1) / (s * s * n)  # mean over users of (user mean)^2
            v = (user_sq - grand ** 2) / (n - 1)
            v = v + ((seed_means ** 2 * ws.T[None]).sum(axis=1) / s - grand ** 2) / (s - 1)
        diff = grand - mean[a:a + _CHUNK, None]
        flat = v <= 1e-9 * (se[a:a + _CHUNK, None] ** 2)  # a resample without spread (one user, or tied values)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(flat, 0.0, diff / np.sqrt(np.where(flat, 1.0, v)))
        part = np.partition(t, ranks, axis=1)  # the order statistics of the two quantiles (inverted CDF)
        q = part[:, ranks].T
        m, e = mean[a:a + _CHUNK], se[a:a + _CHUNK]
        with np.errstate(invalid="ignore"):
            low[a:a + _CHUNK] = np.where(np.isfinite(q[1]), m - q[1] * e, -np.inf)
            high[a:a + _CHUNK] = np.where(np.isfinite(q[0]), m - q[0] * e, np.inf)
        if threshold is not None:  # the t tail, its statistic rescaled so that p = the interval's error at its bound
            with np.errstate(divide="ignore", invalid="ignore"):
                t_obs = (m - threshold[a:a + _CHUNK]) / e
                p_gt[a:a + _CHUNK] = t_sf(t_obs * t_ref[a:a + _CHUNK] / np.maximum(q[1], 1e-12),
                                          df[a:a + _CHUNK])
                p_lt[a:a + _CHUNK] = t_sf(-t_obs * t_ref[a:a + _CHUNK] / np.maximum(-q[0], 1e-12),
                                          df[a:a + _CHUNK])
    return low, high, p_gt, p_lt


_TABLE: dict[str, np.ndarray] = {}


def _pivot_draws(df: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Student-t quantiles at fixed uniforms for each data set's degrees of freedom (R × draws), interpolated in
    1/df on a table of 401 rows (exact at integer df up to 20: the one-seed designs), and the uniforms of the
    chi-square pivot (independent: another permutation)."""
    from scipy import special

    if not _TABLE:
        rng = np.random.default_rng((_SEED, 1))
        u = (np.arange(PIVOT_DRAWS) + 0.5) / PIVOT_DRAWS
        _TABLE["u_t"], _TABLE["u_c"] = rng.permutation(u), rng.permutation(u)
        inv = np.unique(np.concatenate([np.linspace(0.0, 1.0, 381), 1.0 / np.arange(1, 21)]))
        _TABLE["inv"] = inv
        with np.errstate(divide="ignore"):
            dfs = np.where(inv > 0, 1.0 / np.maximum(inv, 1e-300), np.inf)
        _TABLE["t"] = np.where(np.isfinite(dfs)[:, None], special.stdtrit(np.minimum(dfs, 1e12)[:, None],
                                                                      _TABLE["u_t"][None, :]),
                               special.ndtri(_TABLE["u_t"])[None, :])
    inv, table = _TABLE["inv"], _TABLE["t"]
    x = 1.0 / np.clip(df, 1.0, np.inf)
    j = np.clip(np.searchsorted(inv, x) - 1, 0, len(inv) - 2)
    w = ((x - inv[j]) / (inv[j + 1] - inv[j]))[:, None]
    return (1 - w) * table[j] + w * table[j + 1], _TABLE["u_c"]


def bounded_gpq(y: np.ndarray, bounds: tuple[float, float], level: float, threshold: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The generalized pivotal interval of the mean of grids ``y`` (R, S, n) whose distance to the bound nearer
    the mean is lognormal (module docstring): (low, high) and the one-sided p-values of "mean > threshold" and
    "mean < threshold". NaN (no part) where a data set's mean is farther than :data:`NEAR` of the range from both
    bounds, or no unit is off the bound."""
    from scipy import special

    from .moments import grid_moments

    r, s, n = y.shape
    lo_b, hi_b = bounds
    mean = y.mean(axis=(1, 2))
    upper = (hi_b - mean) <= (mean - lo_b)  # measure the distance to the upper bound
    near = np.minimum(hi_b - mean, mean - lo_b) <= NEAR * (hi_b - lo_b)
    d = np.where(upper[:, None, None], hi_b - y, y - lo_b)
    pos = d > 0
    smallest = np.where(pos, d, np.inf).min(axis=(1, 2))
    ok = np.isfinite(smallest)
    d = np.where(pos, d, np.where(ok, smallest / 2, 1.0)[:, None, None])
    z = np.log(d)
    m, vs, vu, df = grid_moments(z)
    se = np.sqrt(vs + vu)
    s2 = z.reshape(r, -1).var(axis=1, ddof=1)
    nu = s * n - 1
    _, u_c = _pivot_draws(np.ones(1))
    chi = special.chdtri(nu, u_c)  # chi-square(nu) quantiles at fixed uniforms: the variance pivot
    q_lo, q_hi = (1 - level) / 2, (1 + level) / 2
    low, high = np.full(r, np.nan), np.full(r, np.nan)
    p_gt, p_lt = np.full(r, np.nan), np.full(r, np.nan)
    for a in range(0, r, _CHUNK):
        sl = slice(a, a + _CHUNK)
        t, _ = _pivot_draws(np.where(np.isfinite(df[sl]), df[sl], 1.0))
        log_mean = m[sl, None] - t * se[sl, None] + (s2[sl, None] * nu / chi[None, :]) / 2
        dist = np.exp(np.minimum(log_mean, 700.0))
        value = np.where(upper[sl, None], hi_b - dist, lo_b + dist)
        q = np.quantile(value, [q_lo, q_hi], axis=1)
        good = ok[sl] & near[sl] & np.isfinite(df[sl])
        low[sl] = np.where(good, q[0], np.nan)
        high[sl] = np.where(good, q[1], np.nan)
        if threshold is not None:
            thr = threshold[sl, None]
            p_gt[sl] = np.where(good, (1 + (value <= thr).sum(axis=1)) / (PIVOT_DRAWS + 1), np.nan)
            p_lt[sl] = np.where(good, (1 + (value >= thr).sum(axis=1)) / (PIVOT_DRAWS + 1), np.nan)
    return low, high, p_gt, p_lt
