"""The interval of a mean over users and seeds: one rule for every claim and every cell of every view.

Why not a bootstrap over users. A run personalizes ``n`` target users under each of ``S`` seeds, and some of the
randomness is shared by every user of a seed: the generic model, a distillation teacher, a generator are trained
once per seed. A value is then ``y[s, u] = mu + a[s] + b[u] + e[s, u]`` (seed effect, user effect, residual), a
crossed two-level design, and the mean over the grid has variance ``var(a)/S + var(b)/n + var(e)/(nS)``. A bootstrap
over per-user means sees only ``var(b)/n`` (the seed effect is common to all users, so it never varies between
resamples) and, at 3–12 users, under-covers even that (the old rule's table in docs/statistics.md).

The rule (Student-t on the right unit of replication, with Satterthwaite's degrees of freedom):

* ``S >= 2`` seeds and ``n >= 2`` users: ``se^2 = var(seed means)/S + var(user means)/n``. Its expectation is the
  variance above plus ``var(e)/(nS)``, so it is slightly conservative and never needs a negative variance
  component; the degrees of freedom are Satterthwaite's for a sum of two mean squares (``S-1`` and ``n-1``).
  With 3 seeds and a dominant seed effect the interval is as wide as 2 degrees of freedom make it: that is what
  3 seeds can tell. With exactly 2 seeds the seed part has one degree of freedom, where Satterthwaite's
  approximation is too optimistic (measured: 92–93 % at 12 users); there the degrees of freedom are those that
  make the 95 % half-width Banerjee's (1960) ``sqrt(t_1^2 var_seed + t_{n-1}^2 var_user)``, a conservative
  combination of the two parts, each with its own t quantile.
* one seed: ``se^2 = var(users)/n``, ``n-1`` degrees of freedom. The seed's shared training is then fixed, and the
  interval is about that seed's models: the seed-to-seed spread is not in it (the method string says so).
* one or two users with ``S >= 3`` seeds: ``se^2 = var(seed means)/S``, ``S-1`` degrees of freedom, about those
  users.
* ``scale="log"`` (positive, multiplicative quantities: cost ratios, speed-ups): the same on ``log(y)``, the
  interval and the mean transformed back (a geometric mean). Costs and ratios are right-skewed; on the log scale a
  ratio claim is a symmetric statement and the t-interval keeps its coverage.
* ``bounds`` (an accuracy's [0, 1]) clip the interval: the true mean lies inside them, so clipping changes no
  coverage and no verdict.
* skewed data (:mod:`.robust`): the interval is the hull of the t-interval above, a studentized pigeonhole bootstrap
  (5 or more users) and, for a bounded quantity whose mean lies within 10 % of the range from a bound (an accuracy
  of 90 % or more), a lognormal pivot for the distance to that bound. A direction verdict needs every part to
  agree (its p-value is the largest of the parts'). On skewed data the t-interval alone errs on one side (up to
  10 % of intervals wholly above an accuracy's true mean at 5–12 users); the hull meets the gate on every data
  model of the simulation, at a cost in width the docs table states (1.0–1.4× on normal data at 8–12 users).
* the minimum-units rule (:func:`direction_decidable`): with one seed and 3–4 users a linear-scale quantity gets
  no direction verdict (no part can correct a skew from 3 values, and the t alone misses the gate there).

Coverage was measured by :mod:`harbench.stats.simulate` (``python -m harbench.stats.simulate --markdown``; the table
is in docs/statistics.md and ``tests/test_stats_coverage.py`` gates it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Literal, Mapping, NamedTuple

import numpy as np

from .moments import grid_moments

Scale = Literal["linear", "log"]
MIN_USERS = 3  # users needed for an interval over users (with fewer, at least MIN_SEEDS seeds)
MIN_SEEDS = 3


class Unit(NamedTuple):
    """One unit of evaluation: a user (any hashable id) under one seed."""

    user: Hashable
    seed: Hashable


class StatsInputError(ValueError):
    """Bad input to a statistic, with a one-line message saying what was expected."""


@dataclass(frozen=True)
class Interval:
    """The mean of a quantity over users (and seeds) with its two-sided interval and what it was computed from."""

    mean: float
    low: float
    high: float
    se: float  # standard error of the mean, on the scale the interval was computed on
    df: float  # degrees of freedom of the t quantile
    users: int
    seeds: int
    level: float
    method: str
    scale: Scale = "linear"
    spread: float = math.nan  # max - min of the unit values: 0 means every unit has the same value
    dropped: int = 0  # users left out because they lacked a seed that others have
    user_sd: float = math.nan  # standard deviation of the per-user means (the spread a table shows)
    var_seed: float = 0.0  # the seed part of se^2 (does not shrink with more users)
    var_user: float = 0.0  # the user part of se^2 (shrinks as 1/users)

    @property
    def defined(self) -> bool:
        """An interval was computed (a side may be unbounded: the bootstrap part found no limit there)."""
        return not (math.isnan(self.low) or math.isnan(self.high))

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


# ------------------------------------------------------------------------------------------ the vectorised core


def t_quantiles(df: np.ndarray, level: float) -> np.ndarray:
    from scipy import special

    return np.asarray(special.stdtrit(df, 0.5 + level / 2))


def robust_parts(users: int, seeds: int, scale: Scale, bounds: tuple[float, float] | None) -> tuple[bool, bool]:
    """Which skew-robust parts (:mod:`.robust`) join the t-interval: (studentized bootstrap, bounded pivot)."""
    from .robust import MIN_BOOT_USERS

    return users >= MIN_BOOT_USERS, bounds is not None and scale == "linear"


def direction_decidable(users: int, seeds: int, scale: Scale = "linear") -> bool:
    """The minimum-units rule of a direction verdict: with one seed and fewer than :data:`.robust.MIN_BOOT_USERS`
    users, a quantity on the linear scale gets no direction verdict beyond "inconclusive". The bootstrap part
    cannot run on 3 or 4 values, and the t-interval alone misses the one-sided gate on skewed data there
    (docs/statistics.md); on the log scale, and with 2 or more seeds, it meets it."""
    from .robust import MIN_BOOT_USERS

    return users >= MIN_BOOT_USERS or seeds >= 2 or scale == "log"


def grid_bounds(y: np.ndarray, level: float = 0.95, scale: Scale = "linear",
                bounds: tuple[float, float] | None = None, threshold: np.ndarray | None = None,
                two_seed_rule: bool = True) -> dict[str, np.ndarray]:
    """The interval of grids ``y`` (R, S, n) on the original scale: the hull of the t-interval and the skew-robust
    parts that apply (:func:`robust_parts`), and the one-sided p-values of "mean > threshold" / "mean < threshold"
    (each the largest of its parts': every part must agree). Keys: mean, low, high, se, df (se and df of the t
    part, on the scale it is computed on), vs, vu, p_gt, p_lt."""
    from .robust import bootstrap_t, bounded_gpq
    from .significance import directional_p

    y = np.asarray(y, dtype=float)
    r, s, n = y.shape
    z = np.log(y) if scale == "log" else y
    m, vs, vu, df = grid_moments(z, two_seed_rule)
    se = np.sqrt(vs + vu)
    finite_df = np.isfinite(df)
    half = np.where(finite_df, t_quantiles(np.where(finite_df, df, 1.0), level) * se, np.nan)
    lows, highs = [m - half], [m + half]
    thr = None
    p_gts, p_lts = [], []
    if threshold is not None:
        thr = np.broadcast_to(np.asarray(threshold, dtype=float), (r,))
        if scale == "log":
            with np.errstate(divide="ignore", invalid="ignore"):
                thr = np.where(thr > 0, np.log(np.maximum(thr, 1e-300)), -np.inf)
        gt, lt = directional_p(m, se, df, thr)
        p_gts.append(gt)
        p_lts.append(lt)
    boot, pivot = robust_parts(n, s, scale, bounds)
    if boot:  # at half the error per side (module docstring of .robust): its p-values count double
        lo, hi, gt, lt = bootstrap_t(z, m, se, df, 1 - (1 - level) / 2, thr)
        lows.append(np.where(finite_df, lo, np.nan))
        highs.append(np.where(finite_df, hi, np.nan))
        p_gts.append(np.minimum(1.0, 2 * gt))
        p_lts.append(np.minimum(1.0, 2 * lt))
    low, high = np.fmin.reduce(lows), np.fmax.reduce(highs)
    mean = m
    if scale == "log":
        with np.errstate(over="ignore"):  # an unbounded bootstrap side stays unbounded
            mean, low, high = np.exp(m), np.exp(low), np.exp(high)
    if pivot:
        assert bounds is not None
        lo, hi, gt, lt = bounded_gpq(y, bounds, level, thr)
        low, high = np.fmin(low, np.where(finite_df, lo, np.nan)), np.fmax(high, np.where(finite_df, hi, np.nan))
        p_gts.append(gt)
        p_lts.append(lt)
    nan = np.full(r, np.nan)
    return dict(mean=mean, low=low, high=high, se=se, df=df, vs=vs, vu=vu,
                p_gt=np.fmax.reduce(p_gts) if p_gts else nan, p_lt=np.fmax.reduce(p_lts) if p_lts else nan)


def grid_intervals(y: np.ndarray, level: float = 0.95, scale: Scale = "linear", two_seed_rule: bool = True,
                   bounds: tuple[float, float] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised :func:`interval` of grids (..., S, n): (mean, low, high, se, df) on the original scale (se and df
    of the t part, on the scale the interval is computed on). ``two_seed_rule=False`` (Satterthwaite at 2 seeds
    too) exists only for the simulation's comparison table."""
    y = np.asarray(y, dtype=float)
    lead = y.shape[:-2]
    out = grid_bounds(y.reshape(-1, *y.shape[-2:]), level, scale, bounds, None, two_seed_rule)
    low, high = out["low"], out["high"]
    if bounds is not None:
        low, high = np.clip(low, *bounds), np.clip(high, *bounds)
    return tuple(a.reshape(lead) for a in (out["mean"], low, high, out["se"], out["df"]))  # type: ignore


def design_ok(users: int, seeds: int) -> bool:
    """Enough units for an interval: at least :data:`MIN_USERS` users, or :data:`MIN_SEEDS` seeds."""
    return users >= MIN_USERS or (users >= 1 and seeds >= MIN_SEEDS)


def design_problem(users: int, seeds: int) -> str:
    return (f"{users} user{'s' * (users != 1)} × {seeds} seed{'s' * (seeds != 1)}: fewer than the minimum "
            f"({MIN_USERS} users, or {MIN_SEEDS} seeds)")


def method_text(users: int, seeds: int, scale: Scale = "linear", bounds: tuple[float, float] | None = None) -> str:
    log = " on log scale (geometric mean)" if scale == "log" else ""
    boot, pivot = robust_parts(users, seeds, scale, bounds)
    extra = "".join([" ∪ studentized bootstrap" if boot else "",
                     " ∪ distance-to-bound pivot (means within 10 % of a bound)" if pivot else ""])
    if seeds >= 2 and users >= 2:
        return f"t over {seeds} seeds × {users} users (seed and user levels, Satterthwaite df){extra}{log}"
    if users >= 2:
        return f"t over {users} users, 1 seed (that seed's shared training fixed){extra}{log}"
    return f"t over {seeds} seeds of {users} user{'s' * (users != 1)}{extra}{log}"


# ------------------------------------------------------------------------------------------------- one sample


def unit_grid(values: Mapping[Any, float] | Iterable[float]) -> tuple[np.ndarray, int, list[str]]:
    """A (seeds × users) grid from per-unit values.

    ``values`` is a mapping keyed by :class:`Unit` (or (user, seed) pairs marked as such), a mapping keyed by users
    (one seed), or a plain iterable (one seed). Users lacking a seed that other users have are left out (the grid
    must be complete for the seed means to be comparable); their number is returned, and a line per problem (how
    many values were non-finite and left out, users left out, a ragged grid)."""
    problems: list[str] = []
    if isinstance(values, Mapping):
        items = list(values.items())
    else:
        items = list(enumerate(values))
    bad = sum(1 for _, v in items if v is None or not math.isfinite(float(v)))
    if bad:
        problems.append(f"{bad} of {len(items)} values are NaN, infinite or missing (expected finite numbers)")
        items = [(k, v) for k, v in items if v is not None and math.isfinite(float(v))]
    if items and all(isinstance(k, Unit) for k, _ in items):
        seeds = sorted({k.seed for k, _ in items}, key=str)
        by_user: dict[Hashable, dict[Hashable, float]] = {}
        for k, v in items:
            by_user.setdefault(k.user, {})[k.seed] = float(v)
        complete = [u for u in sorted(by_user, key=str) if len(by_user[u]) == len(seeds)]
        dropped = len(by_user) - len(complete)
        if len(complete) < MIN_USERS and len(by_user) >= MIN_USERS:  # a ragged grid: seeds averaged within users
            grid = np.array([[float(np.mean(list(by_user[u].values()))) for u in sorted(by_user, key=str)]])
            problems.append("seeds differ between users: seeds averaged within each user (seed level not used)")
            return grid, 0, problems
        grid = np.array([[by_user[u][s] for u in complete] for s in seeds]) if complete else np.zeros((1, 0))
        if dropped:
            problems.append(f"{dropped} user{'s' * (dropped != 1)} left out: not run under every seed")
        return grid, dropped, problems
    vals = [float(v) for _, v in sorted(items, key=lambda kv: str(kv[0]))]
    return np.array([vals]) if vals else np.zeros((1, 0)), 0, problems


def interval(values: Mapping[Any, float] | Iterable[float], level: float = 0.95, scale: Scale = "linear",
             bounds: tuple[float, float] | None = None) -> tuple[Interval, list[str]]:
    """The interval of the mean of per-unit ``values`` (see the module's rule) and the notes on the input (values
    left out, too few units); never raises for data: a design too small gives NaN bounds and a note."""
    grid, dropped, notes = unit_grid(values)
    return grid_interval(grid, level, scale, bounds, dropped, notes)


def grid_interval(grid: np.ndarray, level: float = 0.95, scale: Scale = "linear",
                  bounds: tuple[float, float] | None = None, dropped: int = 0,
                  notes: list[str] | None = None) -> tuple[Interval, list[str]]:
    """:func:`interval` of one (seeds × users) grid."""
    return grid_interval_many([grid], level, [scale], [bounds], [dropped], [list(notes or [])])[0]


def grid_interval_many(grids: list[np.ndarray], level: float, scales: list[Scale],
                       bounds: list[tuple[float, float] | None], dropped: list[int], notes: list[list[str]]
                       ) -> list[tuple[Interval, list[str]]]:
    """:func:`grid_interval` of many grids at once: grids of one shape, scale and bounds go through
    :func:`grid_bounds` as one stack (judging 10^4 claims is a handful of numpy calls, not 10^4 of each)."""
    return [(iv, nt) for iv, nt, _, _ in grid_judge_many(grids, level, scales, bounds, dropped, notes)]


def grid_judge_many(grids: list[np.ndarray], level: float, scales: list[Scale],
                    bounds: list[tuple[float, float] | None], dropped: list[int], notes: list[list[str]],
                    thresholds: list[float] | None = None) -> list[tuple[Interval, list[str], float, float]]:
    """:func:`grid_interval_many` with, per grid, the one-sided p-values of "mean > threshold" and "mean <
    threshold" of the same interval (every part must agree; NaN without thresholds or without an interval)."""
    out: list[Any] = [None] * len(grids)
    groups: dict[tuple, list[int]] = {}
    for i, grid in enumerate(grids):
        seeds, users = grid.shape
        scale = scales[i]
        if users == 0:
            out[i] = (Interval(math.nan, math.nan, math.nan, math.nan, math.nan, 0, seeds, level, "no values", scale,
                               math.nan, dropped[i]), notes[i] + ["no finite values"], math.nan, math.nan)
            continue
        if scale == "log" and float(grid.min()) <= 0:
            notes[i] = notes[i] + ["a log-scale quantity (a ratio or a cost) must be positive: judged on the linear "
                                   "scale"]
            scales[i] = scale = "linear"
        groups.setdefault((grid.shape, scale, bounds[i]), []).append(i)
    for ((seeds, users), scale, bound), index in groups.items():
        stack = np.stack([grids[i] for i in index])
        spread = (stack.max(axis=(1, 2)) - stack.min(axis=(1, 2))).tolist()
        user_means = stack.mean(axis=1)
        user_sd = (user_means.std(axis=1, ddof=1) if users > 1 else np.full(len(index), math.nan)).tolist()
        method = method_text(users, seeds, scale, bound)
        if not design_ok(users, seeds):
            z = np.log(stack) if scale == "log" else stack
            means = (np.exp(z.mean(axis=(1, 2))) if scale == "log" else z.mean(axis=(1, 2))).tolist()
            for k, i in enumerate(index):
                out[i] = (Interval(means[k], math.nan, math.nan, math.nan, math.nan, users, seeds, level, method,
                                   scale, spread[k], dropped[i], user_sd[k]), notes[i] + [design_problem(users, seeds)],
                          math.nan, math.nan)
            continue
        thr = None if thresholds is None else np.array([thresholds[i] for i in index], dtype=float)
        res = grid_bounds(stack, level, scale, bound, thr)
        first = stack[:, 0, 0].tolist()
        rows = zip(*(res[k].tolist() for k in ("mean", "low", "high", "se", "df", "vs", "vu", "p_gt", "p_lt")))
        for k, (i, (mk, lo, hi, sek, dfk, vsk, vuk, pg, pl)) in enumerate(zip(index, rows)):
            if spread[k] <= 1e-12 * max(1.0, abs(first[k])):  # every unit the same value: a point, no t
                out[i] = (Interval(first[k], first[k], first[k], 0.0, math.nan, users, seeds, level,
                                   "no spread: every unit equal", scale, 0.0, dropped[i], user_sd[k], 0.0, 0.0),
                          notes[i], math.nan, math.nan)
                continue
            if bound is not None:
                lo, hi = max(lo, bound[0]), min(hi, bound[1])
            out[i] = (Interval(mk, lo, hi, sek, dfk, users, seeds, level, method, scale, spread[k], dropped[i],
                               user_sd[k], vsk, vuk), notes[i], pg, pl)
    return out


def bootstrap_interval(values: Iterable[float], level: float = 0.95, resamples: int = 4000,
                       seed: int = 0) -> tuple[float, float]:
    """A BCa bootstrap interval of the mean over ``values`` (scipy.stats.bootstrap; percentile when BCa is
    degenerate); NaNs below 3 values.

    Kept for plugins that show it; harbench's own views and verdicts do not use it: it under-covers at the user
    counts runs have (docs/statistics.md, the old rule's table) and it cannot see seed-level randomness."""
    vals = sorted(float(v) for v in values if v is not None and math.isfinite(float(v)))  # order-independent
    if len(vals) < MIN_USERS:
        return math.nan, math.nan
    if max(vals) - min(vals) < 1e-15:  # no spread: the bootstrap distribution is a point
        return vals[0], vals[0]
    from scipy import stats

    data = (np.asarray(vals),)
    for method in ("BCa", "percentile"):
        res = stats.bootstrap(data, np.mean, confidence_level=level, n_resamples=resamples, method=method,
                              random_state=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return low, high
    return math.nan, math.nan
